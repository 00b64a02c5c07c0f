import { join } from 'node:path'
import fc from 'fast-check'
import protobuf from 'protobufjs'
import { toUnixNanos } from '../../clock.ts'
import { runWithContext } from '../../context.ts'
import type { ReadableSpan } from '../../span.ts'
import { createTracer } from '../../tracer.ts'
import { SpanKind, SpanStatusCode, type Attributes, type SpanContext } from '../../types.ts'
import { InMemorySpanExporter } from '../memory.ts'
import { SimpleSpanProcessor } from '../processor.ts'
import { encodeJson } from './json.ts'
import { encodeProtobuf } from './protobuf.ts'

type Json = Record<string, unknown>

const PROTO_DIR = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'otlp-proto')
const protoRoot = new protobuf.Root()
protoRoot.resolvePath = (_origin: string, target: string): string => join(PROTO_DIR, target)
protoRoot.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto')
const Request = protoRoot.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest')

/** Every key OTLP/JSON may use here: the .proto field names in lowerCamelCase. */
const OTLP_KEYS = new Set([
  'resourceSpans', 'resource', 'attributes', 'droppedAttributesCount', 'scopeSpans', 'scope', 'name', 'version',
  'spans', 'traceId', 'spanId', 'traceState', 'parentSpanId', 'flags', 'kind', 'startTimeUnixNano',
  'endTimeUnixNano', 'events', 'timeUnixNano', 'droppedEventsCount', 'links', 'droppedLinksCount', 'status',
  'message', 'code', 'key', 'value', 'stringValue', 'boolValue', 'intValue', 'doubleValue', 'arrayValue', 'values',
])

const TRICKY = 'quote " backslash \\ slash / newline \n cr \r tab \t nul \u0000 esc \u001b del \u007f ls \u2028 ps \u2029 </script> ünï 日本 😀👍🏽'

const ATTRIBUTES: Attributes = {
  str: 'hello',
  int: 42,
  negative: -7,
  largeSafe: Number.MAX_SAFE_INTEGER,
  double: 0.1,
  tiny: 5e-324,
  huge: 1.7976931348623157e308,
  beyondSafe: 2 ** 60,
  negativeZero: -0,
  nan: NaN,
  inf: Infinity,
  negInf: -Infinity,
  yes: true,
  no: false,
  strings: ['a', TRICKY],
  ints: [1, -2, 3],
  doubles: [1.5, NaN, -Infinity],
  bools: [false, true],
  empty: [],
  tricky: TRICKY,
  [TRICKY]: 'tricky key',
}

function spans(): ReadableSpan[] {
  const exporter = new InMemorySpanExporter()
  const tracer = createTracer({ env: {}, serviceName: 'svc', processors: [new SimpleSpanProcessor(exporter)], spanLimits: { eventCountLimit: 1 } })
  const other = createTracer({ env: {}, serviceName: 'svc "two"', processors: [new SimpleSpanProcessor(exporter)] })
  const root = tracer.startSpan(TRICKY, { kind: SpanKind.SERVER, attributes: ATTRIBUTES })
  const ctx = tracer.extract({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'a=1' })
  const remote = runWithContext(ctx, () => tracer.startSpan('remote child', { links: [{ context: root, attributes: { n: 1 } }] }))
  remote.addEvent(TRICKY, { [TRICKY]: TRICKY })
  remote.addEvent('dropped')
  remote.setStatus(SpanStatusCode.ERROR, TRICKY)
  remote.end()
  tracer.getTracer('other-scope', '1.0.0').startSpan('scoped', { links: [{ context: ctx.span as SpanContext }] }).end()
  other.startSpan('other resource').end()
  tracer.startSpan('lone surrogates', { attributes: { lone: 'a\ud800b\udc00c' } }).end()
  root.end()
  return exporter.getFinishedSpans()
}

function walkKeys(value: unknown, seen: Set<string>): void {
  if (Array.isArray(value)) for (const v of value) walkKeys(v, seen)
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      seen.add(k)
      walkKeys(v, seen)
    }
  }
}

function allSpans(request: Json): Json[] {
  return (request.resourceSpans as Json[]).flatMap((rs) => (rs.scopeSpans as Json[]).flatMap((ss) => ss.spans as Json[]))
}

/** An OTLP/JSON AnyValue → the JS value. */
function fromAnyValue(v: Json): unknown {
  if ('stringValue' in v) return v.stringValue
  if ('boolValue' in v) return v.boolValue
  if ('intValue' in v) {
    expect(v.intValue).toMatch(/^-?\d+$/)
    return Number(v.intValue)
  }
  if ('doubleValue' in v) return typeof v.doubleValue === 'string' ? Number(v.doubleValue) : v.doubleValue
  if ('arrayValue' in v) return (((v.arrayValue as Json).values as Json[] | undefined) ?? []).map(fromAnyValue)
  throw new Error(`empty AnyValue ${JSON.stringify(v)}`)
}

function attributesOf(list: unknown): Record<string, unknown> {
  return Object.fromEntries(((list as Json[] | undefined) ?? []).map((kv) => [kv.key, fromAnyValue(kv.value as Json)]))
}

describe('encodeJson', () => {
  const source = spans()
  const text = encodeJson(source)
  const parsed = JSON.parse(text) as Json

  it('encodes an empty list as an empty request', () => {
    expect(encodeJson([])).toBe('{"resourceSpans":[]}')
  })

  it('uses only the lowerCamelCase names of the .proto fields', () => {
    const seen = new Set<string>()
    walkKeys(parsed, seen)
    expect([...seen].filter((k) => !OTLP_KEYS.has(k))).toEqual([])
  })

  it('writes ids as lowercase hex, times and ints as decimal strings, enums as numbers', () => {
    const byId = new Map(allSpans(parsed).map((s) => [s.spanId, s]))
    expect(byId.size).toBe(source.length)
    for (const span of source) {
      const s = byId.get(span.spanId)!
      expect(s.traceId).toBe(span.traceId)
      expect(s.traceId).toMatch(/^[0-9a-f]{32}$/)
      expect(s.spanId).toMatch(/^[0-9a-f]{16}$/)
      expect(s.parentSpanId).toBe(span.parentSpanId)
      expect(s.startTimeUnixNano).toBe(toUnixNanos(span.startTime).toString())
      expect(s.endTimeUnixNano).toBe(toUnixNanos(span.endTime).toString())
      expect(s.kind).toBe(span.kind)
      expect(s.name).toBe(span.name)
    }
    const remote = allSpans(parsed).find((s) => s.name === 'remote child')!
    expect(remote.parentSpanId).toBe('b7ad6b7169203331')
    expect(remote.traceState).toBe('a=1')
    expect(remote.flags).toBe(0x301)
    expect(remote.status).toEqual({ code: 2, message: TRICKY })
    expect(remote.droppedEventsCount).toBe(1)
    expect(remote.events).toEqual([
      { timeUnixNano: toUnixNanos(source.find((s) => s.name === 'remote child')!.events![0]!.time).toString(), name: TRICKY, attributes: [{ key: TRICKY, value: { stringValue: TRICKY } }] },
    ])
    expect(remote.links).toEqual([{ traceId: expect.any(String), spanId: expect.any(String), flags: 0x103, attributes: [{ key: 'n', value: { intValue: '1' } }] }])
    const scoped = allSpans(parsed).find((s) => s.name === 'scoped')!
    expect(scoped.links).toEqual([{ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceState: 'a=1', flags: 0x301 }])
  })

  it('spells values as the proto3 JSON mapping does', () => {
    const root = allSpans(parsed).find((s) => s.name === TRICKY)!
    const values = Object.fromEntries((root.attributes as Json[]).map((kv) => [kv.key, kv.value]))
    expect(values).toMatchObject({
      int: { intValue: '42' },
      negative: { intValue: '-7' },
      largeSafe: { intValue: '9007199254740991' },
      double: { doubleValue: 0.1 },
      tiny: { doubleValue: 5e-324 },
      beyondSafe: { doubleValue: 2 ** 60 },
      nan: { doubleValue: 'NaN' },
      inf: { doubleValue: 'Infinity' },
      negInf: { doubleValue: '-Infinity' },
      no: { boolValue: false },
      empty: { arrayValue: {} },
      doubles: { arrayValue: { values: [{ doubleValue: 1.5 }, { doubleValue: 'NaN' }, { doubleValue: '-Infinity' }] } },
    })
    expect(Object.is((values.negativeZero as Json).doubleValue, -0)).toBe(true)
    expect(text).toContain('"negativeZero","value":{"doubleValue":-0}')
  })

  it('escapes every string so that it parses back unchanged', () => {
    const root = allSpans(parsed).find((s) => s.name === TRICKY)!
    expect(attributesOf(root.attributes)).toEqual(ATTRIBUTES)
    const resources = (parsed.resourceSpans as Json[]).map((rs) => attributesOf((rs.resource as Json).attributes)['service.name'])
    expect(resources).toEqual(['svc', 'svc "two"'])
    // Lone surrogates go out as \u escapes, so the body stays valid UTF-8.
    expect(text).toContain('"a\\ud800b\\udc00c"')
    expect(attributesOf(allSpans(parsed).find((s) => s.name === 'lone surrogates')!.attributes)).toEqual({ lone: 'a\ud800b\udc00c' })
    expect(Buffer.from(text, 'utf8').toString('utf8')).toBe(text)
  })

  it('groups by resource and scope like the protobuf encoding', () => {
    const layout = (parsed.resourceSpans as Json[]).map((rs) =>
      (rs.scopeSpans as Json[]).map((ss) => [(ss.scope as Json).name, (ss.spans as Json[]).map((s) => s.name)]))
    expect(layout).toEqual([
      [['@spanline/core', ['remote child', 'lone surrogates', TRICKY]], ['other-scope', ['scoped']]],
      [['@spanline/core', ['other resource']]],
    ])
  })

  it('re-encodes through protobufjs (an independent encoder) to exactly the protobuf bytes', () => {
    // protobufjs writes a lone surrogate as its own 3 bytes where Buffer (and
    // encodeProtobuf) write U+FFFD, so that one span is left out.
    const comparable = source.filter((s) => s.name !== 'lone surrogates')
    // protobufjs's JSON form wants base64 bytes: convert OTLP's hex ids.
    const object = JSON.parse(encodeJson(comparable), (key, value: unknown) =>
      (key === 'traceId' || key === 'spanId' || key === 'parentSpanId') && typeof value === 'string'
        ? Buffer.from(value, 'hex').toString('base64')
        : value) as Json
    const viaProtobufjs = Buffer.from(Request.encode(Request.fromObject(object)).finish())
    expect(viaProtobufjs.equals(encodeProtobuf(comparable))).toBe(true)
  })

  it('round-trips random names and attribute maps (property)', () => {
    const exporter = new InMemorySpanExporter()
    const tracer = createTracer({ env: {}, serviceName: 'svc', processors: [new SimpleSpanProcessor(exporter)] })
    const str = fc.string({ unit: 'binary', maxLength: 40 })
    const value = fc.oneof(
      str,
      fc.boolean(),
      fc.maxSafeInteger(),
      fc.double(),
      fc.constantFrom(0, -0, NaN, Infinity, -Infinity, 2 ** 53),
      fc.array(str, { maxLength: 4 }),
      fc.array(fc.double(), { maxLength: 4 }),
      fc.array(fc.boolean(), { maxLength: 4 }),
    )
    fc.assert(
      fc.property(str, fc.dictionary(str, value, { maxKeys: 10 }), (name, attributes) => {
        exporter.reset()
        tracer.startSpan(name, { attributes }).end()
        const [span] = exporter.getFinishedSpans()
        const out = allSpans(JSON.parse(encodeJson([span!])) as Json)[0]!
        expect(out.name ?? '').toBe(span!.name)
        const back = attributesOf(out.attributes)
        expect(back).toEqual(span!.attributes ?? {})
        for (const [k, v] of Object.entries(back)) if (typeof v === 'number') expect(Object.is(v, span!.attributes![k])).toBe(true)
      }),
      { numRuns: 300 },
    )
  })
})
