import { request as httpRequest } from 'node:http'
import { runWithSpan } from '@spanline/core'
import { instrument, uninstrument } from '../src/index.ts'
import { clientSpans, memoryTracer, TestServer } from './helpers.ts'

// Header capture on outgoing calls, for both clients: only the named
// headers, every value of each, the caller's headers (not ours).
describe('captureHeaders on CLIENT spans', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await new TestServer().listen()
  })
  afterAll(() => server.close())
  afterEach(() => uninstrument())

  it.each(['fetch', 'node:http'])('%s records the named request and response headers only', async (client) => {
    const { tracer, exporter } = memoryTracer()
    instrument({ tracer, captureHeaders: { request: ['X-Request-Id', 'traceparent'], response: ['Date', 'x-missing'] } })
    const headers = { 'x-request-id': 'req-7', authorization: 'Bearer secret' }
    await runWithSpan(tracer.startSpan('parent'), async () => {
      if (client === 'fetch') {
        await (await fetch(`${server.base}/ok`, { headers })).text()
      } else {
        await new Promise<void>((resolve, reject) => {
          httpRequest(`${server.base}/ok`, { headers }, (res) => {
            res.resume()
            res.on('end', resolve)
          }).on('error', reject).end()
        })
      }
    })
    const [span] = clientSpans(exporter)
    expect(span!.attributes!['http.request.header.x-request-id']).toEqual(['req-7'])
    // captured before injection: the caller set no traceparent
    expect(span!.attributes!['http.request.header.traceparent']).toBeUndefined()
    expect(String(span!.attributes!['http.response.header.date'])).toMatch(/GMT$/)
    expect(span!.attributes!['http.response.header.x-missing']).toBeUndefined()
    expect(JSON.stringify(span!.attributes)).not.toContain('secret')
  })

  it('rejects a bad list at instrument() time', () => {
    expect(() => instrument({ captureHeaders: { request: 'x-id' as never } })).toThrow(/captureHeaders.request/)
  })
})
