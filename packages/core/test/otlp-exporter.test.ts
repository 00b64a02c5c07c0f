import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import {
  createTracer,
  OtlpHttpExporter,
  runWithSpan,
  SimpleSpanProcessor,
  SpanKind,
  TracingError,
  type ReadableSpan,
  type Tracer,
} from '../src/index.ts'
import { resolveOtlpConfig } from '../src/export/otlp/config.ts'
import { parseRetryAfter } from '../src/export/otlp/http-exporter.ts'
import { InMemorySpanExporter, startOtlpReceiver, type OtlpReceiver, type ReceiverReply } from '../src/testing.ts'

const TLS = join(__dirname, 'fixtures', 'tls')

/** Two finished spans (parent and child) to export. */
function someSpans(): ReadableSpan[] {
  const memory = new InMemorySpanExporter()
  const tracer = createTracer({ env: {}, serviceName: 'exporter-test', processors: [new SimpleSpanProcessor(memory)] })
  const parent = tracer.startSpan('GET /users/:id', { kind: SpanKind.SERVER, attributes: { 'http.response.status_code': 200 } })
  runWithSpan(parent, () => tracer.startSpan('db.query', { attributes: { 'db.system.name': 'postgresql' } }).end())
  parent.end()
  return memory.getFinishedSpans()
}

async function freePort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const port = (srv.address() as { port: number }).port
  await new Promise<void>((r) => srv.close(() => r()))
  return port
}

describe('OTLP/HTTP exporter against a local receiver', () => {
  let receiver: OtlpReceiver
  let replies: (ReceiverReply | Promise<ReceiverReply>)[]
  beforeEach(async () => {
    replies = []
    receiver = await startOtlpReceiver({ respond: () => replies.shift() })
  })
  afterEach(() => receiver.close())

  it('sends protobuf by default, and the spans decode field by field', async () => {
    const spans = someSpans()
    const exporter = new OtlpHttpExporter({ url: receiver.url, env: {} })
    expect(await exporter.export(spans)).toEqual({ ok: true })
    const [req] = receiver.requests
    expect(req!.headers['content-type']).toBe('application/x-protobuf')
    expect(req!.headers['user-agent']).toMatch(/^spanline\//)
    expect(req!.path).toBe('/v1/traces')
    const got = receiver.spans()
    expect(got.map((s) => s.name)).toEqual(['db.query', 'GET /users/:id'])
    expect(got[0]!.parentSpanId).toBe(got[1]!.spanId)
    expect(got[0]!.traceId).toBe(spans[0]!.traceId)
    expect(got[1]!.attributes).toEqual({ 'http.response.status_code': 200 })
    expect(got[1]!.kind).toBe(SpanKind.SERVER)
    expect(got[1]!.resource['service.name']).toBe('exporter-test')
    await exporter.shutdown()
  })

  it('sends JSON with http/json', async () => {
    const exporter = new OtlpHttpExporter({ url: receiver.url, protocol: 'http/json', env: {} })
    expect((await exporter.export(someSpans())).ok).toBe(true)
    expect(receiver.requests[0]!.headers['content-type']).toBe('application/json')
    expect(receiver.spans().map((s) => s.name)).toEqual(['db.query', 'GET /users/:id'])
    await exporter.shutdown()
  })

  it('does not retry a 400, and reports it', async () => {
    replies.push({ status: 400, body: 'bad request: missing resource' })
    const exporter = new OtlpHttpExporter({ url: receiver.url, env: {} })
    const result = await exporter.export(someSpans())
    expect(result.ok).toBe(false)
    expect(result.error?.message).toMatch(/HTTP 400: bad request: missing resource; not retried/)
    expect(receiver.requests).toHaveLength(1)
  })

  it('honours Retry-After on 429 (seconds)', async () => {
    replies.push({ status: 429, headers: { 'retry-after': '1' } })
    const exporter = new OtlpHttpExporter({ url: receiver.url, env: {} })
    const t0 = Date.now()
    expect((await exporter.export(someSpans())).ok).toBe(true)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950)
    expect(receiver.requests).toHaveLength(2)
    expect(receiver.spans()).toHaveLength(2)
  })

  it('retries 503 with backoff, then succeeds', async () => {
    replies.push({ status: 503 }, { status: 502 })
    const exporter = new OtlpHttpExporter({ url: receiver.url, env: {} })
    expect((await exporter.export(someSpans())).ok).toBe(true)
    expect(receiver.requests).toHaveLength(3)
  })

  it('gives up when Retry-After points past the export timeout', async () => {
    replies.push({ status: 503, headers: { 'retry-after': '120' } })
    const exporter = new OtlpHttpExporter({ url: receiver.url, timeoutMillis: 2000, env: {} })
    const t0 = Date.now()
    const result = await exporter.export(someSpans())
    expect(result.ok).toBe(false)
    expect(result.error?.message).toMatch(/HTTP 503.*2000 ms export timeout/)
    expect(Date.now() - t0).toBeLessThan(1000)
  })

  it('retries a refused connection until the receiver comes up', async () => {
    const port = await freePort()
    const exporter = new OtlpHttpExporter({ url: `http://127.0.0.1:${port}/v1/traces`, env: {} })
    const pending = exporter.export(someSpans())
    await new Promise((r) => setTimeout(r, 200))
    const late = await startOtlpReceiver({ port })
    try {
      expect((await pending).ok).toBe(true)
      expect(late.spans()).toHaveLength(2)
    } finally {
      await late.close()
    }
  })

  it('times out a receiver that never answers', async () => {
    replies.push(new Promise<ReceiverReply>(() => {}))
    const exporter = new OtlpHttpExporter({ url: receiver.url, timeoutMillis: 300, env: {} })
    const t0 = Date.now()
    const result = await exporter.export(someSpans())
    expect(result.ok).toBe(false)
    expect(result.error?.message).toMatch(/timed out after 300 ms/)
    expect(Date.now() - t0).toBeLessThan(1500)
  })

  it('fails an endpoint that does not speak HTTP, saying so, without crashing', async () => {
    const srv = createServer((socket) => {
      socket.on('error', () => {})
      socket.once('data', () => socket.write('SSH-2.0-OpenSSH_9.6\r\n\r\n'))
    })
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
    try {
      const exporter = new OtlpHttpExporter({ url: `http://127.0.0.1:${(srv.address() as { port: number }).port}/v1/traces`, timeoutMillis: 700, env: {} })
      const result = await exporter.export(someSpans())
      expect(result.ok).toBe(false)
      expect(result.error?.message).toMatch(/invalid HTTP response: not an HTTP\/1\.x response: "SSH-2\.0/)
      await exporter.shutdown()
    } finally {
      await new Promise((r) => srv.close(r))
    }
  })

  it('compresses with gzip', async () => {
    const exporter = new OtlpHttpExporter({ url: receiver.url, compression: 'gzip', env: {} })
    expect((await exporter.export(someSpans())).ok).toBe(true)
    expect(receiver.requests[0]!.headers['content-encoding']).toBe('gzip')
    expect(receiver.spans()).toHaveLength(2)
  })

  it('sends custom headers from code and from OTEL_EXPORTER_OTLP_[TRACES_]HEADERS', async () => {
    const exporter = new OtlpHttpExporter({
      url: receiver.url,
      headers: { 'X-Api-Key': 'from-code' },
      env: { OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=acme,x-api-key=from-env', OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-note=hello%20world' },
    })
    await exporter.export(someSpans())
    expect(receiver.requests[0]!.headers).toMatchObject({ 'x-api-key': 'from-code', 'x-tenant': 'acme', 'x-note': 'hello world' })
  })

  it('appends v1/traces after a base path from OTEL_EXPORTER_OTLP_ENDPOINT', async () => {
    const exporter = new OtlpHttpExporter({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.endpoint}/otlp` } })
    await exporter.export(someSpans())
    expect(receiver.requests[0]!.path).toBe('/otlp/v1/traces')
  })

  it('reports a partial success without retrying (JSON and protobuf)', async () => {
    replies.push({ status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ partialSuccess: { rejectedSpans: '1', errorMessage: 'span too old' } }) })
    const json = new OtlpHttpExporter({ url: receiver.url, protocol: 'http/json', env: {} })
    expect(await json.export(someSpans())).toEqual({ ok: true, rejected: 1 })
    // ExportTraceServiceResponse{ partial_success: { rejected_spans: 2, error_message: "x" } }
    const pb = Buffer.from([0x0a, 0x05, 0x08, 0x02, 0x12, 0x01, 0x78])
    replies.push({ status: 200, headers: { 'content-type': 'application/x-protobuf' }, body: pb })
    const proto = new OtlpHttpExporter({ url: receiver.url, env: {} })
    expect(await proto.export(someSpans())).toEqual({ ok: true, rejected: 2 })
    expect(receiver.requests).toHaveLength(2)
  })

  it('caps what it reads of a huge response body', async () => {
    replies.push({ status: 400, body: Buffer.alloc(20 * 1024 * 1024, 'x') })
    const exporter = new OtlpHttpExporter({ url: receiver.url, env: {} })
    const result = await exporter.export(someSpans())
    expect(result.ok).toBe(false)
    expect(result.error!.message.length).toBeLessThan(500)
  })

  it('its own requests carry no trace headers, even from inside an active span', async () => {
    const tracer = createTracer({ env: {}, processors: [] })
    const exporter = new OtlpHttpExporter({ url: receiver.url, env: {} })
    await runWithSpan(tracer.startSpan('active'), () => exporter.export(someSpans()))
    expect(receiver.requests[0]!.headers.traceparent).toBeUndefined()
  })

  it('works end to end through a tracer and the batch processor', async () => {
    const tracer: Tracer = createTracer({ env: {}, serviceName: 'e2e', exporters: [new OtlpHttpExporter({ url: receiver.url, env: {} })] })
    tracer.startSpan('one').end()
    tracer.startSpan('two').end()
    await tracer.shutdown()
    expect(receiver.spans().map((s) => s.name)).toEqual(['one', 'two'])
    expect(tracer.stats()).toMatchObject({ started: 2, exported: 2, exportFailures: 0 })
  })

  it.each([
    ['http/protobuf', 'none', 'application/x-protobuf', true],
    ['http/protobuf', 'gzip', 'application/x-protobuf', true],
    ['http/json', 'none', 'application/json', false],
    ['http/json', 'gzip', 'application/json', false],
  ] as const)('through the batch processor with %s and compression %s: every span arrives, in batches', async (protocol, compression, type, takesBodies) => {
    const exporter = new OtlpHttpExporter({ url: receiver.url, protocol, compression, env: {} })
    // Protobuf bodies are encoded span by span in the batch processor; JSON at export.
    expect(typeof exporter.exportProtobuf === 'function').toBe(takesBodies)
    const tracer: Tracer = createTracer({ env: {}, serviceName: 'e2e', exporters: [exporter] })
    const lib = tracer.getTracer('lib', '1.0.0')
    const names: string[] = []
    for (let i = 0; i < 1100; i++) {
      const name = `op ${i} ${'é'.repeat(i % 50)}`
      names.push(name)
      const span = (i % 4 === 0 ? lib : tracer).startSpan(name, { kind: SpanKind.SERVER, attributes: { 'url.path': `/users/${i}`, 'http.response.status_code': 200 } })
      span.end()
    }
    await tracer.shutdown()
    expect(receiver.requests.length).toBeGreaterThanOrEqual(3) // batches of at most 512
    for (const r of receiver.requests) {
      expect(r.headers['content-type']).toBe(type)
      expect(r.headers['content-encoding']).toBe(compression === 'gzip' ? 'gzip' : undefined)
    }
    const got = receiver.spans()
    expect(got.map((s) => s.name).sort()).toEqual([...names].sort())
    const byName = new Map(got.map((s) => [s.name, s]))
    expect(byName.get(names[4]!)!.attributes).toEqual({ 'url.path': '/users/4', 'http.response.status_code': 200 })
    expect(byName.get(names[4]!)!.scope).toEqual({ name: 'lib', version: '1.0.0' })
    expect(tracer.stats()).toMatchObject({ started: 1100, exported: 1100, exportFailures: 0, dropped: { queueFull: 0, exportFailed: 0 } })
    // After shutdown: refused, not sent.
    const sent = receiver.requests.length
    expect(await exporter.export(someSpans())).toMatchObject({ ok: false })
    if (takesBodies) expect(await exporter.exportProtobuf!(Buffer.alloc(0), 0)).toMatchObject({ ok: false })
    expect(receiver.requests).toHaveLength(sent)
  })
})

describe('https', () => {
  it('exports over https to a receiver with a self-signed certificate given as the CA', async () => {
    const tls = { key: readFileSync(join(TLS, 'key.pem')), cert: readFileSync(join(TLS, 'cert.pem')) }
    const receiver = await startOtlpReceiver({ tls })
    try {
      const exporter = new OtlpHttpExporter({ url: receiver.url, env: { OTEL_EXPORTER_OTLP_CERTIFICATE: join(TLS, 'cert.pem') } })
      expect(receiver.url.startsWith('https://')).toBe(true)
      expect((await exporter.export(someSpans())).ok).toBe(true)
      expect(receiver.spans()).toHaveLength(2)
      await exporter.shutdown()
      // without trusting the certificate, the export fails (and is not silently accepted)
      const untrusting = new OtlpHttpExporter({ url: receiver.url, timeoutMillis: 800, env: {} })
      expect((await untrusting.export(someSpans())).ok).toBe(false)
    } finally {
      await receiver.close()
    }
  })
})

describe('OTLP exporter configuration', () => {
  it.each([
    [{}, 'http://localhost:4318/v1/traces'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, 'http://collector:4318/v1/traces'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }, 'http://collector:4318/v1/traces'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://gw.example/otlp/' }, 'https://gw.example/otlp/v1/traces'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://gw.example/otlp' }, 'https://gw.example/otlp/v1/traces'],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:4318/custom/path', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x' }, 'http://t:4318/custom/path'],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x:1' }, 'http://x:1/v1/traces'],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://nope' }, 'http://localhost:4318/v1/traces'],
  ])('endpoint from %j is %s', (env, url) => {
    expect(resolveOtlpConfig({ env }).url.href).toBe(url)
  })

  it('reads protocol, timeout and compression, signal-specific first', () => {
    const c = resolveOtlpConfig({ env: {
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TIMEOUT: '5000', OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '2500',
      OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
    } })
    expect([c.protocol, c.timeoutMillis, c.compression]).toEqual(['http/json', 2500, 'gzip'])
    expect(resolveOtlpConfig({ env: { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' } }).protocol).toBe('http/protobuf')
    expect(resolveOtlpConfig({ env: {} })).toMatchObject({ protocol: 'http/protobuf', timeoutMillis: 10000, compression: 'none' })
  })

  it('rejects bad options in code', () => {
    expect(() => resolveOtlpConfig({ url: 'localhost:4318' })).toThrow(TracingError)
    expect(() => resolveOtlpConfig({ protocol: 'grpc' as never })).toThrow(/protocol/)
    expect(() => resolveOtlpConfig({ timeoutMillis: -1 })).toThrow(/timeoutMillis/)
    expect(() => resolveOtlpConfig({ compression: 'br' as never })).toThrow(/compression/)
    expect(() => resolveOtlpConfig({ endpoint: 'x' } as never)).toThrow(/unknown OTLP exporter option "endpoint"/)
    // A header value with CR/LF would write headers of its own into every request.
    expect(() => resolveOtlpConfig({ headers: { 'x-api-key': 'k\r\nx-injected: 1' } })).toThrow(/"x-api-key" has control characters/)
    expect(() => resolveOtlpConfig({ headers: { 'bad name': 'v' } })).toThrow(/not a valid HTTP field name/)
  })

  it('ignores header values with control characters from the environment, keeping the others', () => {
    const c = resolveOtlpConfig({ env: { OTEL_EXPORTER_OTLP_HEADERS: 'x-ok=1,x-bad=a%0D%0Ax-injected:%201,x-nul=%00' } })
    expect(c.headers).toEqual({ 'x-ok': '1' })
  })

  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3000)
    expect(parseRetryAfter(undefined)).toBeUndefined()
    expect(parseRetryAfter('soon')).toBeUndefined()
    const inTwo = new Date(Date.now() + 2000).toUTCString()
    expect(parseRetryAfter(inTwo)).toBeGreaterThan(500)
    expect(parseRetryAfter(inTwo)).toBeLessThanOrEqual(2000)
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT')).toBe(0)
  })
})
