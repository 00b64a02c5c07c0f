import { get as httpGet, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { ConsoleSpanExporter, createTracer, OtlpHttpExporter, SpanKind, type Tracer } from '@spanline/core'
import { startOtlpReceiver, type OtlpReceiver } from '@spanline/core/testing'
import { tracing } from '@spanline/express'
import { instrument, uninstrument } from '@spanline/http'

/**
 * Secrets never reach an exported span by default: credentials in headers,
 * in URLs and in sensitive query parameters, on the server side and on the
 * client side, checked on the bytes that actually leave the process (the
 * OTLP request bodies, and the console waterfall's text).
 */
const SECRETS = {
  authorization: 'Bearer tok-SECRET-1',
  cookie: 'sid=cookie-SECRET-2',
  proxyAuthorization: 'Basic proxy-SECRET-3',
  setCookie: 'sid=setcookie-SECRET-4',
  querySig: 'sig-SECRET-5',
  queryAws: 'aws-SECRET-6',
  urlPassword: 'pass-SECRET-7',
  clientQuery: 'client-SECRET-8',
}

describe('secrets stay out of spans', () => {
  let receiver: OtlpReceiver
  let tracer: Tracer
  let server: Server
  let consoleText = ''

  beforeAll(async () => {
    receiver = await startOtlpReceiver()
    const console = new ConsoleSpanExporter({ stream: { write: (s: string) => (consoleText += s) }, colors: false })
    tracer = createTracer({ env: {}, serviceName: 'secrets', exporters: [new OtlpHttpExporter({ url: receiver.url, env: {} }), console] })
    instrument({ tracer })
    const app = express()
    // Header capture on, for other headers: credentials are still never captured unless named.
    app.use(tracing({ tracer, captureHeaders: { request: ['x-request-id'], response: ['x-response-id'] } }))
    app.get('/downstream', (_req, res) => {
      res.setHeader('set-cookie', SECRETS.setCookie)
      res.setHeader('x-response-id', 'r-1')
      res.send('ok')
    })
    app.get('/proxy', async (_req, res) => {
      const port = (server.address() as AddressInfo).port
      // fetch with secrets in the query
      await (await fetch(`http://127.0.0.1:${port}/downstream?sig=${SECRETS.clientQuery}&page=1`, {
        headers: { authorization: SECRETS.authorization, cookie: SECRETS.cookie },
      })).text()
      // node:http with credentials in the URL and a signed query
      await new Promise<void>((resolve, reject) => {
        httpGet(`http://user:${SECRETS.urlPassword}@127.0.0.1:${port}/downstream?X-Amz-Signature=${SECRETS.clientQuery}`, (r) => {
          r.resume()
          r.on('end', resolve)
        }).on('error', reject)
      })
      res.setHeader('set-cookie', SECRETS.setCookie)
      res.send('done')
    })
    server = app.listen(0, '127.0.0.1')
    await new Promise((r) => server.once('listening', r))
  })

  afterAll(async () => {
    uninstrument()
    server.close()
    await receiver.close()
  })

  it('sends none of them to the backend or the console, while still tracing everything', async () => {
    const port = (server.address() as AddressInfo).port
    const res = await fetch(`http://127.0.0.1:${port}/proxy?sig=${SECRETS.querySig}&AWSAccessKeyId=${SECRETS.queryAws}&q=shoes`, {
      headers: {
        authorization: SECRETS.authorization,
        cookie: SECRETS.cookie,
        'proxy-authorization': SECRETS.proxyAuthorization,
        'x-request-id': 'req-1',
      },
    })
    expect(await res.text()).toBe('done')
    await tracer.shutdown()

    const spans = receiver.spans()
    const server4 = spans.filter((s) => s.kind === SpanKind.SERVER)
    const clients = spans.filter((s) => s.kind === SpanKind.CLIENT)
    expect(server4).toHaveLength(3) // /proxy and two /downstream
    expect(clients).toHaveLength(2)
    const proxy = server4.find((s) => s.name === 'GET /proxy')!
    expect(proxy.attributes['url.query']).toBe('sig=REDACTED&AWSAccessKeyId=REDACTED&q=shoes')
    expect(proxy.attributes['http.request.header.x-request-id']).toEqual(['req-1'])
    const urls = clients.map((s) => String(s.attributes['url.full'])).sort()
    expect(urls.some((u) => u.includes('sig=REDACTED&page=1'))).toBe(true)
    expect(urls.some((u) => u.includes('X-Amz-Signature=REDACTED'))).toBe(true)

    // The bytes on the wire and on the console: no secret anywhere.
    const wire = Buffer.concat(receiver.requests.map((r) => r.body)).toString('latin1')
    const everything = wire + JSON.stringify(receiver.requests.map((r) => r.payload)) + consoleText
    for (const [name, secret] of Object.entries(SECRETS)) {
      const needle = secret.split('-SECRET-')[1]!
      expect({ name, leaked: everything.includes(`SECRET-${needle}`) }).toEqual({ name, leaked: false })
    }
    expect(consoleText).toContain('GET /proxy')
  })
})
