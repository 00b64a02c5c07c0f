import { join } from 'node:path'
import fc from 'fast-check'
import protobuf from 'protobufjs'
import { toUnixNanos, toUnixNanosHalves, toUnixNanosString } from '../../clock.ts'
import { runWithContext } from '../../context.ts'
import type { AttributeLead, AttributeSource, ReadableSpan, RecordingSpan, Span } from '../../span.ts'
import { generateTraceId } from '../../ids.ts'
import { TraceIdRatioSampler } from '../../sampling/ratio.ts'
import { createTracer } from '../../tracer.ts'
import { SpanKind, SpanStatusCode, type AttributeValue, type Attributes, type SpanContext } from '../../types.ts'
import { InMemorySpanExporter } from '../memory.ts'
import { SimpleSpanProcessor } from '../processor.ts'
import { encodeJson } from './json.ts'
import { encodeProtobuf } from './protobuf.ts'
import { ProtobufSpanQueue } from './span-queue.ts'
import { ProtoWriter } from './writer.ts'

// The decoder is protobufjs reading the official .proto files
// (test/fixtures/otlp-proto, opentelemetry-proto v1.11.0): it shares no code
// with the encoder under test.
const PROTO_DIR = join(__dirname, '..', '..', '..', 'test', 'fixtures', 'otlp-proto')
const protoRoot = new protobuf.Root()
protoRoot.resolvePath = (_origin: string, target: string): string => join(PROTO_DIR, target)
protoRoot.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto')
const Request = protoRoot.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest')
const AnyValueType = protoRoot.lookupType('opentelemetry.proto.common.v1.AnyValue')

type Json = Record<string, unknown>

/** Decodes with protobufjs, 64-bit integers as decimal strings, defaults left out. */
function decode(bytes: Uint8Array): Json {
  return Request.toObject(Request.decode(bytes), { longs: String }) as Json
}

/**
 * Deferred attributes (as the HTTP server layer defers a span's): given to
 * the span when read, written into the encoder's own array when encoded.
 */
function pairSource(pairs: Array<string | number>, calls = { added: 0, filled: 0 }, vouch?: (lead: AttributeLead) => void): AttributeSource {
  return {
    addAttributes(span: RecordingSpan): void {
      calls.added++
      span.adoptAttributes(pairs.slice(), true)
    },
    fillAttributes(out: Array<string | number>, lead: AttributeLead): number {
      calls.filled++
      for (let i = 0; i < pairs.length; i++) out[i] = pairs[i]!
      vouch?.(lead)
      return pairs.length
    },
  }
}

/**
 * protobufjs's object → OTLP/JSON's spelling: bytes as lowercase hex (OTLP's
 * exception to proto3 JSON) and non-finite doubles as "NaN"/"Infinity"/"-Infinity".
 */
function toOtlpJson(value: unknown, key?: string): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex')
  if (key === 'doubleValue' && typeof value === 'number' && !Number.isFinite(value)) return String(value)
  if (Array.isArray(value)) return value.map((v) => toOtlpJson(v))
  if (value !== null && typeof value === 'object') {
    const out: Json = {}
    for (const [k, v] of Object.entries(value)) out[k] = toOtlpJson(v, k)
    return out
  }
  return value
}

// ---------------------------------------------------------------------------
// The expected request, built from the source spans in the plainest way
// (BigInt times, Map grouping): an oracle independent of both encoders.

function expectedAnyValue(v: AttributeValue | string | number | boolean): Json {
  switch (typeof v) {
    case 'string':
      return { stringValue: v }
    case 'boolean':
      return { boolValue: v }
    case 'number':
      if (Number.isSafeInteger(v) && !Object.is(v, -0)) return { intValue: String(v) }
      return { doubleValue: Number.isFinite(v) ? v : String(v) }
    default:
      return { arrayValue: v.length === 0 ? {} : { values: (v as readonly (string | number | boolean)[]).map(expectedAnyValue) } }
  }
}

function expectedAttributes(target: Json, attributes: Attributes | null): void {
  if (attributes === null) return
  const list = Object.entries(attributes)
    .filter(([, v]) => v !== undefined)
    .map(([key, v]) => ({ key, value: expectedAnyValue(v!) }))
  if (list.length > 0) target.attributes = list
}

function expectedFlags(context: SpanContext, remote: boolean): number {
  return (context.traceFlags & 0xff) | 0x100 | (remote ? 0x200 : 0)
}

function expectedSpan(s: ReadableSpan): Json {
  const o: Json = { traceId: s.traceId, spanId: s.spanId }
  const traceState = s.traceState?.serialize() ?? ''
  if (traceState !== '') o.traceState = traceState
  if (s.parentSpanId !== undefined) o.parentSpanId = s.parentSpanId
  o.flags = expectedFlags(s, s.parentIsRemote)
  o.name = s.name
  o.kind = s.kind
  o.startTimeUnixNano = toUnixNanos(s.startTime).toString()
  o.endTimeUnixNano = toUnixNanos(s.endTime).toString()
  expectedAttributes(o, s.attributes)
  if (s.droppedAttributesCount > 0) o.droppedAttributesCount = s.droppedAttributesCount
  if (s.events !== null && s.events.length > 0) {
    o.events = s.events.map((e) => {
      const event: Json = { timeUnixNano: toUnixNanos(e.time).toString(), name: e.name }
      expectedAttributes(event, e.attributes)
      if (e.droppedAttributesCount > 0) event.droppedAttributesCount = e.droppedAttributesCount
      return event
    })
  }
  if (s.droppedEventsCount > 0) o.droppedEventsCount = s.droppedEventsCount
  if (s.links !== null && s.links.length > 0) {
    o.links = s.links.map((l) => {
      const link: Json = { traceId: l.context.traceId, spanId: l.context.spanId, flags: expectedFlags(l.context, l.context.isRemote) }
      const linkState = l.context.traceState?.serialize() ?? ''
      if (linkState !== '') link.traceState = linkState
      expectedAttributes(link, l.attributes)
      if (l.droppedAttributesCount > 0) link.droppedAttributesCount = l.droppedAttributesCount
      return link
    })
  }
  if (s.droppedLinksCount > 0) o.droppedLinksCount = s.droppedLinksCount
  if (s.statusCode !== SpanStatusCode.UNSET || s.statusMessage !== undefined) {
    const status: Json = {}
    if (s.statusMessage !== undefined) status.message = s.statusMessage
    if (s.statusCode !== SpanStatusCode.UNSET) status.code = s.statusCode
    o.status = status
  }
  return o
}

function expectedRequest(spans: readonly ReadableSpan[]): Json {
  const resources = new Map<object, Map<string, ReadableSpan[]>>()
  for (const span of spans) {
    let scopes = resources.get(span.resource)
    if (scopes === undefined) resources.set(span.resource, (scopes = new Map()))
    const key = `${span.scope.name}\u0000${span.scope.version ?? ''}`
    const list = scopes.get(key) ?? []
    list.push(span)
    scopes.set(key, list)
  }
  return {
    resourceSpans: [...resources].map(([resource, scopes]) => {
      const r: Json = {}
      expectedAttributes(r, (resource as ReadableSpan['resource']).attributes)
      return {
        resource: r,
        scopeSpans: [...scopes.values()].map((list) => {
          const scope: Json = { name: list[0]!.scope.name }
          if (list[0]!.scope.version !== undefined) scope.version = list[0]!.scope.version
          return { scope, spans: list.map(expectedSpan) }
        }),
      }
    }),
  }
}

/** Expects `body` to decode to the oracle's request for `spans`. */
function expectBodyOf(body: Uint8Array, spans: readonly ReadableSpan[]): void {
  expect(toOtlpJson(decode(body))).toEqual(expectedRequest(spans))
}

// ---------------------------------------------------------------------------
// Spans made through the real API.

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'

/** Every attribute type and text that needs care in UTF-8 and in JSON. */
const ALL_TYPES: Attributes = {
  str: 'hello',
  empty: '',
  int: 42,
  zero: 0,
  negative: -7,
  bigNegative: -(2 ** 40) - 3,
  largeSafe: Number.MAX_SAFE_INTEGER,
  minSafe: Number.MIN_SAFE_INTEGER,
  beyondSafe: 2 ** 53,
  huge: 1e300,
  double: 3.25,
  tiny: 5e-324,
  negativeZero: -0,
  nan: NaN,
  inf: Infinity,
  negInf: -Infinity,
  yes: true,
  no: false,
  strings: ['a', '', 'ünï', '😀'],
  ints: [1, -1, 0, 2 ** 31, -(2 ** 31)],
  doubles: [1.5, -0.25, NaN],
  bools: [true, false],
  emptyArray: [],
  unicode: 'Grüße, 日本語, emoji 😀👍🏽, combining é',
  escapes: 'quote " backslash \\ newline \n tab \t nul \u0000 bell \u0007 del \u007f ls \u2028 ps \u2029 </script>',
  'key with "quotes" and ünïcödé 🔑': 'v',
  long: 'x'.repeat(300) + '€'.repeat(100),
}

interface Scenario {
  readonly spans: ReadableSpan[]
  readonly byName: Map<string, ReadableSpan>
}

function scenario(): Scenario {
  const exporter = new InMemorySpanExporter()
  const limits = {
    attributeCountLimit: 40,
    eventCountLimit: 3,
    linkCountLimit: 2,
    attributePerEventCountLimit: 2,
    attributePerLinkCountLimit: 1,
  }
  const tracer = createTracer({ env: {}, serviceName: 'svc', processors: [new SimpleSpanProcessor(exporter)], spanLimits: limits })
  const other = createTracer({ env: {}, serviceName: 'svc-2', resource: { 'deployment.environment.name': 'test' }, processors: [new SimpleSpanProcessor(exporter)] })
  const scoped = tracer.getTracer('other-scope', '1.0.0')
  // A second scope object with the same name and version: the same ScopeSpans.
  const scopedAgain = tracer.getTracer('other-scope', '1.0.0')

  const root = tracer.startSpan('GET /users/:id', { kind: SpanKind.SERVER, attributes: ALL_TYPES })
  const child = tracer.startSpan('SELECT users', { kind: SpanKind.CLIENT, parent: root, attributes: { 'db.system': 'postgresql' } })
  child.addEvent('rows', { count: 3, 'db.note': 'ünï 😀' })
  child.addEvent('empty event')
  child.setStatus(SpanStatusCode.ERROR, 'connection reset: "peer" went away 💥')
  child.end()

  const ctx = tracer.extract({ traceparent: TRACEPARENT, tracestate: 'a=1,b=2' })
  const remoteChild = runWithContext(ctx, () => tracer.startSpan('remote child', { kind: SpanKind.CONSUMER }))
  remoteChild.end()

  const remoteContext = ctx.span as SpanContext
  const linked: Span = scoped.startSpan('linked', {
    kind: SpanKind.PRODUCER,
    links: [
      { context: remoteContext, attributes: { 'link.kind': 'remote', dropped: 1 } },
      { context: child, attributes: { 'link.kind': 'local' } },
      { context: root },
    ],
  })
  linked.setStatus(SpanStatusCode.OK)
  linked.end()

  const otherSpan = other.startSpan('other resource')
  otherSpan.end()

  const limited = scopedAgain.startSpan('limited')
  for (let i = 0; i < 45; i++) limited.setAttribute(`a${i}`, i)
  for (let i = 0; i < 5; i++) limited.addEvent(`e${i}`, { x: 1, y: 2, z: 3, w: 4 })
  limited.recordException(new TypeError('bad "input"'))
  limited.end()

  root.end()
  const spans = exporter.getFinishedSpans()
  return { spans, byName: new Map(spans.map((s) => [s.name, s])) }
}

function spansOf(request: Json): Json[] {
  const out: Json[] = []
  for (const rs of request.resourceSpans as Json[]) {
    for (const ss of rs.scopeSpans as Json[]) out.push(...(ss.spans as Json[]))
  }
  return out
}

describe('encodeProtobuf', () => {
  const { spans, byName } = scenario()
  const decoded = decode(encodeProtobuf(spans))

  it('decodes with the official .proto files to the expected request', () => {
    expect(spans).toHaveLength(6)
    expect(toOtlpJson(decoded)).toEqual(expectedRequest(spans))
  })

  it('decodes to the same request as the JSON encoding', () => {
    expect(toOtlpJson(decoded)).toEqual(JSON.parse(encodeJson(spans)))
  })

  it('groups by resource, then by scope name and version, keeping span order', () => {
    const resourceSpans = decoded.resourceSpans as Json[]
    expect(resourceSpans).toHaveLength(2)
    const scopes = (resourceSpans[0]!.scopeSpans as Json[]).map((ss) => [ss.scope, (ss.spans as Json[]).map((s) => s.name)])
    expect(scopes).toEqual([
      [{ name: '@spanline/core', version: expect.any(String) }, ['SELECT users', 'remote child', 'GET /users/:id']],
      [{ name: 'other-scope', version: '1.0.0' }, ['linked', 'limited']],
    ])
    const second = resourceSpans[1]!
    const serviceName = ((second.resource as Json).attributes as Json[]).find((kv) => kv.key === 'service.name')
    expect(serviceName).toEqual({ key: 'service.name', value: { stringValue: 'svc-2' } })
    expect(((second.scopeSpans as Json[])[0]!.spans as Json[]).map((s) => s.name)).toEqual(['other resource'])
  })

  it('writes ids as raw bytes and times exactly as toUnixNanos', () => {
    const bySpanId = new Map(spansOf(decoded).map((s) => [
      Buffer.from(s.spanId as Uint8Array).toString('hex'),
      s,
    ]))
    for (const span of spans) {
      const d = bySpanId.get(span.spanId)!
      expect(Buffer.from(d.traceId as Uint8Array)).toHaveLength(16)
      expect(Buffer.from(d.traceId as Uint8Array).toString('hex')).toBe(span.traceId)
      expect(d.startTimeUnixNano).toBe(toUnixNanos(span.startTime).toString())
      expect(d.endTimeUnixNano).toBe(toUnixNanos(span.endTime).toString())
      if (span.parentSpanId === undefined) expect(d.parentSpanId).toBeUndefined()
      else expect(Buffer.from(d.parentSpanId as Uint8Array).toString('hex')).toBe(span.parentSpanId)
    }
  })

  it.each([
    ['the default sampler', undefined],
    // A sampler that reads the trace id: roots get theirs as hex first.
    ['a ratio sampler', new TraceIdRatioSampler(1 - 2 ** -40)],
  ])('writes generated ids from their words, still right after the id pool is refilled many times (%s)', (_, sampler) => {
    // Recording spans copy generated ids out of a 64 KiB pool that is
    // refilled in place, and format hex only when read: encode 2,000 spans
    // (roots, local children, children of a remote parent) before reading
    // most ids, while other ids use up the pool several times over.
    const exporter = new InMemorySpanExporter()
    const tracer = createTracer({ env: {}, processors: [new SimpleSpanProcessor(exporter)], ...(sampler !== undefined && { sampler }) })
    const remote = tracer.extract({ traceparent: TRACEPARENT })
    for (let i = 0; i < 500; i++) {
      const root = tracer.startSpan(`root ${i}`)
      // Some ids are read (formatted and cached) at once: the bytes encoded
      // later, after refills, must still be these.
      if (i % 50 === 0) void [root.traceId, root.spanId]
      const child = tracer.startSpan(`child ${i}`, { parent: root })
      tracer.startSpan(`grandchild ${i}`, { parent: child }).end()
      child.end()
      root.end()
      runWithContext(remote, () => tracer.startSpan(`remote child ${i}`)).end()
      for (let j = 0; j < 20; j++) generateTraceId()
    }
    const list = exporter.getFinishedSpans()
    const got = spansOf(decode(encodeProtobuf(list)))
    const hex = (b: unknown): string | undefined => (b === undefined ? undefined : Buffer.from(b as Uint8Array).toString('hex'))
    expect(got.map((s) => [s.name, hex(s.traceId), hex(s.spanId), hex(s.parentSpanId)])).toEqual(
      list.map((s) => [s.name, s.traceId, s.spanId, s.parentSpanId]),
    )
    const byName3 = new Map(list.map((s) => [s.name, s]))
    for (let i = 0; i < 500; i += 97) {
      const root = byName3.get(`root ${i}`)!
      const child = byName3.get(`child ${i}`)!
      expect(root.traceId).toMatch(/^[0-9a-f]{32}$/)
      expect(root.spanId).toMatch(/^[0-9a-f]{16}$/)
      expect(child.traceId).toBe(root.traceId)
      expect(child.parentSpanId).toBe(root.spanId)
      expect(byName3.get(`grandchild ${i}`)!.parentSpanId).toBe(child.spanId)
      expect(byName3.get(`remote child ${i}`)!.parentSpanId).toBe('b7ad6b7169203331')
    }
    expect(new Set(list.map((s) => s.spanId)).size).toBe(list.length)
  })

  it('writes the ids of a parent from a header, any valid ones, with or without a trace state (property)', () => {
    const exporter = new InMemorySpanExporter()
    const tracer = createTracer({ env: {}, processors: [new SimpleSpanProcessor(exporter)], propagator: ['tracecontext', 'b3'] })
    const hex = (b: unknown): string | undefined => (b === undefined ? undefined : Buffer.from(b as Uint8Array).toString('hex'))
    const id = (digits: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${digits}}$`)).filter((h) => /[1-9a-f]/.test(h))
    // Either half of a trace id may be zeros (a 64-bit B3 trace id always starts with them).
    const traceId = fc.oneof(id(32), id(16).map((h) => '0'.repeat(16) + h), id(16).map((h) => h + '0'.repeat(16)))
    fc.assert(fc.property(traceId, id(16), fc.boolean(), fc.boolean(), (trace, parent, withState, b3) => {
      exporter.reset()
      const headers: Record<string, string> = b3
        ? { b3: `${trace.startsWith('0'.repeat(16)) ? trace.slice(16) : trace}-${parent}-1` }
        : { traceparent: `00-${trace}-${parent}-01`, ...(withState && { tracestate: 'k=v' }) }
      const remote = tracer.extract(headers)
      const child = runWithContext(remote, () => tracer.startSpan('child'))
      tracer.startSpan('grandchild', { parent: child }).end()
      child.end()
      const list = exporter.getFinishedSpans()
      expect(list.map((s) => [s.name, s.traceId, s.parentSpanId])).toEqual([['grandchild', trace, child.spanId], ['child', trace, parent]])
      const got = spansOf(decode(encodeProtobuf(list)))
      expect(got.map((s) => [s.name, hex(s.traceId), hex(s.spanId), hex(s.parentSpanId), s.traceState || undefined]))
        .toEqual(list.map((s) => [s.name, trace, s.spanId, s.parentSpanId, withState && !b3 ? 'k=v' : undefined]))
    }), { numRuns: 300 })
  })

  it('sets flags: W3C flags, HAS_IS_REMOTE always, IS_REMOTE for a remote parent or link', () => {
    const byName2 = new Map(spansOf(decoded).map((s) => [s.name, s]))
    expect(byName2.get('GET /users/:id')!.flags).toBe(0x100 | (byName.get('GET /users/:id')!.traceFlags & 0xff))
    const remote = byName2.get('remote child')!
    expect(remote.flags).toBe(0x301 | (byName.get('remote child')!.traceFlags & 0xfe))
    expect(toOtlpJson(remote.parentSpanId)).toBe('b7ad6b7169203331')
    expect(toOtlpJson(remote.traceId)).toBe('0af7651916cd43dd8448eb211c80319c')
    expect(remote.traceState).toBe('a=1,b=2')
    const links = byName2.get('linked')!.links as Json[]
    expect(links.map((l) => l.flags)).toEqual([0x301, 0x100 | byName.get('SELECT users')!.traceFlags])
    expect(links[0]!.traceState).toBe('a=1,b=2')
  })

  it('encodes short string attributes exactly at every length the one-pass KeyValue path handles', () => {
    // Keys and values up to 42 UTF-16 units take the one-pass path: its
    // reserved one-byte lengths must be fixed up once the KeyValue or the
    // AnyValue passes 127 bytes (3-byte characters, surrogate pairs).
    const { tracer, exporter } = ((): { tracer: ReturnType<typeof createTracer>; exporter: InMemorySpanExporter } => {
      const e = new InMemorySpanExporter()
      return { tracer: createTracer({ env: {}, processors: [new SimpleSpanProcessor(e)] }), exporter: e }
    })()
    const attributes: Record<string, string> = {}
    for (const unit of ['a', 'é', '€', '😀']) {
      for (const n of [0, 1, 20, 21, 41, 42, 43]) {
        const text = unit.repeat(unit.length === 2 ? Math.floor(n / 2) : n)
        attributes[`k${unit}${n}`] = text
        attributes[`${unit}`.repeat(unit.length === 2 ? 21 : 42) + n] = text
      }
    }
    const span = tracer.startSpan('limits', { attributes })
    span.end()
    const got = spansOf(decode(encodeProtobuf(exporter.getFinishedSpans())))[0]!
    expect(toOtlpJson(got.attributes)).toEqual(Object.entries(attributes).map(([key, v]) => ({ key, value: { stringValue: v } })))
  })

  it('copies a repeated attribute\'s earlier bytes only when key and value are the same, across batches', () => {
    // The encoder copies the bytes of attributes equal to the previous
    // span's. Values change, repeat, alternate and switch type ('200' vs
    // 200, 0 vs -0, which are === but encode differently), and Buffer's
    // shared pool is churned between batches.
    const exporter = new InMemorySpanExporter()
    const tracer = createTracer({ env: {}, processors: [new SimpleSpanProcessor(exporter)] })
    // Starts and ends with 'a', 'a': a batch must not copy bytes of the previous one, which are gone.
    const sequence: AttributeValue[] = ['a', 'a', 'a', 'b', 'b', 'a', 200, 200, '200', '200', true, true, false, 2.5, 2.5, 0, 0, -0, -0, 0, NaN, NaN, 'ü€😀', 'ü€😀', 'a', 'a']
    for (let round = 0; round < 3; round++) {
      exporter.reset()
      for (const [i, value] of sequence.entries()) {
        const span = tracer.startSpan(`s${i}`)
        span.setAttribute('memo.key', value)
        span.setAttribute('memo.other', i % 3 === 0 ? 'x' : 'y')
        span.setAttribute('memo.constant', 'same on every span')
        span.addEvent('e', { 'memo.key': 'event value' })
        span.end()
      }
      const got = spansOf(decode(encodeProtobuf(exporter.getFinishedSpans()))).map((s) => toOtlpJson(s) as Json)
      expect(got.map((s) => s.attributes)).toEqual(sequence.map((value, i) => [
        { key: 'memo.key', value: expectedAnyValue(value) },
        { key: 'memo.other', value: { stringValue: i % 3 === 0 ? 'x' : 'y' } },
        { key: 'memo.constant', value: { stringValue: 'same on every span' } },
      ]))
      expect(got.map((s) => (s.events as Json[])[0]!.attributes)).toEqual(sequence.map(() => [{ key: 'memo.key', value: { stringValue: 'event value' } }]))
      // Reuse Buffer's pool, where small batches are allocated.
      for (let i = 0; i < 200; i++) Buffer.allocUnsafe(64).fill(0xff)
    }
  })

  it('writes deferred attributes without giving them to the span, and makes them the usual way when the source cannot write them', () => {
    const exporter = new InMemorySpanExporter()
    const tracer = createTracer({ env: {}, processors: [new SimpleSpanProcessor(exporter)] })
    const calls = { added: 0, filled: 0 }
    const span = tracer.startSpan('deferred', { kind: SpanKind.SERVER }) as RecordingSpan
    span.deferAttributes(pairSource(['k', 'v', 'n', 7], calls), 2)
    span.end()
    const broken = tracer.startSpan('broken', { kind: SpanKind.SERVER }) as RecordingSpan
    const brokenCalls = { added: 0, filled: 0 }
    broken.deferAttributes({ ...pairSource(['k', 'w'], brokenCalls), fillAttributes: () => { throw new Error('bug') } }, 1)
    broken.end()
    for (let round = 0; round < 2; round++) {
      const got = spansOf(decode(encodeProtobuf([span, broken, span]))).map((s) => toOtlpJson(s.attributes))
      const own = [{ key: 'k', value: { stringValue: 'v' } }, { key: 'n', value: { intValue: '7' } }]
      expect(got).toEqual([own, [{ key: 'k', value: { stringValue: 'w' } }], own])
    }
    // Written each of the four times it was encoded, never made; the broken one made once, then read.
    expect(calls).toEqual({ added: 0, filled: 4 })
    expect(span.attributePairs).toBeNull()
    expect(brokenCalls).toEqual({ added: 1, filled: 0 })
    expect(broken.attributePairs).toEqual(['k', 'w'])
    expect(span.attributes).toEqual({ k: 'v', n: 7 })
    expect(calls.added).toBe(1)
  })

  it('carries events, links, status and dropped counts', () => {
    const d = new Map(spansOf(toOtlpJson(decoded) as Json).map((s) => [s.name, s]))
    const child = d.get('SELECT users')!
    expect(child.status).toEqual({ code: 2, message: 'connection reset: "peer" went away 💥' })
    expect(child.events).toEqual([
      expect.objectContaining({ name: 'rows', attributes: [{ key: 'count', value: { intValue: '3' } }, { key: 'db.note', value: { stringValue: 'ünï 😀' } }] }),
      { name: 'empty event', timeUnixNano: expect.stringMatching(/^\d{19}$/) },
    ])
    expect(d.get('linked')!.status).toEqual({ code: 1 })
    expect(d.get('linked')!.droppedLinksCount).toBe(1)
    expect((d.get('linked')!.links as Json[])[0]!.droppedAttributesCount).toBe(1)
    const limited = d.get('limited')!
    expect(limited.droppedAttributesCount).toBe(5)
    expect(limited.attributes).toHaveLength(40)
    expect(limited.droppedEventsCount).toBe(3)
    expect((limited.events as Json[]).map((e) => e.droppedAttributesCount)).toEqual([2, 2, 2])
    expect(d.get('GET /users/:id')!.status).toBeUndefined()
  })

  it('encodes every attribute type to the value it was given', () => {
    const root = spansOf(decoded).find((s) => s.name === 'GET /users/:id')!
    const back = Object.fromEntries((root.attributes as Json[]).map((kv) => [kv.key, fromAnyValue(kv.value as Json)]))
    expect(back).toEqual(ALL_TYPES)
    expect(Object.is(back.negativeZero, -0)).toBe(true)
  })

  it('writes a kind given from plain JavaScript as it is, even one that is no SpanKind', () => {
    const exporter = new InMemorySpanExporter()
    const tracer = createTracer({ env: {}, processors: [new SimpleSpanProcessor(exporter)] })
    for (const kind of [SpanKind.CONSUMER, 300]) tracer.startSpan('k', { kind: kind as SpanKind }).end()
    const spans = exporter.getFinishedSpans()
    const queue = new ProtobufSpanQueue()
    for (const span of spans) queue.push(span)
    for (const body of [encodeProtobuf(spans), queue.take(512).body]) {
      expect(spansOf(decode(body)).map((s) => s.kind)).toEqual([SpanKind.CONSUMER, 300])
    }
  })

  it('encodes an empty list as an empty request', () => {
    const bytes = encodeProtobuf([])
    expect(bytes).toHaveLength(0)
    expect(decode(bytes)).toEqual({})
  })

  it('returns a buffer that later calls do not overwrite', () => {
    const first = encodeProtobuf(spans)
    const copy = Buffer.from(first)
    encodeProtobuf(spans.slice(1))
    encodeProtobuf([byName.get('limited')!])
    expect(first.equals(copy)).toBe(true)
  })

  it('keeps messages intact past the reserved length sizes (> 2 MiB, long strings)', () => {
    const exporter = new InMemorySpanExporter()
    const tracer = createTracer({ env: {}, serviceName: 'svc', processors: [new SimpleSpanProcessor(exporter)] })
    const big = 'ä'.repeat(1_100_000)
    tracer.startSpan('big', { attributes: { big, array: [big.slice(0, 70_000), 'y'.repeat(200)] } }).end()
    for (let i = 0; i < 3000; i++) tracer.startSpan(`small ${i}`).end()
    const many = exporter.getFinishedSpans()
    const bytes = encodeProtobuf(many)
    expect(bytes.length).toBeGreaterThan(2 * 1024 * 1024)
    expectBodyOf(bytes, many)
  })

  it('round-trips random attribute maps unchanged (property)', () => {
    const exporter = new InMemorySpanExporter()
    const tracer = createTracer({ env: {}, serviceName: 'svc', processors: [new SimpleSpanProcessor(exporter)] })
    const text = fc.string({ unit: 'binary', maxLength: 80 })
    const value = fc.oneof(
      text,
      fc.boolean(),
      fc.integer(),
      fc.maxSafeInteger(),
      fc.double(), // includes -0, NaN, ±Infinity, subnormals, now and then
      fc.constantFrom(0, -0, NaN, Infinity, -Infinity, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 53, -(2 ** 53)),
      fc.array(text, { maxLength: 5 }),
      fc.array(fc.oneof(fc.maxSafeInteger(), fc.double()), { maxLength: 5 }),
      fc.array(fc.boolean(), { maxLength: 5 }),
    )
    fc.assert(
      fc.property(fc.dictionary(text, value, { maxKeys: 12 }), fc.string({ unit: 'binary' }), (attributes, name) => {
        exporter.reset()
        tracer.startSpan(name, { attributes }).end()
        const [span] = exporter.getFinishedSpans()
        const d = spansOf(decode(encodeProtobuf([span!])))[0]!
        expect(d.name ?? '').toBe(span!.name)
        const back: Record<string, unknown> = {}
        for (const kv of (d.attributes as Json[] | undefined) ?? []) back[kv.key as string] = fromAnyValue(kv.value as Json)
        expect(back).toEqual(span!.attributes ?? {})
        for (const key of Object.keys(back)) {
          const original = span!.attributes![key]
          if (typeof original === 'number') expect(Object.is(back[key], original)).toBe(true)
        }
      }),
      { numRuns: 300 },
    )
  })
})

describe('ProtobufSpanQueue (spans encoded soon after they end, taken as request bodies)', () => {
  const { spans } = scenario()

  it('takes the very bytes encodeProtobuf writes for the same spans, across resources and scopes', () => {
    const queue = new ProtobufSpanQueue()
    for (const span of spans) queue.push(span)
    expect(queue.length).toBe(6)
    const { body, count } = queue.take(512)
    expect(count).toBe(6)
    expect(queue.length).toBe(0)
    expect(body.equals(encodeProtobuf(spans))).toBe(true)
    expectBodyOf(body, spans)
  })

  it('takes the oldest spans first, at most the batch size, for any order of pushes and takes (property)', () => {
    // Spans of two resources and three scopes (two of them equal by name and version), in random order.
    const exporter = new InMemorySpanExporter()
    const a = createTracer({ env: {}, serviceName: 'a', processors: [new SimpleSpanProcessor(exporter)] })
    const b = createTracer({ env: {}, serviceName: 'b', processors: [new SimpleSpanProcessor(exporter)] })
    const makers = [a, b, a.getTracer('lib', '1'), a.getTracer('lib', '1'), b.getTracer('lib')]
    const op = fc.oneof(
      fc.record({ push: fc.integer({ min: 0, max: makers.length - 1 }), events: fc.nat(2), name: fc.string({ maxLength: 60 }) }),
      fc.record({ take: fc.integer({ min: 1, max: 8 }) }),
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const queue = new ProtobufSpanQueue()
        const pending: ReadableSpan[] = []
        for (const o of ops) {
          if ('push' in o) {
            exporter.reset()
            const span = makers[o.push]!.startSpan(o.name, { attributes: { 'url.path': `/${o.name}`, n: o.events } })
            for (let i = 0; i < o.events; i++) span.addEvent(`e${i}`)
            span.end()
            const ended = exporter.getFinishedSpans()[0]!
            queue.push(ended)
            pending.push(ended)
          } else if (pending.length > 0) {
            const expected = pending.splice(0, o.take)
            const { body, count } = queue.take(o.take)
            expect(count).toBe(expected.length)
            expect(body.equals(encodeProtobuf(expected))).toBe(true)
          }
          expect(queue.length).toBe(pending.length)
        }
      }),
      { numRuns: 200 },
    )
  })

  it('copies runs of attributes equal to the previous span\'s only while those bytes are still there (property)', () => {
    // Spans of three kinds from two tracers (two resources) share a few keys
    // and values, in varying order and number, so most attributes repeat the
    // previous span's of the same kind. Around them: tiny spans (their
    // length needs one byte, so each span's body moves), huge values (three
    // bytes), long names and trace states (the slow head path), remote
    // parents, events; two queues and encodeProtobuf() in between, and
    // takes of any size (the bytes to copy from are dropped or moved).
    // Every body must decode to the oracle's request for its spans.
    const exporter = new InMemorySpanExporter()
    const a = createTracer({ env: {}, serviceName: 'a', processors: [new SimpleSpanProcessor(exporter)] })
    const b = createTracer({ env: {}, serviceName: 'b', processors: [new SimpleSpanProcessor(exporter)] })
    const remote = a.extract({ traceparent: TRACEPARENT, tracestate: 'k=v' })
    const big = 'h'.repeat(20_000)
    const values: AttributeValue[] = ['x', 'y', '', 'ünï 😀', 0, -0, 1, 2.5, NaN, true, false, ['x'], big]
    const attribute = fc.record({ key: fc.constantFrom('k1', 'k2', 'k3', 'k4', 'k5'), value: fc.integer({ min: 0, max: values.length - 1 }) })
    const push = fc.record({
      queue: fc.nat(1),
      tracer: fc.nat(1),
      kind: fc.constantFrom(SpanKind.SERVER, SpanKind.CLIENT, SpanKind.INTERNAL),
      name: fc.constantFrom('s', 'GET /users/:id', 'n'.repeat(60)),
      remote: fc.boolean(),
      events: fc.nat(2),
      attributes: fc.array(attribute, { maxLength: 6 }),
      // Attributes deferred to a source (as a server span's), which the
      // encoder has write into arrays of its own, alternately.
      deferred: fc.boolean(),
    })
    const op = fc.oneof(
      { weight: 6, arbitrary: push },
      { weight: 1, arbitrary: fc.record({ take: fc.integer({ min: 1, max: 6 }), from: fc.nat(1) }) },
      { weight: 1, arbitrary: fc.record({ encode: fc.constant(true) }) },
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const queues = [new ProtobufSpanQueue(), new ProtobufSpanQueue()]
        const pending: ReadableSpan[][] = [[], []]
        const all: ReadableSpan[] = []
        for (const o of ops) {
          if ('queue' in o) {
            exporter.reset()
            const tracer = o.tracer === 0 ? a : b
            const span = runWithContext(o.remote ? remote : a.extract({}), () => tracer.startSpan(o.name, { kind: o.kind }))
            if (o.deferred) {
              // Strings and numbers only (what a source gives), each key once.
              const byKey = new Map<string, string | number>()
              for (const { key, value } of o.attributes) {
                const v = values[value]!
                if (typeof v === 'string' || typeof v === 'number') byKey.set(key, v)
              }
              ;(span as RecordingSpan).deferAttributes(pairSource([...byKey].flat()), byKey.size)
            } else for (const { key, value } of o.attributes) span.setAttribute(key, values[value])
            for (let i = 0; i < o.events; i++) span.addEvent(`event ${i}`, { k1: 'x' })
            span.end()
            const ended = exporter.getFinishedSpans()[0]!
            queues[o.queue]!.push(ended)
            pending[o.queue]!.push(ended)
            all.push(ended)
          } else if ('take' in o) {
            if (pending[o.from]!.length === 0) continue
            const { body } = queues[o.from]!.take(o.take)
            expectBodyOf(body, pending[o.from]!.splice(0, o.take))
          } else if (all.length > 0) {
            expectBodyOf(encodeProtobuf(all.slice(-5)), all.slice(-5))
          }
        }
        for (const i of [0, 1]) if (pending[i]!.length > 0) expectBodyOf(queues[i]!.take(512).body, pending[i]!)
      }),
      { numRuns: 150 },
    )
  })

  it('skips comparing only what a source vouches for: the same lead, stamps and length limit as the previous span (property)', () => {
    // Sources as the HTTP server layer's (see AttributeLead and RequestLead):
    // two lead objects whose three parts are remade now and then (new stamps,
    // other values, another number of entries), some sources vouching for
    // nothing; spans from a tracer without a length limit and from one whose
    // limit cuts the lead's longer values. The encoder may copy a vouched
    // part from the previous span only when all of these agree; whatever it
    // does, every body must decode to the oracle's request for its spans.
    const exporter = new InMemorySpanExporter()
    const tracers = [
      createTracer({ env: {}, serviceName: 'a', processors: [new SimpleSpanProcessor(exporter)] }),
      createTracer({ env: {}, serviceName: 'a', spanLimits: { attributeValueLengthLimit: 5 }, processors: [new SimpleSpanProcessor(exporter)] }),
    ]
    const leads = [{ name: 'lead 0' }, { name: 'lead 1' }]
    // What each part is, by lead and stamp: the same whenever they are (the contract).
    const firstPart = (k: number, stamp: number): Array<string | number> =>
      stamp % 3 === 0 ? ['l.a', `first-${k}-${stamp}`] : ['l.a', `first-${k}-${stamp}`, 'l.n', 10 * k + stamp, 'l.s', 'short']
    const secondPart = (k: number, stamp: number): Array<string | number> => (stamp % 4 === 0 ? [] : ['l.c', `client-${k}-${stamp}`])
    const thirdPart = (k: number, stamp: number): Array<string | number> => (stamp === 3 ? [] : ['l.r', `route-${k}-${stamp}`, 'l.o', 200 + stamp])
    const push = fc.record({
      tracer: fc.nat(1),
      lead: fc.constantFrom(-1, 0, 1),
      stamp: fc.integer({ min: 1, max: 4 }),
      longStamp: fc.integer({ min: 1, max: 4 }),
      longestStamp: fc.integer({ min: 1, max: 3 }),
      rest: fc.uniqueArray(fc.record({ key: fc.constantFrom('k1', 'k2', 'k3'), value: fc.constantFrom<string | number>('x', 'y', 7, 'long value') }), { selector: (a) => a.key, maxLength: 3 }),
    })
    const op = fc.oneof(
      { weight: 6, arbitrary: push },
      { weight: 1, arbitrary: fc.record({ take: fc.integer({ min: 1, max: 6 }) }) },
      { weight: 1, arbitrary: fc.record({ encode: fc.constant(true) }) },
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const queue = new ProtobufSpanQueue()
        const pending: ReadableSpan[] = []
        const all: ReadableSpan[] = []
        for (const o of ops) {
          if ('tracer' in o) {
            exporter.reset()
            const span = tracers[o.tracer]!.startSpan('GET /users/:id', { kind: SpanKind.SERVER }) as RecordingSpan
            const k = Math.max(o.lead, 0)
            const first = firstPart(k, o.stamp)
            const second = secondPart(k, o.longStamp)
            const third = thirdPart(k, o.longestStamp)
            const pairs = [...first, ...second, ...third, ...o.rest.flatMap((a) => [a.key, a.value])]
            const vouch = o.lead < 0 ? undefined : (lead: AttributeLead): void => {
              lead.key = leads[o.lead]!
              lead.stamp = o.stamp
              lead.count = first.length
              lead.longStamp = o.longStamp
              lead.longCount = first.length + second.length
              lead.longestStamp = o.longestStamp
              lead.longestCount = first.length + second.length + third.length
            }
            span.deferAttributes(pairSource(pairs, undefined, vouch), pairs.length >> 1)
            span.end()
            const ended = exporter.getFinishedSpans()[0]!
            queue.push(ended)
            pending.push(ended)
            all.push(ended)
          } else if ('take' in o) {
            if (pending.length === 0) continue
            expectBodyOf(queue.take(o.take).body, pending.splice(0, o.take))
          } else if (all.length > 0) {
            expectBodyOf(encodeProtobuf(all.slice(-4)), all.slice(-4))
          }
        }
        if (pending.length > 0) expectBodyOf(queue.take(512).body, pending)
      }),
      { numRuns: 200 },
    )
  })

  it('hands out bodies that later pushes and takes do not overwrite', () => {
    const queue = new ProtobufSpanQueue()
    for (const span of spans) queue.push(span)
    const first = queue.take(3).body
    const copy = Buffer.from(first)
    for (const span of spans) queue.push(span)
    queue.take(100)
    queue.push(spans[0]!)
    queue.take(1)
    expect(first.equals(copy)).toBe(true)
  })

  it('writes the next body into a recycled one, and only into the buffer of the last body taken', () => {
    const exporter = new InMemorySpanExporter()
    const tracer = createTracer({ env: {}, serviceName: 'big', processors: [new SimpleSpanProcessor(exporter)] })
    // 40 spans of ~1 KiB: bodies past the 16 KiB below which nothing is recycled.
    for (let i = 0; i < 40; i++) tracer.startSpan(`op ${i}`, { attributes: { blob: 'x'.repeat(1000), i } }).end()
    const big = exporter.getFinishedSpans()
    const queue = new ProtobufSpanQueue()
    const fill = (): void => {
      for (const span of big) queue.push(span)
    }
    fill()
    const first = queue.take(512).body
    fill()
    const second = queue.take(512).body
    expect(second.buffer).not.toBe(first.buffer)
    // An older body (its export outlived its timeout) is not taken back.
    queue.recycle(first)
    fill()
    const third = queue.take(512).body
    expect(third.buffer).not.toBe(first.buffer)
    expect(third.buffer).not.toBe(second.buffer)
    queue.recycle(third)
    fill()
    const fourth = queue.take(512).body
    expect(fourth.buffer).toBe(third.buffer)
    expect(fourth.equals(encodeProtobuf(big))).toBe(true)
    // Recycled once: the same body given back twice is not handed out twice.
    queue.recycle(fourth)
    queue.recycle(fourth)
    fill()
    const fifth = queue.take(512).body
    fill()
    const sixth = queue.take(512).body
    expect(fifth.buffer).toBe(fourth.buffer)
    expect(sixth.buffer).not.toBe(fifth.buffer)
    expect(sixth.equals(encodeProtobuf(big))).toBe(true)
  })

  it('never recycles small bodies (Buffer.allocUnsafe pools those with other code\'s buffers)', () => {
    const queue = new ProtobufSpanQueue()
    for (const span of spans) queue.push(span)
    const first = queue.take(512).body
    const copy = Buffer.from(first)
    queue.recycle(first)
    for (const span of spans) queue.push(span)
    const second = queue.take(512).body
    expect(second.buffer === first.buffer && second.byteOffset === first.byteOffset).toBe(false)
    expect(first.equals(copy)).toBe(true)
  })

  it('keeps messages intact past the reserved length sizes (> 2 MiB, long strings), batch after batch', () => {
    const exporter = new InMemorySpanExporter()
    const tracer = createTracer({ env: {}, serviceName: 'svc', processors: [new SimpleSpanProcessor(exporter)] })
    const big = 'ä'.repeat(1_100_000)
    for (let i = 0; i < 1000; i++) tracer.startSpan(`small ${i}`).end()
    tracer.startSpan('big', { attributes: { big, array: [big.slice(0, 70_000), 'y'.repeat(200)] } }).end()
    for (let i = 0; i < 2000; i++) tracer.startSpan(`small ${i}`, { attributes: { i } }).end()
    const many = exporter.getFinishedSpans()
    const queue = new ProtobufSpanQueue()
    for (const span of many) queue.push(span)
    const whole = queue.take(5000).body
    expect(whole.length).toBeGreaterThan(2 * 1024 * 1024)
    expect(whole.equals(encodeProtobuf(many))).toBe(true)
    // The arena, grown past its idle limit, is let go; the next batches still encode right.
    for (const span of many) queue.push(span)
    for (let from = 0; from < many.length; from += 512) {
      expect(queue.take(512).body.equals(encodeProtobuf(many.slice(from, from + 512)))).toBe(true)
    }
    expect(queue.length).toBe(0)
    queue.push(many[0]!)
    expect(queue.take(1).body.equals(encodeProtobuf([many[0]!]))).toBe(true)
  })

  it('keeps its index of spans right as it grows, partly empties and shrinks after a burst', () => {
    const exporter = new InMemorySpanExporter()
    const a = createTracer({ env: {}, serviceName: 'a', processors: [new SimpleSpanProcessor(exporter)] })
    const b = createTracer({ env: {}, serviceName: 'b', processors: [new SimpleSpanProcessor(exporter)] })
    // Two resources in turn now and then, so that takes also go through the grouped path.
    for (let i = 0; i < 5000; i++) (i % 97 === 0 ? b : a).startSpan(`s${i}`, { attributes: { i } }).end()
    const all = exporter.getFinishedSpans()
    const queue = new ProtobufSpanQueue()
    const pending: ReadableSpan[] = []
    let next = 0
    const push = (n: number): void => {
      for (const span of all.slice(next, next + n)) {
        queue.push(span)
        pending.push(span)
      }
      next += n
    }
    const take = (n: number): void => {
      const expected = pending.splice(0, n)
      const { body, count } = queue.take(n)
      expect(count).toBe(expected.length)
      expect(body.equals(encodeProtobuf(expected))).toBe(true)
      expect(queue.length).toBe(pending.length)
    }
    push(130) // past the first two sizes
    take(7)
    push(200)
    take(100)
    take(1000)
    push(4500) // a burst past the size kept when idle
    take(4000)
    take(600)
    push(70)
    take(69)
    take(1)
    expect(next).toBe(4900)
  })

  it('leaves the queue as it was when a span cannot be encoded', () => {
    const queue = new ProtobufSpanQueue()
    queue.push(spans[0]!)
    // Fails halfway: after the ids, at the attributes.
    const src = spans[1]!
    const broken = {
      traceId: src.traceId, spanId: src.spanId, traceFlags: src.traceFlags, traceState: src.traceState, isRemote: false,
      parentSpanId: src.parentSpanId, parentIsRemote: src.parentIsRemote, name: src.name, kind: src.kind,
      startTime: src.startTime, endTime: src.endTime, attributes: src.attributes, droppedAttributesCount: 0,
      get events(): never {
        throw new Error('broken span')
      },
      droppedEventsCount: 0, links: null, droppedLinksCount: 0, statusCode: src.statusCode, statusMessage: undefined,
      resource: src.resource, scope: src.scope, ended: true,
    } satisfies ReadableSpan
    expect(() => queue.push(broken)).toThrow('broken span')
    expect(queue.length).toBe(1)
    queue.push(spans[2]!)
    expect(queue.take(10).body.equals(encodeProtobuf([spans[0]!, spans[2]!]))).toBe(true)
  })
})

/** An AnyValue from protobufjs (toObject, longs as strings) → the JS value. */
function fromAnyValue(v: Json): unknown {
  if ('stringValue' in v) return v.stringValue
  if ('boolValue' in v) return v.boolValue
  if ('intValue' in v) {
    const n = Number(v.intValue)
    if (!Number.isSafeInteger(n) || String(n) !== v.intValue) throw new Error(`int_value ${String(v.intValue)} is not exact`)
    return n
  }
  if ('doubleValue' in v) return v.doubleValue
  if ('arrayValue' in v) return (((v.arrayValue as Json).values as Json[] | undefined) ?? []).map(fromAnyValue)
  throw new Error(`empty AnyValue ${JSON.stringify(v)}`)
}

describe('ProtoWriter', () => {
  function anyValue(write: (w: ProtoWriter) => void): Json {
    const w = new ProtoWriter()
    w.reset(1)
    write(w)
    return AnyValueType.toObject(AnyValueType.decode(w.finish()), { longs: String }) as Json
  }

  it('changes generation whenever bytes already written are dropped or moved, and only then', () => {
    const w = new ProtoWriter()
    w.reset(4)
    let g = w.generation
    const moved = (): boolean => {
      const changed = w.generation !== g
      g = w.generation
      return changed
    }
    const f = w.fork(0x0a, 1)
    w.string(0x0a, 'grows the 4-byte buffer: offsets stay valid')
    expect(moved()).toBe(false)
    w.ldelim(f, 1) // the length fits the byte reserved: nothing moves
    expect(moved()).toBe(false)
    const wide = w.fork(0x12, 2)
    w.uint32(1)
    const body = w.ldelim(wide, 2) // one byte would do: the body slides back
    expect(moved()).toBe(true)
    expect(body).toBe(wide - 1)
    // repeat() copies earlier bytes without moving any
    const before = w.position
    w.repeat(0, 3)
    expect(moved()).toBe(false)
    expect(w.view(before, w.position)).toEqual(w.view(0, 3))
    w.shift(1)
    expect(moved()).toBe(true)
    w.rewind(2)
    expect(moved()).toBe(true)
    w.finish()
    expect(moved()).toBe(true)
    w.resetInto(Buffer.alloc(64))
    expect(moved()).toBe(true)
  })

  it('writes int64 varints, negative ones as ten-byte two’s complement', () => {
    for (const n of [0, 1, 127, 128, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -128, -(2 ** 32), -(2 ** 53) + 1]) {
      expect(anyValue((w) => {
        w.uint32(0x18)
        w.int64(n)
      })).toEqual({ intValue: String(n) })
    }
  })

  it('encodes strings as Buffer does, at every length boundary and with lone surrogates', () => {
    const pieces = ['a', 'é', '€', '😀', '\ud800', '\udc00x', 'z\ud83d']
    for (const length of [0, 1, 41, 42, 43, 63, 64, 65, 127, 128, 200, 5000]) {
      for (const piece of pieces) {
        let s = ''
        while (s.length < length) s += piece
        s = s.slice(0, length)
        const w = new ProtoWriter()
        w.reset(1)
        w.string(0x0a, s)
        const bytes = w.finish()
        const utf8 = Buffer.from(s, 'utf8')
        const header = Buffer.from([0x0a, ...varint(utf8.length)])
        expect(bytes.equals(Buffer.concat([header, utf8]))).toBe(true)
      }
    }
  })

  it('writes known strings (keys, span names) as Buffer does, first time and every time after, whatever the buffer held', () => {
    const strings = ['http.request.method', 'GET /users/:id', 'é€😀 name', 'z\ud83d', '', 'x'.repeat(42), 'y'.repeat(43)]
    for (let round = 0; round < 3; round++) {
      for (const s of strings) {
        const w = new ProtoWriter()
        // A reused, dirty buffer: the copy must not depend on what was there.
        w.resetInto(Buffer.alloc(256, round))
        w.uint32(round)
        w.string(0x0a, s, true)
        const bytes = w.finish()
        const utf8 = Buffer.from(s, 'utf8')
        expect(bytes.equals(Buffer.concat([Buffer.from([round, 0x0a, ...varint(utf8.length)]), utf8]))).toBe(true)
      }
    }
  })

  it('writes known strings right when strings of one length, or of lengths 32 apart, alternate', () => {
    // The cache in front of the map keeps one string per length (mod 32).
    const strings = ['url.path', 'url.port', 'url.path', 'abc', 'x'.repeat(35), 'abd', 'abc', 'y'.repeat(35), 'url.port']
    for (let round = 0; round < 3; round++) {
      for (const s of strings) {
        const w = new ProtoWriter()
        w.reset(1)
        w.string(0x0a, s, true)
        expect(w.finish().equals(Buffer.concat([Buffer.from([0x0a, s.length]), Buffer.from(s)]))).toBe(true)
      }
    }
  })

  it('writes many distinct strings right, more than the known-string cache keeps', () => {
    // More distinct names than the cache keeps (ids in span names): each still encodes right.
    for (let i = 0; i < 2000; i++) {
      const s = `GET /users/${i}`
      const w = new ProtoWriter()
      w.reset(1)
      w.string(0x0a, s, true)
      expect(w.finish().equals(Buffer.concat([Buffer.from([0x0a, s.length]), Buffer.from(s)]))).toBe(true)
    }
  })

  it('moves a body when the reserved length size was wrong, either way', () => {
    for (const [reserve, bodyLength] of [[1, 200], [3, 5], [2, 0], [1, 20_000]] as const) {
      const w = new ProtoWriter()
      w.reset(1)
      const start = w.fork(0x2a, reserve)
      const body = 'q'.repeat(bodyLength)
      for (const c of body) w.uint32(c.charCodeAt(0))
      w.ldelim(start, reserve)
      const bytes = w.finish()
      expect(bytes.equals(Buffer.concat([Buffer.from([0x2a, ...varint(bodyLength)]), Buffer.from(body)]))).toBe(true)
    }
  })
})

function varint(n: number): number[] {
  const out: number[] = []
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  out.push(n)
  return out
}

describe('toUnixNanosHalves / toUnixNanosString', () => {
  const halves = new Uint32Array(2)
  function check(t: number): void {
    const exact = toUnixNanos(t)
    toUnixNanosHalves(t, halves)
    expect((BigInt(halves[1]!) << 32n) | BigInt(halves[0]!)).toBe(BigInt.asUintN(64, exact))
    expect(toUnixNanosString(t)).toBe(exact.toString())
  }

  it('agree with toUnixNanos on edge cases', () => {
    const origin = performance.timeOrigin
    for (const t of [
      0, -0, 1e-7, 4e-7, 5e-7, 6e-7, 1.5e-6, -1.5e-6, 0.001, 123.456789, 1e3, 86_400_000,
      2 ** 53 / 1e6, 2 ** 53 / 1e6 + 1, 9.1e9, 1.23456789e10, 3.2e11, 1e12, -1e5,
      -origin, -origin + 1e-6, -origin - 1e-6, -origin - 5e-7, -origin - 1000.0005, -2 * origin,
    ]) {
      check(t)
    }
  })

  it('agree with toUnixNanos on random times (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.double({ min: 0, max: 1e7, noNaN: true }), // the first ~3 hours
          fc.double({ min: 0, max: 1e12, noNaN: true }), // up to ~30 years of uptime, past 2^53 ns
          fc.double({ min: -2 * performance.timeOrigin, max: 0, noNaN: true }), // caller-given times, pre-1970
          fc.integer({ min: 0, max: 2 ** 40 }).map((n) => n / 1e6),
        ),
        (t) => check(t),
      ),
      { numRuns: 2000 },
    )
  })

  it('turn non-finite times into 0 instead of throwing', () => {
    for (const t of [NaN, Infinity, -Infinity]) {
      toUnixNanosHalves(t, halves)
      expect([...halves]).toEqual([0, 0])
      expect(toUnixNanosString(t)).toBe('0')
    }
  })
})
