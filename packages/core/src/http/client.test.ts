import {
  AlwaysOffSampler,
  Baggage,
  CALL_ABORTED,
  createTracer,
  defaultGetter,
  defaultSetter,
  HttpClientTracing,
  runSuppressed,
  runWithBaggage,
  runWithSpan,
  SimpleSpanProcessor,
  SpanKind,
  SpanStatusCode,
  TracingError,
  withUrlTemplate,
  type HttpClientOptions,
  type ReadableSpan,
  type Tracer,
} from '../index.ts'
import { InMemorySpanExporter } from '../testing.ts'

function memoryTracer(serviceName = 'test'): { tracer: Tracer; exporter: InMemorySpanExporter } {
  const exporter = new InMemorySpanExporter()
  const tracer = createTracer({ env: {}, serviceName, processors: [new SimpleSpanProcessor(exporter)] })
  return { tracer, exporter }
}

/** Runs one call through `tracing` inside a parent span; returns the ended CLIENT span (if any) and the headers sent. */
function call(
  tracing: HttpClientTracing,
  tracer: Tracer,
  exporter: InMemorySpanExporter,
  method: string,
  url: string,
  headers: Record<string, string> = {},
  finish: (c: NonNullable<ReturnType<HttpClientTracing['start']>>) => void = (c) => c.end(),
): { span: ReadableSpan | undefined; headers: Record<string, string>; parent: ReadableSpan } {
  exporter.reset()
  const parent = tracer.startSpan('parent')
  runWithSpan(parent, () => {
    const c = tracing.start(method, url, headers, defaultGetter, defaultSetter)
    if (c !== undefined) finish(c)
  })
  parent.end()
  const spans = exporter.getFinishedSpans()
  return { span: spans.find((s) => s.kind === SpanKind.CLIENT), headers, parent: spans.find((s) => s.name === 'parent')! }
}

describe('HttpClientTracing', () => {
  const { tracer, exporter } = memoryTracer()
  const tracing = new HttpClientTracing({ tracer })

  it('starts a CLIENT span, child of the active span, with the stable client attributes, and injects it', () => {
    const { span, headers, parent } = call(tracing, tracer, exporter, 'GET', 'https://user:pw@api.example.com/users/7?sig=abc&x=1')
    expect(span).toMatchObject({ name: 'GET', kind: SpanKind.CLIENT, traceId: parent.traceId, parentSpanId: parent.spanId, statusCode: SpanStatusCode.UNSET })
    expect(span!.attributes).toEqual({
      'http.request.method': 'GET',
      'url.full': 'https://REDACTED:REDACTED@api.example.com/users/7?sig=REDACTED&x=1',
      'server.address': 'api.example.com',
      'server.port': 443,
    })
    expect(headers.traceparent).toBe(`00-${span!.traceId}-${span!.spanId}-03`)
  })

  it('reads explicit ports and IPv6 hosts', () => {
    expect(call(tracing, tracer, exporter, 'GET', 'http://[::1]:8080/x').span!.attributes).toMatchObject({ 'server.address': '::1', 'server.port': 8080 })
    expect(call(tracing, tracer, exporter, 'GET', 'http://localhost/x').span!.attributes).toMatchObject({ 'server.address': 'localhost', 'server.port': 80 })
  })

  it('reports unknown methods as _OTHER, named HTTP', () => {
    const { span } = call(tracing, tracer, exporter, 'PURGE', 'http://cache.local/x')
    expect(span!.name).toBe('HTTP')
    expect(span!.attributes).toMatchObject({ 'http.request.method': '_OTHER', 'http.request.method_original': 'PURGE' })
  })

  it('names the span after a template given with withUrlTemplate()', () => {
    let result: ReturnType<typeof call> | undefined
    const value = withUrlTemplate('/users/{id}', () => {
      result = call(tracing, tracer, exporter, 'GET', 'http://api.local/users/7')
      return 42
    })
    expect(value).toBe(42)
    expect(result!.span!.name).toBe('GET /users/{id}')
    expect(result!.span!.attributes!['url.template']).toBe('/users/{id}')
    expect(() => withUrlTemplate('', () => 1)).toThrow(TracingError)
  })

  it('4xx and 5xx set status Error and error.type to the status code; 3xx does not', () => {
    for (const [status, code] of [[404, SpanStatusCode.ERROR], [503, SpanStatusCode.ERROR], [302, SpanStatusCode.UNSET], [200, SpanStatusCode.UNSET]] as const) {
      const { span } = call(tracing, tracer, exporter, 'GET', 'http://a.local/', {}, (c) => {
        c.response(status, '1.1')
        c.end()
      })
      expect(span!.statusCode).toBe(code)
      expect(span!.attributes!['http.response.status_code']).toBe(status)
      expect(span!.attributes!['error.type']).toBe(code === SpanStatusCode.ERROR ? String(status) : undefined)
    }
  })

  it('a network error sets Error, error.type = its code, and an exception event', () => {
    const error = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' })
    const { span } = call(tracing, tracer, exporter, 'GET', 'http://a.local/', {}, (c) => c.end(error))
    expect(span!.statusCode).toBe(SpanStatusCode.ERROR)
    expect(span!.statusMessage).toBe(error.message)
    expect(span!.attributes!['error.type']).toBe('ECONNREFUSED')
    expect(span!.events!.map((e) => e.name)).toEqual(['exception'])
  })

  it('a cancellation by the caller is not an error: status unset, an `aborted` event', () => {
    const abort = new DOMException('This operation was aborted', 'AbortError')
    for (const reason of [abort, CALL_ABORTED]) {
      const { span } = call(tracing, tracer, exporter, 'GET', 'http://a.local/', {}, (c) => c.end(reason))
      expect(span!.statusCode).toBe(SpanStatusCode.UNSET)
      expect(span!.attributes!['error.type']).toBeUndefined()
      expect(span!.events!.map((e) => e.name)).toEqual(['aborted'])
    }
  })

  it('a timeout is an error: error.type timeout', () => {
    const viaSignal = call(tracing, tracer, exporter, 'GET', 'http://a.local/', {}, (c) => c.end(new DOMException('timed out', 'TimeoutError'))).span!
    expect(viaSignal.attributes!['error.type']).toBe('timeout')
    expect(viaSignal.statusCode).toBe(SpanStatusCode.ERROR)
    // The request's own timer, then a destroy(): the reset it causes is reported as the timeout.
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })
    const viaTimer = call(tracing, tracer, exporter, 'GET', 'http://a.local/', {}, (c) => {
      c.timedOut()
      c.end(reset)
    }).span!
    expect(viaTimer.attributes!['error.type']).toBe('timeout')
    expect(viaTimer.statusCode).toBe(SpanStatusCode.ERROR)
    // A timer that fired while the caller kept waiting, then a good response: no error.
    const waited = call(tracing, tracer, exporter, 'GET', 'http://a.local/', {}, (c) => {
      c.timedOut()
      c.response(200)
      c.end()
    }).span!
    expect(waited.statusCode).toBe(SpanStatusCode.UNSET)
  })

  it('ends once', () => {
    const { span } = call(tracing, tracer, exporter, 'GET', 'http://a.local/', {}, (c) => {
      c.end()
      c.end(new Error('late'))
      expect(c.done).toBe(true)
    })
    expect(span!.statusCode).toBe(SpanStatusCode.UNSET)
    expect(exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT)).toHaveLength(1)
  })

  it('with the caller\'s own traceparent: no span, and nothing added or overwritten', () => {
    const own = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    const { span, headers } = call(tracing, tracer, exporter, 'GET', 'http://a.local/', { Traceparent: own })
    expect(span).toBeUndefined()
    expect(headers).toEqual({ Traceparent: own })
  })

  it('never overwrites a propagation header the caller set (baggage)', () => {
    const headers: Record<string, string> = { baggage: 'mine=1' }
    const parent = tracer.startSpan('parent')
    runWithBaggage(Baggage.EMPTY.set('tenant', 'acme'), () => runWithSpan(parent, () => tracing.start('GET', 'http://a.local/', headers, defaultGetter, defaultSetter)?.end()))
    parent.end()
    expect(headers.baggage).toBe('mine=1')
    expect(headers.traceparent).toMatch(/^00-/)
  })

  it('suppressed: no span, no headers', () => {
    const headers: Record<string, string> = {}
    const parent = tracer.startSpan('parent')
    exporter.reset()
    const result = runWithSpan(parent, () => runSuppressed(() => tracing.start('GET', 'http://a.local/', headers, defaultGetter, defaultSetter)))
    expect(result).toBeUndefined()
    expect(headers).toEqual({})
  })

  it('outside any span: no span, no traceparent; baggage alone still travels', () => {
    exporter.reset()
    const bare: Record<string, string> = {}
    expect(tracing.start('GET', 'http://a.local/', bare, defaultGetter, defaultSetter)).toBeUndefined()
    expect(bare).toEqual({})
    const withBaggage: Record<string, string> = {}
    runWithBaggage(Baggage.EMPTY.set('tenant', 'acme'), () => tracing.start('GET', 'http://a.local/', withBaggage, defaultGetter, defaultSetter))
    expect(withBaggage).toEqual({ baggage: 'tenant=acme' })
    expect(exporter.getFinishedSpans()).toEqual([])
  })

  it('rootSpans: true makes calls outside any span root CLIENT spans', () => {
    exporter.reset()
    const roots = new HttpClientTracing({ tracer, rootSpans: true })
    const headers: Record<string, string> = {}
    roots.start('GET', 'http://a.local/', headers, defaultGetter, defaultSetter)!.end()
    const [span] = exporter.getFinishedSpans()
    expect(span).toMatchObject({ kind: SpanKind.CLIENT, parentSpanId: undefined })
    expect(headers.traceparent).toBe(`00-${span!.traceId}-${span!.spanId}-03`)
  })

  it('the tracer of the active span makes the CLIENT span; the option is for calls with no such span', () => {
    const other = memoryTracer('other-service')
    const parent = other.tracer.startSpan('parent')
    runWithSpan(parent, () => tracing.start('GET', 'http://a.local/', {}, defaultGetter, defaultSetter)!.end())
    parent.end()
    const client = other.exporter.getFinishedSpans().find((s) => s.kind === SpanKind.CLIENT)
    expect(client!.resource.attributes['service.name']).toBe('other-service')
  })

  it('an unsampled parent: no recorded span, but the ids propagate with sampled=0', () => {
    const unsampled = createTracer({ env: {}, sampler: new AlwaysOffSampler(), processors: [new SimpleSpanProcessor(new InMemorySpanExporter())] })
    const parent = unsampled.startSpan('parent')
    const headers: Record<string, string> = {}
    const result = runWithSpan(parent, () => new HttpClientTracing({ tracer: unsampled }).start('GET', 'http://a.local/', headers, defaultGetter, defaultSetter))
    expect(result).toBeUndefined()
    expect(headers.traceparent).toMatch(new RegExp(`^00-${parent.traceId}-[0-9a-f]{16}-02$`))
    expect(headers.traceparent).not.toContain(parent.spanId)
  })

  it('ignores calls by host, host:port, URL prefix, RegExp and predicate', () => {
    const ignoring = new HttpClientTracing({
      tracer,
      ignore: ['metadata.google.internal', 'LOCALHOST:4318', 'https://api.example.com/health', /\/ping$/, (url, method) => method === 'OPTIONS' && url.includes('cors')],
    })
    const ignored = (method: string, url: string): boolean => call(ignoring, tracer, exporter, method, url).span === undefined
    expect(ignored('GET', 'http://metadata.google.internal/computeMetadata/v1')).toBe(true)
    expect(ignored('POST', 'http://localhost:4318/v1/traces')).toBe(true)
    expect(ignored('POST', 'http://localhost:4317/v1/traces')).toBe(false)
    expect(ignored('GET', 'https://api.example.com/health/live')).toBe(true)
    expect(ignored('GET', 'https://api.example.com/users')).toBe(false)
    expect(ignored('GET', 'http://svc.local/ping')).toBe(true)
    expect(ignored('OPTIONS', 'http://cors.local/')).toBe(true)
    expect(ignored('GET', 'http://cors.local/')).toBe(false)
    // Ignored calls get no headers either.
    const { headers } = call(ignoring, tracer, exporter, 'GET', 'http://svc.local/ping')
    expect(headers).toEqual({})
  })

  it('an ignore predicate that throws does not ignore, and never reaches the caller', () => {
    const throwing = new HttpClientTracing({ tracer, ignore: () => { throw new Error('bad rule') } })
    expect(call(throwing, tracer, exporter, 'GET', 'http://a.local/').span).toBeDefined()
  })

  it('rejects bad options with a TracingError', () => {
    const bad: unknown[] = [
      null,
      { nope: 1 },
      { rootSpans: 'yes' },
      { ignore: '/path-only' },
      { ignore: [42] },
      { ignore: '' },
      { tracer: 'x' },
      { knownMethods: 'GET' },
      { sensitiveQueryParams: [1] },
    ]
    for (const options of bad) {
      expect(() => new HttpClientTracing(options as HttpClientOptions)).toThrow(TracingError)
    }
  })
})
