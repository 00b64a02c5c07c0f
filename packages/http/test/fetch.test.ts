import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import {
  Baggage,
  getActiveSpan,
  runSuppressed,
  runWithBaggage,
  runWithSpan,
  SpanKind,
  SpanStatusCode,
  traceRequests,
  TracingError,
  type Tracer,
} from '@spanline/core'
import type { InMemorySpanExporter } from '@spanline/core/testing'
import { instrument, uninstrument, withUrlTemplate, type HttpInstrumentationOptions } from '@spanline/http'
import { clientSpans, memoryTracer, sleep, TestServer, traceparentOf } from './helpers.ts'

describe('fetch(): CLIENT spans from undici\'s diagnostics channels', () => {
  let server: TestServer
  let tracer: Tracer
  let exporter: InMemorySpanExporter

  beforeAll(async () => {
    server = await new TestServer().listen()
  })
  afterAll(async () => {
    uninstrument()
    await server.close()
  })
  beforeEach(() => {
    ;({ tracer, exporter } = memoryTracer())
    server.received.length = 0
    instrument({ tracer })
  })
  afterEach(() => uninstrument())

  /** Runs `fn` inside a parent span; returns the parent once `fn` settled. */
  async function inSpan<R>(fn: () => Promise<R>): Promise<{ parent: ReturnType<Tracer['startSpan']>; result: R }> {
    const parent = tracer.startSpan('parent')
    const result = await runWithSpan(parent, fn)
    parent.end()
    return { parent, result }
  }

  it('makes a CLIENT span, child of the active span, with the stable attributes, and sends its traceparent', async () => {
    const { parent } = await inSpan(async () => (await fetch(`${server.base}/ok?sig=s3cr3t&page=2`)).text())
    const [span] = await exporter.waitForSpans(2).then(() => clientSpans(exporter))
    expect(span).toMatchObject({ name: 'GET', kind: SpanKind.CLIENT, traceId: parent.traceId, parentSpanId: parent.spanId, statusCode: SpanStatusCode.UNSET })
    expect(span!.attributes).toEqual({
      'http.request.method': 'GET',
      'url.full': `${server.base}/ok?sig=REDACTED&page=2`,
      'server.address': '127.0.0.1',
      'server.port': server.port,
      'network.peer.address': '127.0.0.1',
      'network.peer.port': server.port,
      'network.protocol.version': '1.1',
      'http.response.status_code': 200,
    })
    expect(server.received[0]!.traceparents).toEqual([traceparentOf(span!)])
  })

  it('records requests with a body', async () => {
    const { result } = await inSpan(async () => (await fetch(`${server.base}/echo`, { method: 'POST', body: 'hello body' })).text())
    expect(result).toBe('hello body')
    const [span] = clientSpans(exporter)
    expect(span!.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.response.status_code': 200 })
    expect(server.received[0]).toMatchObject({ method: 'POST', body: 'hello body', traceparents: [traceparentOf(span!)] })
  })

  it('4xx and 5xx responses set status Error on the client side', async () => {
    await inSpan(async () => {
      await (await fetch(`${server.base}/status/404`)).text()
      await (await fetch(`${server.base}/status/503`)).text()
    })
    const spans = clientSpans(exporter)
    expect(spans.map((s) => [s.attributes!['http.response.status_code'], s.attributes!['error.type'], s.statusCode])).toEqual([
      [404, '404', SpanStatusCode.ERROR],
      [503, '503', SpanStatusCode.ERROR],
    ])
  })

  it('ends the span when the body has been read, not when the headers arrive', async () => {
    let atHeaders = -1
    let bodyRead = 0
    await inSpan(async () => {
      const res = await fetch(`${server.base}/slow`)
      atHeaders = clientSpans(exporter).length
      const text = await res.text()
      bodyRead = performance.now()
      expect(text).toBe('first last')
    })
    expect(atHeaders).toBe(0)
    const [span] = clientSpans(exporter)
    expect(span!.endTime - span!.startTime).toBeGreaterThanOrEqual(250)
    expect(span!.endTime).toBeLessThanOrEqual(bodyRead)
  })

  it('follows redirects with one span per hop (each hop is its own request), all children of the caller\'s span', async () => {
    const { parent, result } = await inSpan(async () => (await fetch(`${server.base}/redirect`)).text())
    expect(result).toBe('ok')
    const spans = clientSpans(exporter)
    expect(spans.map((s) => [s.attributes!['url.full'], s.attributes!['http.response.status_code'], s.statusCode, s.parentSpanId])).toEqual([
      [`${server.base}/redirect`, 302, SpanStatusCode.UNSET, parent.spanId],
      [`${server.base}/ok`, 200, SpanStatusCode.UNSET, parent.spanId],
    ])
    expect(server.received.map((r) => r.traceparents)).toEqual(spans.map((s) => [traceparentOf(s)]))
  })

  it('a call cancelled with an AbortController is not an error: status unset, an `aborted` event', async () => {
    const controller = new AbortController()
    await inSpan(async () => {
      const pending = fetch(`${server.base}/hang`, { signal: controller.signal })
      await sleep(50)
      controller.abort()
      await expect(pending).rejects.toMatchObject({ name: 'AbortError' })
    })
    const [span] = await exporter.waitForSpans(2).then(() => clientSpans(exporter))
    expect(span!.statusCode).toBe(SpanStatusCode.UNSET)
    expect(span!.attributes!['error.type']).toBeUndefined()
    expect(span!.events!.map((e) => e.name)).toEqual(['aborted'])
  })

  it('an abort while the body streams is not an error either, and keeps the status', async () => {
    const controller = new AbortController()
    await inSpan(async () => {
      const res = await fetch(`${server.base}/slow`, { signal: controller.signal })
      controller.abort()
      await expect(res.text()).rejects.toMatchObject({ name: 'AbortError' })
    })
    await sleep(20)
    const [span] = clientSpans(exporter)
    expect(span!.statusCode).toBe(SpanStatusCode.UNSET)
    expect(span!.attributes!['http.response.status_code']).toBe(200)
    expect(span!.events!.map((e) => e.name)).toEqual(['aborted'])
  })

  it('a timeout (AbortSignal.timeout) is an error: error.type timeout', async () => {
    await inSpan(async () => {
      await expect(fetch(`${server.base}/hang`, { signal: AbortSignal.timeout(100) })).rejects.toMatchObject({ name: 'TimeoutError' })
    })
    const [span] = await exporter.waitForSpans(2).then(() => clientSpans(exporter))
    expect(span!.statusCode).toBe(SpanStatusCode.ERROR)
    expect(span!.attributes!['error.type']).toBe('timeout')
  })

  it('connection refused: status Error, error.type ECONNREFUSED', async () => {
    const closed = createServer()
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
    const port = (closed.address() as AddressInfo).port
    await new Promise((r) => closed.close(r))
    await inSpan(async () => {
      await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow('fetch failed')
    })
    // undici publishes the error after fetch() has rejected.
    const [span] = await exporter.waitForSpans(2).then(() => clientSpans(exporter))
    expect(span).toMatchObject({ statusCode: SpanStatusCode.ERROR })
    expect(span!.attributes).toMatchObject({ 'error.type': 'ECONNREFUSED', 'server.port': port })
    expect(span!.events!.map((e) => e.name)).toEqual(['exception'])
  })

  it('concurrent fetches under different spans each get their own caller as parent', async () => {
    const parents = Array.from({ length: 8 }, (_, i) => tracer.startSpan(`parent ${i}`))
    await Promise.all(parents.map((parent, i) => runWithSpan(parent, async () => {
      await sleep(i % 3)
      const res = await fetch(`${server.base}/delay/${(8 - i) * 5}?i=${i}`)
      return res.text()
    })))
    for (const p of parents) p.end()
    const spans = clientSpans(exporter)
    expect(spans).toHaveLength(8)
    for (const span of spans) {
      const i = Number(String(span.attributes!['url.full']).split('i=')[1])
      expect(span.parentSpanId).toBe(parents[i]!.spanId)
      expect(server.received.find((r) => r.url.endsWith(`i=${i}`))!.traceparents).toEqual([traceparentOf(span)])
    }
  })

  it('names the span after a URL template given with withUrlTemplate()', async () => {
    await inSpan(async () => (await withUrlTemplate('/status/{code}', fetch, `${server.base}/status/201`)).text())
    const [span] = clientSpans(exporter)
    expect(span!.name).toBe('GET /status/{code}')
    expect(span!.attributes!['url.template']).toBe('/status/{code}')
  })

  it('suppressed calls (the exporter\'s own, ignored requests\' work): no span, no header', async () => {
    await inSpan(() => runSuppressed(async () => (await fetch(`${server.base}/ok`)).text()))
    expect(clientSpans(exporter)).toEqual([])
    expect(server.received[0]!.traceparents).toEqual([])
  })

  it('ignored URLs: no span, no header', async () => {
    instrument({ tracer, ignore: [`127.0.0.1:${server.port}`] })
    await inSpan(async () => (await fetch(`${server.base}/ok`)).text())
    instrument({ tracer, ignore: /\/ok$/ })
    await inSpan(async () => (await fetch(`${server.base}/ok`)).text())
    expect(clientSpans(exporter)).toEqual([])
    expect(server.received.map((r) => r.traceparents)).toEqual([[], []])
  })

  it('outside any span: no span and no header; rootSpans: true makes a root CLIENT span', async () => {
    await (await fetch(`${server.base}/ok`)).text()
    await sleep(10)
    expect(exporter.getFinishedSpans()).toEqual([])
    expect(server.received[0]!.traceparents).toEqual([])

    instrument({ tracer, rootSpans: true })
    await (await fetch(`${server.base}/ok`)).text()
    await sleep(10)
    const [span] = exporter.getFinishedSpans()
    expect(span).toMatchObject({ kind: SpanKind.CLIENT, parentSpanId: undefined })
    expect(server.received[1]!.traceparents).toEqual([traceparentOf(span!)])
  })

  it('sends baggage with the span\'s context; outside any span, baggage alone', async () => {
    const baggage = Baggage.EMPTY.set('tenant', 'acme')
    await inSpan(() => runWithBaggage(baggage, async () => (await fetch(`${server.base}/ok`)).text()))
    await runWithBaggage(baggage, async () => (await fetch(`${server.base}/ok`)).text())
    expect(server.received.map((r) => [r.traceparents.length, r.baggage])).toEqual([[1, 'tenant=acme'], [0, 'tenant=acme']])
  })

  it('leaves a caller\'s own traceparent alone: no span, the header sent once, unchanged', async () => {
    const own = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    await inSpan(async () => (await fetch(`${server.base}/ok`, { headers: { traceparent: own } })).text())
    expect(clientSpans(exporter)).toEqual([])
    expect(server.received[0]!.traceparents).toEqual([own])
  })

  it('instrument() twice: one span, one traceparent; uninstrument(): none', async () => {
    instrument({ tracer })
    instrument({ tracer })
    await inSpan(async () => (await fetch(`${server.base}/ok`)).text())
    expect(clientSpans(exporter)).toHaveLength(1)
    expect(server.received[0]!.traceparents).toHaveLength(1)

    uninstrument()
    uninstrument()
    exporter.reset()
    await inSpan(async () => (await fetch(`${server.base}/ok`)).text())
    expect(clientSpans(exporter)).toEqual([])
    expect(server.received[1]!.traceparents).toEqual([])
  })

  it('rejects bad options with a TracingError, leaving the current instrumentation in place', async () => {
    const bad: unknown[] = [null, { fetch: 'yes' }, { http: 1 }, { rootSpans: 1 }, { ignore: '/path' }, { unknown: true }]
    for (const options of bad) expect(() => instrument(options as HttpInstrumentationOptions)).toThrow(TracingError)
    await inSpan(async () => (await fetch(`${server.base}/ok`)).text())
    expect(clientSpans(exporter)).toHaveLength(1)
  })

  it('fetch: false leaves fetch alone', async () => {
    instrument({ tracer, fetch: false })
    await inSpan(async () => (await fetch(`${server.base}/ok`)).text())
    expect(clientSpans(exporter)).toEqual([])
  })
})

describe('a round trip through two instrumented services', () => {
  let front: Server
  let back: Server
  afterEach(async () => {
    uninstrument()
    front.closeAllConnections()
    back.closeAllConnections()
    await Promise.all([new Promise((r) => front.close(r)), new Promise((r) => back.close(r))])
  })

  it('the callee\'s SERVER span is the child of the caller\'s CLIENT span, made by the caller\'s tracer: one trace', async () => {
    const a = memoryTracer('frontend')
    const b = memoryTracer('backend')
    // The global/default tracer is neither: the active span's tracer must be used.
    instrument({ tracer: memoryTracer('default').tracer })
    back = createServer(traceRequests((req, res) => {
      res.end(JSON.stringify({ active: getActiveSpan()?.spanId }))
    }, { tracer: b.tracer }))
    await new Promise<void>((r) => back.listen(0, '127.0.0.1', r))
    const backUrl = `http://127.0.0.1:${(back.address() as AddressInfo).port}/inventory`
    front = createServer(traceRequests(async (req, res) => {
      const reply = await fetch(backUrl)
      res.end(await reply.text())
    }, { tracer: a.tracer }))
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r))
    await (await fetch(`http://127.0.0.1:${(front.address() as AddressInfo).port}/checkout`)).text()

    const [frontServer] = await a.exporter.waitForSpans(2).then((s) => s.filter((x) => x.kind === SpanKind.SERVER))
    const [client] = clientSpans(a.exporter)
    const [backServer] = await b.exporter.waitForSpans(1)
    expect(client!.parentSpanId).toBe(frontServer!.spanId)
    expect(client!.resource.attributes['service.name']).toBe('frontend')
    expect(backServer).toMatchObject({ kind: SpanKind.SERVER, traceId: frontServer!.traceId, parentSpanId: client!.spanId })
    expect(backServer!.resource.attributes['service.name']).toBe('backend')
  })
})
