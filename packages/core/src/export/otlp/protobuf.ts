/**
 * OTLP/HTTP protobuf encoding of spans: an `ExportTraceServiceRequest`
 * (opentelemetry-proto collector/trace/v1/trace_service.proto, trace/v1/trace.proto,
 * common/v1/common.proto), written by hand onto one reused buffer. Fields at
 * their proto3 default are omitted, except inside the AnyValue oneof, where
 * presence is the value.
 */
import { toUnixNanosHalves } from '../../clock.ts'
import type { TraceState } from '../../propagation/tracestate.ts'
import type { Resource } from '../../resource.ts'
import { AttributeLead, RecordingSpan, type ReadableSpan } from '../../span.ts'
import type { AttributeValue, Attributes, InstrumentationScope } from '../../types.ts'
import { groupSpans, isInt64, linkFlags, spanFlags, traceStateString } from './mapping.ts'
import { ProtoWriter, putFixed64, putSpanId, putTraceId, SHORT_STRING, writeKnownUtf8 } from './writer.ts'

// Tags: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
const REQUEST_RESOURCE_SPANS = 0x0a // ExportTraceServiceRequest.resource_spans = 1
const RESOURCE_SPANS_RESOURCE = 0x0a // ResourceSpans.resource = 1
const RESOURCE_SPANS_SCOPE_SPANS = 0x12 // ResourceSpans.scope_spans = 2
const RESOURCE_ATTRIBUTES = 0x0a // Resource.attributes = 1
const SCOPE_SPANS_SCOPE = 0x0a // ScopeSpans.scope = 1
const SCOPE_SPANS_SPANS = 0x12 // ScopeSpans.spans = 2
const SCOPE_NAME = 0x0a // InstrumentationScope.name = 1
const SCOPE_VERSION = 0x12 // InstrumentationScope.version = 2
const SPAN_TRACE_ID = 0x0a // 1
const SPAN_SPAN_ID = 0x12 // 2
const SPAN_TRACE_STATE = 0x1a // 3
const SPAN_PARENT_SPAN_ID = 0x22 // 4
const SPAN_NAME = 0x2a // 5
const SPAN_KIND = 0x30 // 6
const SPAN_START_TIME = 0x39 // 7, fixed64
const SPAN_END_TIME = 0x41 // 8, fixed64
const SPAN_ATTRIBUTES = 0x4a // 9
const SPAN_DROPPED_ATTRIBUTES = 0x50 // 10
const SPAN_EVENTS = 0x5a // 11
const SPAN_DROPPED_EVENTS = 0x60 // 12
const SPAN_LINKS = 0x6a // 13
const SPAN_DROPPED_LINKS = 0x70 // 14
const SPAN_STATUS = 0x7a // 15
const SPAN_FLAGS = 0x85 // 16, fixed32: (16 << 3) | 5 = 133, written as the varint 0x85 0x01
const EVENT_TIME = 0x09 // 1, fixed64
const EVENT_NAME = 0x12 // 2
const EVENT_ATTRIBUTES = 0x1a // 3
const EVENT_DROPPED_ATTRIBUTES = 0x20 // 4
const LINK_TRACE_ID = 0x0a // 1
const LINK_SPAN_ID = 0x12 // 2
const LINK_TRACE_STATE = 0x1a // 3
const LINK_ATTRIBUTES = 0x22 // 4
const LINK_DROPPED_ATTRIBUTES = 0x28 // 5
const LINK_FLAGS = 0x35 // 6, fixed32
const STATUS_MESSAGE = 0x12 // 2
const STATUS_CODE = 0x18 // 3
const KEY_VALUE_KEY = 0x0a // 1
const KEY_VALUE_VALUE = 0x12 // 2
const ANY_STRING = 0x0a // 1
const ANY_BOOL = 0x10 // 2
const ANY_INT = 0x18 // 3
const ANY_DOUBLE = 0x21 // 4, fixed64
const ANY_ARRAY = 0x2a // 5
const ARRAY_VALUES = 0x0a // ArrayValue.values = 1

const writer = new ProtoWriter()
const nanos = new Uint32Array(2)
/**
 * Output bytes per span of the previous batch, to size the next buffer
 * (growing it copies). Clamped, so that one batch of huge spans does not make
 * the next one allocate far more than it needs.
 */
let bytesPerSpan = 256
const MAX_BYTES_PER_SPAN_GUESS = 2048

/**
 * Encodes finished spans as an OTLP `ExportTraceServiceRequest` in protobuf,
 * the body of a `POST /v1/traces` with `Content-Type: application/x-protobuf`.
 * Spans are grouped by resource, then by instrumentation scope, keeping their
 * order within a group. An empty list encodes to zero bytes (an empty request).
 *
 * @example
 * const body = encodeProtobuf(spans)
 * await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body })
 */
export function encodeProtobuf(spans: readonly ReadableSpan[]): Buffer {
  if (spans.length === 0) return Buffer.alloc(0)
  const w = writer
  // A little over the last batch's size, plus room for the resource.
  w.reset(512 + Math.ceil(spans.length * bytesPerSpan * 1.125))
  for (const group of groupSpans(spans)) {
    const resourceSpans = startResourceSpans(w, group.resource)
    for (const scopeGroup of group.scopes) {
      const scopeSpans = startScopeSpans(w, scopeGroup.scope)
      const list = scopeGroup.spans
      for (let i = 0; i < list.length; i++) writeSpan(encoder, list[i]!)
      w.ldelim(scopeSpans, 3)
    }
    w.ldelim(resourceSpans, 3)
  }
  const out = w.finish()
  bytesPerSpan = Math.min(MAX_BYTES_PER_SPAN_GUESS, Math.max(64, Math.ceil(out.length / spans.length)))
  return out
}

/**
 * Opens an ExportTraceServiceRequest.resource_spans entry and writes its
 * resource; the caller adds ScopeSpans, then calls `w.ldelim(start, 3)`.
 * ResourceSpans and ScopeSpans hold a whole batch: 3 length bytes (16 KiB to
 * 2 MiB), so a full batch (512 typical spans are some 100 KiB) is never
 * moved; a smaller one moves once, cheaply.
 */
export function startResourceSpans(w: ProtoWriter, resource: Resource): number {
  const start = w.fork(REQUEST_RESOURCE_SPANS, 3)
  const r = w.fork(RESOURCE_SPANS_RESOURCE, 2)
  writeAttributes(w, RESOURCE_ATTRIBUTES, resource.attributes)
  w.ldelim(r, 2)
  return start
}

/** Opens a ResourceSpans.scope_spans entry and writes its scope; close it with `w.ldelim(start, 3)`. */
export function startScopeSpans(w: ProtoWriter, scope: InstrumentationScope): number {
  const start = w.fork(RESOURCE_SPANS_SCOPE_SPANS, 3)
  const s = w.fork(SCOPE_SPANS_SCOPE, 1)
  const { name, version } = scope
  if (name !== '') w.string(SCOPE_NAME, name)
  if (version !== undefined && version !== '') w.string(SCOPE_VERSION, version)
  w.ldelim(s, 1)
  return start
}

/** One ScopeSpans.spans entry (tag, length, Span message), written to `encoder.out`. */
export function writeSpan(encoder: SpanEncoder, span: ReadableSpan): void {
  const w = encoder.out
  // A span with a few attributes is 128 bytes to 16 KiB: two length bytes.
  const start = w.fork(SCOPE_SPANS_SPANS, 2)
  let snapshot: AttributeSnapshot | null = null
  let attributesAt = 0
  if (span instanceof RecordingSpan) {
    writeRecordingHead(w, span)
    attributesAt = w.position - start
    snapshot = writeRecordingAttributes(w, span, encoder)
  } else {
    w.hexBytes(SPAN_TRACE_ID, span.traceId)
    w.hexBytes(SPAN_SPAN_ID, span.spanId)
    writeHeadAfterIds(w, span)
    if (span.attributes !== null) writeAttributes(w, SPAN_ATTRIBUTES, span.attributes)
  }
  if (span.droppedAttributesCount > 0) {
    w.uint32(SPAN_DROPPED_ATTRIBUTES)
    w.uint32(span.droppedAttributesCount)
  }
  const events = span.events
  if (events !== null) {
    for (let i = 0; i < events.length; i++) {
      const event = events[i]!
      const e = w.fork(SPAN_EVENTS, 1)
      toUnixNanosHalves(event.time, nanos)
      w.uint32(EVENT_TIME)
      w.fixed64(nanos[0]!, nanos[1]!)
      if (event.name !== '') w.string(EVENT_NAME, event.name)
      if (event.attributes !== null) writeAttributes(w, EVENT_ATTRIBUTES, event.attributes)
      if (event.droppedAttributesCount > 0) {
        w.uint32(EVENT_DROPPED_ATTRIBUTES)
        w.uint32(event.droppedAttributesCount)
      }
      w.ldelim(e, 1)
    }
  }
  if (span.droppedEventsCount > 0) {
    w.uint32(SPAN_DROPPED_EVENTS)
    w.uint32(span.droppedEventsCount)
  }
  const links = span.links
  if (links !== null) {
    for (let i = 0; i < links.length; i++) {
      const link = links[i]!
      const context = link.context
      const l = w.fork(SPAN_LINKS, 1)
      w.hexBytes(LINK_TRACE_ID, context.traceId)
      w.hexBytes(LINK_SPAN_ID, context.spanId)
      writeTraceState(w, LINK_TRACE_STATE, context.traceState)
      if (link.attributes !== null) writeAttributes(w, LINK_ATTRIBUTES, link.attributes)
      if (link.droppedAttributesCount > 0) {
        w.uint32(LINK_DROPPED_ATTRIBUTES)
        w.uint32(link.droppedAttributesCount)
      }
      w.uint32(LINK_FLAGS)
      w.fixed32(linkFlags(context))
      w.ldelim(l, 1)
    }
  }
  if (span.droppedLinksCount > 0) {
    w.uint32(SPAN_DROPPED_LINKS)
    w.uint32(span.droppedLinksCount)
  }
  const message = span.statusMessage
  if (span.statusCode !== 0 || (message !== undefined && message !== '')) {
    const status = w.fork(SPAN_STATUS, 1)
    if (message !== undefined && message !== '') w.string(STATUS_MESSAGE, message)
    if (span.statusCode !== 0) {
      w.uint32(STATUS_CODE)
      w.uint32(span.statusCode)
    }
    w.ldelim(status, 1)
  }
  w.uint32(SPAN_FLAGS)
  w.fixed32(spanFlags(span))
  const body = w.ldelim(start, 2)
  if (snapshot !== null) {
    // Only this span's body may have moved since its attributes were
    // written (its own length, or an event's, needing another byte): the
    // snapshot follows it and stays valid.
    snapshot.base = body + attributesAt
    snapshot.generation = w.generation
  }
}

/**
 * Span fields 1 to 8 of a span made here: ids from its 32-bit words (no
 * hex), name, kind and times, written straight into the buffer after one
 * bounds check. A trace state, an id known only as hex, a long name or an
 * odd kind (all unusual) go through the writer's own methods.
 */
function writeRecordingHead(w: ProtoWriter, span: RecordingSpan): void {
  // (Each 8-byte word of a pool's id is non-zero: see RecordingSpan. A
  // header's trace id may start with eight zero bytes, a 64-bit B3 id
  // always does: such a span's trace id is written from its hex.)
  const traceWords = (span.traceId0 | span.traceId1) !== 0
  if (!traceWords) w.hexBytes(SPAN_TRACE_ID, span.traceId)
  const name = span.name
  const shortName = name.length <= SHORT_STRING
  // ids 18 + 10 + 10, name 2 + 3 per unit, kind 2, times 18
  // (The name's bytes may be followed by 3 of garbage, overwritten next: see writeKnownUtf8.)
  const buf = w.reserve(60 + (shortName ? 3 * name.length : 0))
  const view = w.dataView
  let p = w.position
  if (traceWords) p = putTraceId(buf, view, p, SPAN_TRACE_ID, span.traceId0, span.traceId1, span.traceId2, span.traceId3)
  p = putSpanId(buf, view, p, SPAN_SPAN_ID, span.spanId0, span.spanId1)
  const parentWords = (span.parentId0 | span.parentId1) !== 0
  // (A kind beyond one varint byte is not a SpanKind, but is written as given.)
  if (span.traceState !== undefined || (!parentWords && span.parentSpanId !== undefined) || !shortName || (span.kind & ~0x7f) !== 0) {
    w.commit(p)
    writeHeadAfterIds(w, span)
    return
  }
  if (parentWords) p = putSpanId(buf, view, p, SPAN_PARENT_SPAN_ID, span.parentId0, span.parentId1)
  if (name !== '') {
    buf[p] = SPAN_NAME
    const end = writeKnownUtf8(buf, view, name, p + 2)
    buf[p + 1] = end - p - 2
    p = end
  }
  buf[p] = SPAN_KIND
  buf[p + 1] = span.kind
  toUnixNanosHalves(span.startTime, nanos)
  buf[p + 2] = SPAN_START_TIME
  p = putFixed64(view, p + 3, nanos[0]!, nanos[1]!)
  toUnixNanosHalves(span.endTime, nanos)
  buf[p] = SPAN_END_TIME
  w.commit(putFixed64(view, p + 1, nanos[0]!, nanos[1]!))
}

/** Span fields 3 to 8 (trace state, parent, name, kind, times) through the writer's own methods. */
function writeHeadAfterIds(w: ProtoWriter, span: ReadableSpan): void {
  writeTraceState(w, SPAN_TRACE_STATE, span.traceState)
  if (span instanceof RecordingSpan && (span.parentId0 | span.parentId1) !== 0) w.spanId(SPAN_PARENT_SPAN_ID, span.parentId0, span.parentId1)
  else writeParentSpanId(w, span.parentSpanId)
  if (span.name !== '') w.string(SPAN_NAME, span.name)
  w.uint32(SPAN_KIND)
  w.uint32(span.kind)
  toUnixNanosHalves(span.startTime, nanos)
  w.uint32(SPAN_START_TIME)
  w.fixed64(nanos[0]!, nanos[1]!)
  toUnixNanosHalves(span.endTime, nanos)
  w.uint32(SPAN_END_TIME)
  w.fixed64(nanos[0]!, nanos[1]!)
}

function writeParentSpanId(w: ProtoWriter, parent: string | undefined): void {
  if (parent !== undefined && parent !== '') w.hexBytes(SPAN_PARENT_SPAN_ID, parent)
}

function writeTraceState(w: ProtoWriter, tag: number, traceState: TraceState | undefined): void {
  if (traceState === undefined) return
  const s = traceStateString(traceState)
  if (s !== '') w.string(tag, s)
}

function writeAttributes(w: ProtoWriter, tag: number, attributes: Attributes): void {
  for (const key in attributes) {
    const value = attributes[key]
    if (value !== undefined) writeKeyValue(w, tag, key, value)
  }
}

/**
 * Span attributes repeat from span to span: a server's spans set the same
 * keys in the same order, and most values (method, scheme, host, peer,
 * protocol, route, status) equal the previous request's. For each span kind
 * the encoder remembers the previous span's attribute pairs and where their
 * bytes are in the writer; each run of attributes equal to the previous
 * span's (same key, same value, same place) is copied from there in one go,
 * and only the others (url.path) are encoded. The bytes are valid while the
 * writer's generation is unchanged: a queue's arena holds the spans of a
 * batch back to back. Interleaved kinds (a server span and its client
 * spans) each keep their own. Array values never match (fresh copies on every span).
 * Attributes a deferred source vouches for (see AttributeLead) are not even
 * compared: a server span's first ten or so.
 */
class AttributeSnapshot {
  /**
   * The previous span's attribute pairs (key, value, key, value...): its
   * attributePairs, or one of the two arrays below; `count` entries of it.
   */
  pairs: readonly AttributeValue[] | null = null
  count: number = 0
  /**
   * Where deferred attributes are made (see AttributeSource#fillAttributes),
   * alternately: the one not holding the previous span's pairs.
   */
  readonly filled: Array<string | number> = []
  readonly filledToo: Array<string | number> = []
  generation: number = -1
  /** Where the attributes' bytes start in the writer; ends[i] is where attribute i's end, relative to it. */
  base: number = 0
  ends: Int32Array = new Int32Array(32)
  /** Filled while the next span is written, then swapped with `ends`. */
  next: Int32Array = new Int32Array(32)
  /** What the previous span's source vouched for (see AttributeLead; key null: nothing). */
  leadKey: object | null = null
  leadLimit: number = Infinity
  leadStamp: number = 0
  leadLongStamp: number = 0
  leadLongestStamp: number = 0
}

/**
 * Where writeSpan() writes, and what it remembers between the spans written
 * there (the snapshots refer to offsets in that one writer). One per writer:
 * nothing global holds on to a writer, and its buffer, that its owner let go.
 */
export class SpanEncoder {
  readonly out: ProtoWriter
  /** By SpanKind (1 to 5; 0 for anything else). */
  readonly byKind: readonly AttributeSnapshot[] = [0, 1, 2, 3, 4, 5].map(() => new AttributeSnapshot())
  /** What a deferred source vouches for, filled for each span (see AttributeLead). */
  readonly lead: AttributeLead = new AttributeLead()

  constructor(out: ProtoWriter) {
    this.out = out
  }
}
/** encodeProtobuf()'s, for its one writer. */
const encoder = new SpanEncoder(writer)

/**
 * Writes a span's attributes; returns the snapshot now pointing at them, whose
 * `base` the caller sets once the span's own length is final, or null.
 * Attributes still deferred (a server span's: see RecordingSpan#deferAttributes)
 * are made into an array of the snapshot's, not given to the span: it is
 * dropped once encoded, and the array would be garbage.
 */
function writeRecordingAttributes(w: ProtoWriter, span: RecordingSpan, encoder: SpanEncoder): AttributeSnapshot | null {
  const snap = encoder.byKind[span.kind] ?? encoder.byKind[0]!
  // The array not holding the previous span's pairs, which the run copying compares with.
  const out = snap.pairs === snap.filled ? snap.filledToo : snap.filled
  const lead = encoder.lead
  const count = span.fillDeferredAttributes(out, lead)
  if (count >= 0) return writeSpanAttributes(w, out, count, snap, lead)
  span.resolveAttributes()
  const pairs = span.attributePairs
  return pairs === null ? null : writeSpanAttributes(w, pairs, pairs.length, snap, lead)
}

/**
 * Writes `count` entries of `pairs` (key, value...) as span attributes,
 * repeating runs from `snap`'s span; see writeRecordingAttributes. `lead`:
 * what the pairs' source vouches for (key null: nothing).
 */
function writeSpanAttributes(w: ProtoWriter, pairs: readonly AttributeValue[], count: number, snap: AttributeSnapshot, lead: AttributeLead): AttributeSnapshot {
  const n = count >> 1
  const old = snap.generation === w.generation ? snap.pairs : null
  const oldEnds = snap.ends
  const oldBase = snap.base
  const same = old === null ? 0 : Math.min(n, snap.count >> 1)
  // Attributes the source vouches are the previous span's: the first run
  // starts past them without a compare (some 90 instructions each).
  const leadKey = lead.key
  let vouched = 0
  if (old !== null && leadKey !== null && leadKey === snap.leadKey && lead.limit === snap.leadLimit && lead.stamp === snap.leadStamp) {
    const count = lead.longStamp !== snap.leadLongStamp ? lead.count : lead.longestStamp !== snap.leadLongestStamp ? lead.longCount : lead.longestCount
    vouched = Math.min(count >> 1, same)
  }
  let ends = snap.next
  if (ends.length < n) ends = snap.next = new Int32Array(n * 2)
  const regionStart = w.position
  let i = 0
  while (i < n) {
    // A run of attributes as in the previous span: one copy.
    let j = i === 0 ? vouched : i
    while (j < same && old![2 * j] === pairs[2 * j] && sameValue(old![2 * j + 1]!, pairs[2 * j + 1]!)) j++
    if (j > i) {
      const from = i === 0 ? 0 : oldEnds[i - 1]!
      const shift = w.position - regionStart - from
      w.repeat(oldBase + from, oldBase + oldEnds[j - 1]!)
      for (; i < j; i++) ends[i] = oldEnds[i]! + shift
      if (i === n) break
    }
    writeKeyValue(w, SPAN_ATTRIBUTES, pairs[2 * i] as string, pairs[2 * i + 1]!)
    ends[i] = w.position - regionStart
    i++
  }
  snap.pairs = pairs
  snap.count = count
  snap.generation = w.generation
  snap.base = regionStart
  snap.next = oldEnds
  snap.ends = ends
  snap.leadKey = leadKey
  snap.leadLimit = lead.limit
  snap.leadStamp = lead.stamp
  snap.leadLongStamp = lead.longStamp
  snap.leadLongestStamp = lead.longestStamp
  return snap
}

/**
 * Values encoded the same: equal strings, booleans, numbers (but 0 and -0
 * differ: int 0, double -0). Asked by type first, so that each comparison
 * sees one type and compiles to a string or number compare: a single
 * `a === b` over mixed values went through the generic StrictEqual builtin,
 * twice per attribute.
 */
function sameValue(a: AttributeValue, b: AttributeValue): boolean {
  if (typeof a === 'string') return typeof b === 'string' && a === b
  if (typeof a === 'number') return typeof b === 'number' && a === b && (a !== 0 || 1 / a === 1 / b)
  // Booleans; arrays are fresh copies on every span, so never the same.
  return a === b
}

function writeKeyValue(w: ProtoWriter, tag: number, key: string, value: AttributeValue): void {
  if (typeof value === 'string') {
    if (key.length <= SHORT_STRING && value.length <= SHORT_STRING) {
      w.stringKeyValue(tag, key, value)
      return
    }
  } else if (typeof value === 'number' && key.length <= SHORT_STRING && (value > 0 ? (value | 0) === value : Object.is(value, 0))) {
    // A port, a status code, a count: an int_value below 2^31 (not -0, which is a double).
    w.uintKeyValue(tag, key, value)
    return
  }
  // Guess the length's varint size so that only unusual pairs (long
  // strings: URLs, stack traces) have to be moved by ldelim().
  const reserve = typeof value === 'string' && key.length + value.length > 100 ? 2 : 1
  const kv = w.fork(tag, reserve)
  w.string(KEY_VALUE_KEY, key, true)
  writeAnyValue(w, KEY_VALUE_VALUE, value)
  w.ldelim(kv, reserve)
}

function writeAnyValue(w: ProtoWriter, tag: number, value: AttributeValue): void {
  const reserve = typeof value === 'string' && value.length > 100 ? 2 : 1
  const start = w.fork(tag, reserve)
  switch (typeof value) {
    case 'string':
      w.string(ANY_STRING, value)
      break
    case 'number':
      if (isInt64(value)) {
        w.uint32(ANY_INT)
        w.int64(value)
      } else {
        w.uint32(ANY_DOUBLE)
        w.double(value)
      }
      break
    case 'boolean':
      w.uint32(ANY_BOOL)
      w.uint32(value ? 1 : 0)
      break
    default: {
      const array = w.fork(ANY_ARRAY, 1)
      for (let i = 0; i < value.length; i++) writeAnyValue(w, ARRAY_VALUES, value[i]!)
      w.ldelim(array, 1)
    }
  }
  w.ldelim(start, reserve)
}
