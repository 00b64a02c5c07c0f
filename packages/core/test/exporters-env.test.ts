import protobuf from 'protobufjs'
import { join } from 'node:path'
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  createTracer,
  encodeJson,
  encodeProtobuf,
  exportersFromEnv,
  OtlpHttpExporter,
  processorsFor,
  SimpleSpanProcessor,
  SpanKind,
  type ReadableSpan,
} from '../src/index.ts'
import { decodeTraceRequest, InMemorySpanExporter } from '../src/testing.ts'
import { collectDiagnostics } from './helpers.ts'

describe('OTEL_TRACES_EXPORTER', () => {
  const kinds = (env: Record<string, string>): string[] => exportersFromEnv(env).map((e) => e.constructor.name)

  it('defaults to otlp', () => {
    expect(kinds({})).toEqual(['OtlpHttpExporter'])
  })
  it('takes console, none and comma lists', () => {
    expect(kinds({ OTEL_TRACES_EXPORTER: 'console' })).toEqual(['ConsoleSpanExporter'])
    expect(kinds({ OTEL_TRACES_EXPORTER: 'otlp, console' })).toEqual(['OtlpHttpExporter', 'ConsoleSpanExporter'])
    expect(kinds({ OTEL_TRACES_EXPORTER: 'none' })).toEqual([])
    expect(kinds({ OTEL_TRACES_EXPORTER: 'console,none' })).toEqual([])
  })
  it('reports and skips unknown names', async () => {
    let got: string[] = []
    const warnings = await collectDiagnostics(() => {
      got = kinds({ OTEL_TRACES_EXPORTER: 'zipkin,console' })
    })
    expect(got).toEqual(['ConsoleSpanExporter'])
    expect(warnings.join()).toMatch(/OTEL_TRACES_EXPORTER: unknown exporter "zipkin"/)
  })
  it('OTEL_SDK_DISABLED=true gives no exporter', () => {
    expect(kinds({ OTEL_SDK_DISABLED: 'true' })).toEqual([])
  })
  it('the OTLP exporter reads its endpoint from the same env', () => {
    const [otlp] = exportersFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9/base' }) as [OtlpHttpExporter]
    expect(otlp.config.url.href).toBe('http://127.0.0.1:9/base/v1/traces')
  })
  it('console goes behind a simple processor, everything else behind a batch processor', () => {
    const ps = processorsFor([new ConsoleSpanExporter(), new InMemorySpanExporter()], {})
    expect(ps[0]).toBeInstanceOf(SimpleSpanProcessor)
    expect(ps[1]).toBeInstanceOf(BatchSpanProcessor)
  })
  it('a tracer created without processors or exporters follows the env', () => {
    const tracer = createTracer({ env: { OTEL_TRACES_EXPORTER: 'none' } })
    expect(tracer.startSpan('x').isRecording()).toBe(false)
  })
})

describe('the test receiver\'s protobuf decoder', () => {
  it('agrees with protobufjs and the official .proto files', () => {
    const memory = new InMemorySpanExporter()
    const tracer = createTracer({ env: {}, serviceName: 'dec', processors: [new SimpleSpanProcessor(memory)] })
    const a = tracer.startSpan('a', { kind: SpanKind.SERVER, attributes: { s: 'x', i: -5, d: 1.5, b: true, arr: ['p', 'q'] } })
    a.addEvent('e', { k: 1 })
    a.end()
    const spans: ReadableSpan[] = memory.getFinishedSpans()
    const root = new protobuf.Root()
    const protoDir = join(__dirname, 'fixtures', 'otlp-proto')
    root.resolvePath = (_origin, target) => join(protoDir, target)
    root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto')
    const Request = root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest')
    const bytes = encodeProtobuf(spans)
    const ours = decodeTraceRequest(bytes)
    // our decoder yields the OTLP JSON mapping: the same as our JSON encoder's output
    expect(ours).toEqual(JSON.parse(encodeJson(spans)))
    // and protobufjs reads the same bytes to the same structure
    const theirs = Request.toObject(Request.decode(bytes), { longs: String, enums: Number, bytes: String }) as Record<string, unknown>
    const span = (theirs.resourceSpans as { scopeSpans: { spans: Record<string, unknown>[] }[] }[])[0]!.scopeSpans[0]!.spans[0]!
    expect(Buffer.from(span.traceId as string, 'base64').toString('hex')).toBe(spans[0]!.traceId)
    const oursSpan = ((ours.resourceSpans as { scopeSpans: { spans: Record<string, unknown>[] }[] }[])[0]!.scopeSpans[0]!.spans[0])!
    expect(oursSpan.startTimeUnixNano).toBe(span.startTimeUnixNano)
    expect(oursSpan.name).toBe('a')
  })
})
