import http, { createServer, type ClientRequest, type IncomingMessage } from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { runSuppressed, runWithSpan, SpanKind, SpanStatusCode, type Span, type Tracer } from '@spanline/core'
import type { InMemorySpanExporter } from '@spanline/core/testing'
import { instrument, uninstrument } from '@spanline/http'
import { forceNodeHttpMode, hasRequestCreatedChannel, nodeHttpMode, type NodeHttpMode } from '../src/node-http.ts'
import { clientSpans, memoryTracer, sleep, TestServer, TLS, traceparentOf } from './helpers.ts'

/** Reads the whole response; resolves with status and body. */
function read(res: IncomingMessage): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let body = ''
    res.setEncoding('utf8')
    res.on('data', (c: string) => (body += c))
    res.on('end', () => resolve({ status: res.statusCode!, body }))
    res.on('error', reject)
  })
}

/** Resolves with the response of `req` (ending it first), or rejects with its error. */
function respond(req: ClientRequest, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    req.on('response', (res) => read(res).then(resolve, reject))
    req.on('error', reject)
    if (!req.writableEnded) req.end(body)
  })
}

/** Settles once `req` fails or closes; resolves with the error, if any. */
function failure(req: ClientRequest): Promise<unknown> {
  return new Promise((resolve) => {
    let error: unknown
    req.on('error', (err) => (error = err))
    req.on('close', () => resolve(error))
  })
}

// Node 20 has only the wrap; where Node publishes http.client.request.created
// (Node 24), both mechanisms are tested.
const modes: NodeHttpMode[] = hasRequestCreatedChannel() ? ['channel', 'wrap'] : ['wrap']

describe.each(modes)('node:http and node:https (%s)', (mode) => {
  let server: TestServer
  let tlsServer: TestServer
  let tracer: Tracer
  let exporter: InMemorySpanExporter
  let parent: Span

  beforeAll(async () => {
    forceNodeHttpMode(mode)
    server = await new TestServer().listen()
    tlsServer = await new TestServer(true).listen()
  })
  afterAll(async () => {
    uninstrument()
    forceNodeHttpMode(undefined)
    await server.close()
    await tlsServer.close()
  })
  beforeEach(() => {
    ;({ tracer, exporter } = memoryTracer())
    server.received.length = 0
    tlsServer.received.length = 0
    instrument({ tracer })
    expect(nodeHttpMode()).toBe(mode)
    parent = tracer.startSpan('parent')
  })
  afterEach(() => uninstrument())

  /** Runs `fn` with the test's parent span active. */
  function inSpan<R>(fn: () => R): R {
    return runWithSpan(parent, fn)
  }

  /** The one CLIENT span, once ended. */
  async function clientSpan(): Promise<ReturnType<typeof clientSpans>[number]> {
    await exporter.waitForSpans(1)
    const spans = clientSpans(exporter)
    expect(spans).toHaveLength(1)
    return spans[0]!
  }

  it('http.get: a CLIENT span, child of the active span, with the stable attributes; its traceparent reaches the callee', async () => {
    const { status } = await inSpan(() => new Promise<{ status: number; body: string }>((resolve, reject) => {
      http.get(`${server.base}/ok?X-Amz-Signature=abc`, (res) => read(res).then(resolve, reject)).on('error', reject)
    }))
    expect(status).toBe(200)
    const span = await clientSpan()
    expect(span).toMatchObject({ name: 'GET', kind: SpanKind.CLIENT, traceId: parent.traceId, parentSpanId: parent.spanId, statusCode: SpanStatusCode.UNSET })
    expect(span.attributes).toEqual({
      'http.request.method': 'GET',
      'url.full': `${server.base}/ok?X-Amz-Signature=REDACTED`,
      'server.address': '127.0.0.1',
      'server.port': server.port,
      'network.peer.address': '127.0.0.1',
      'network.peer.port': server.port,
      'network.protocol.version': '1.1',
      'http.response.status_code': 200,
    })
    expect(server.received[0]!.traceparents).toEqual([traceparentOf(span)])
  })

  it('http.request with options and a body', async () => {
    const result = await inSpan(() => respond(http.request({ host: '127.0.0.1', port: server.port, path: '/echo', method: 'POST' }), 'the body'))
    expect(result).toEqual({ status: 200, body: 'the body' })
    const span = await clientSpan()
    expect(span.attributes).toMatchObject({ 'http.request.method': 'POST', 'url.full': `${server.base}/echo`, 'server.port': server.port })
    expect(server.received[0]).toMatchObject({ method: 'POST', body: 'the body', traceparents: [traceparentOf(span)] })
  })

  it('https.request and https.get against a self-signed server (ca given)', async () => {
    await inSpan(() => respond(https.request(`${tlsServer.base}/ok`, { ca: TLS.cert, method: 'PUT' })))
    await inSpan(() => new Promise((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: tlsServer.port, path: '/status/404', ca: TLS.cert }, (res) => read(res).then(resolve, reject)).on('error', reject)
    }))
    await exporter.waitForSpans(2)
    const spans = clientSpans(exporter)
    expect(spans.map((s) => [s.name, s.attributes!['url.full'], s.attributes!['server.port'], s.attributes!['http.response.status_code'], s.statusCode])).toEqual([
      ['PUT', `${tlsServer.base}/ok`, tlsServer.port, 200, SpanStatusCode.UNSET],
      ['GET', `${tlsServer.base}/status/404`, tlsServer.port, 404, SpanStatusCode.ERROR],
    ])
    // https.get → https.request → ClientRequest: one span and one header each.
    expect(tlsServer.received.map((r) => r.traceparents)).toEqual(spans.map((s) => [traceparentOf(s)]))
  })

  it('5xx: status Error, error.type the status code', async () => {
    await inSpan(() => respond(http.request(`${server.base}/status/500`)))
    const span = await clientSpan()
    expect(span.statusCode).toBe(SpanStatusCode.ERROR)
    expect(span.attributes!['error.type']).toBe('500')
  })

  it('ends the span after the body has been consumed, not at the response headers', async () => {
    let atResponse = -1
    let bodyRead = 0
    await inSpan(() => new Promise<void>((resolve, reject) => {
      http.get(`${server.base}/slow`, (res) => {
        atResponse = clientSpans(exporter).length
        res.on('end', () => (bodyRead = performance.now()))
        read(res).then(() => resolve(), reject)
      }).on('error', reject)
    }))
    expect(atResponse).toBe(0)
    const span = await clientSpan()
    expect(span.endTime - span.startTime).toBeGreaterThanOrEqual(250)
    expect(span.endTime).toBeGreaterThanOrEqual(bodyRead)
  })

  it('a response the app ignores is still discarded by Node, and the span still ends', async () => {
    const req = inSpan(() => http.get(`${server.base}/ok`))
    await new Promise((r) => req.on('close', r))
    const span = await clientSpan()
    expect(span.attributes!['http.response.status_code']).toBe(200)
  })

  it('connection refused: status Error, error.type ECONNREFUSED', async () => {
    const closed = createServer()
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
    const port = (closed.address() as AddressInfo).port
    await new Promise((r) => closed.close(r))
    const error = await inSpan(() => failure(http.get({ host: '127.0.0.1', port, path: '/' })))
    expect(error).toMatchObject({ code: 'ECONNREFUSED' })
    const span = await clientSpan()
    expect(span.statusCode).toBe(SpanStatusCode.ERROR)
    expect(span.attributes).toMatchObject({ 'error.type': 'ECONNREFUSED', 'server.port': port })
  })

  it('a failed name lookup (custom lookup, no DNS query): error.type ENOTFOUND', async () => {
    const lookup = (hostname: string, _options: unknown, callback: (err: Error) => void): void => {
      process.nextTick(callback, Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }))
    }
    const error = await inSpan(() => failure(http.get({ host: 'nowhere.test', port: 8080, path: '/x', lookup: lookup as never })))
    expect(error).toMatchObject({ code: 'ENOTFOUND' })
    const span = await clientSpan()
    expect(span.statusCode).toBe(SpanStatusCode.ERROR)
    expect(span.attributes).toMatchObject({ 'error.type': 'ENOTFOUND', 'server.address': 'nowhere.test', 'server.port': 8080, 'url.full': 'http://nowhere.test:8080/x' })
  })

  it('a timeout (req.setTimeout + destroy) is an error: error.type timeout', async () => {
    const error = await inSpan(() => {
      const req = http.get(`${server.base}/hang`)
      req.setTimeout(100, () => req.destroy())
      return failure(req)
    })
    expect(error).toMatchObject({ code: 'ECONNRESET' })
    const span = await clientSpan()
    expect(span.statusCode).toBe(SpanStatusCode.ERROR)
    expect(span.attributes!['error.type']).toBe('timeout')
  })

  it('a call cancelled with an AbortController is not an error: status unset, an `aborted` event', async () => {
    const controller = new AbortController()
    const error = await inSpan(() => {
      const req = http.get(`${server.base}/hang`, { signal: controller.signal })
      setTimeout(() => controller.abort(), 50)
      return failure(req)
    })
    expect(error).toMatchObject({ name: 'AbortError' })
    const span = await clientSpan()
    expect(span.statusCode).toBe(SpanStatusCode.UNSET)
    expect(span.attributes!['error.type']).toBeUndefined()
    expect(span.events!.map((e) => e.name)).toEqual(['aborted'])
  })

  it('a response cut short by the server: error.type ECONNRESET', async () => {
    await inSpan(() => new Promise<void>((resolve) => {
      http.get(`${server.base}/slow`, (res) => {
        res.once('data', () => server.server.closeAllConnections())
        res.on('error', () => {})
        res.on('close', resolve)
        res.resume()
      })
    }))
    const span = await clientSpan()
    expect(span.attributes).toMatchObject({ 'http.response.status_code': 200, 'error.type': 'ECONNRESET' })
    expect(span.statusCode).toBe(SpanStatusCode.ERROR)
  })

  it('never shows credentials in url.full', async () => {
    await inSpan(() => respond(http.request(`http://user:pw@127.0.0.1:${server.port}/ok`)))
    const span = await clientSpan()
    // The wrap sees the URL the caller gave and marks the credentials; the
    // channel sees only the request Node built (auth already moved to a header).
    expect(span.attributes!['url.full']).toBe(mode === 'wrap' ? `http://REDACTED:REDACTED@127.0.0.1:${server.port}/ok` : `${server.base}/ok`)
  })

  it('headers given as an array are written at once: the span is kept, nothing can be injected', async () => {
    await inSpan(() => respond(http.request({ host: '127.0.0.1', port: server.port, path: '/ok', headers: ['host', `127.0.0.1:${server.port}`, 'x-test', '1'] })))
    const span = await clientSpan()
    expect(span.attributes!['http.response.status_code']).toBe(200)
    expect(server.received[0]!.traceparents).toEqual([])
  })

  it('leaves a caller\'s own traceparent alone: no span, the header sent once, unchanged', async () => {
    const own = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    await inSpan(() => respond(http.request(`${server.base}/ok`, { headers: { TraceParent: own } })))
    await sleep(20)
    expect(clientSpans(exporter)).toEqual([])
    expect(server.received[0]!.traceparents).toEqual([own])
  })

  it('suppressed, ignored, or outside any span: no span, no header', async () => {
    await inSpan(() => runSuppressed(() => respond(http.request(`${server.base}/ok`))))
    await respond(http.request(`${server.base}/ok`))
    instrument({ tracer, ignore: `${server.base}/ok` })
    await inSpan(() => respond(http.request(`${server.base}/ok`)))
    await sleep(20)
    expect(clientSpans(exporter)).toEqual([])
    expect(server.received.map((r) => r.traceparents)).toEqual([[], [], []])
  })

  it('rootSpans: true makes calls outside any span root CLIENT spans', async () => {
    instrument({ tracer, rootSpans: true })
    await respond(http.request(`${server.base}/ok`))
    const span = await clientSpan()
    expect(span.parentSpanId).toBeUndefined()
    expect(server.received[0]!.traceparents).toEqual([traceparentOf(span)])
  })

  it('instrument() twice: one span, one traceparent', async () => {
    instrument({ tracer })
    instrument({ tracer })
    await inSpan(() => new Promise((resolve) => http.get(`${server.base}/ok`, (res) => read(res).then(resolve))))
    await inSpan(() => respond(https.request(`${tlsServer.base}/ok`, { ca: TLS.cert })))
    await exporter.waitForSpans(2)
    await sleep(20)
    expect(clientSpans(exporter)).toHaveLength(2)
    expect(server.received[0]!.traceparents).toHaveLength(1)
    expect(tlsServer.received[0]!.traceparents).toHaveLength(1)
  })

  it('uninstrument() restores request/get and stops tracing', async () => {
    uninstrument()
    const originals = [http.request, http.get, https.request, https.get]
    instrument({ tracer })
    const during = [http.request, http.get, https.request, https.get]
    uninstrument()
    expect([http.request, http.get, https.request, https.get]).toEqual(originals)
    if (mode === 'wrap') expect(during.every((fn, i) => fn !== originals[i])).toBe(true)
    else expect(during).toEqual(originals)
    await inSpan(() => respond(http.request(`${server.base}/ok`)))
    await sleep(20)
    expect(clientSpans(exporter)).toEqual([])
    expect(server.received[0]!.traceparents).toEqual([])
  })

  it('http: false leaves node:http alone', async () => {
    instrument({ tracer, http: false })
    expect(nodeHttpMode()).toBeUndefined()
    await inSpan(() => respond(http.request(`${server.base}/ok`)))
    await sleep(20)
    expect(clientSpans(exporter)).toEqual([])
  })
})
