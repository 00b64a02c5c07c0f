// Counts the spans of an OTLP ExportTraceServiceRequest (protobuf) without
// decoding it: the benchmark sink must cost as little CPU as possible, since
// it shares a core with the load generator, and must not keep what it reads.
//
//   ExportTraceServiceRequest  field 1: ResourceSpans (repeated)
//   ResourceSpans              field 2: ScopeSpans (repeated)
//   ScopeSpans                 field 1: InstrumentationScope, field 2: Span (repeated)
//   InstrumentationScope       field 1: name
//   Span                       field 4: parent_span_id, field 5: name
//
// Every other field is skipped by its wire type. Span names are tallied by
// instrumentation scope, and by whether the span has a parent, so the report
// can say which spans a library makes per request and whether a server span
// continued the caller's trace (throughput.mjs --traceparent). Reading stops
// at field 5, early in each Span; field 4 comes before it.

const VARINT = 0
const FIXED64 = 1
const LEN = 2
const FIXED32 = 5

// The reader's state: a position and the current field, module-level
// rather than a cursor object per message, since the sink reads some 40,000
// spans a second on the core the load generator needs (measured on a
// server's spans: 0.19 µs per span, against 0.3 with a cursor and a name
// string per span; most of what the sink once cost was elsewhere, see
// sink.mjs). A nested message is read by setting `pos` to its start and
// reading up to its end; when that is done, `pos` is where its parent's
// next field starts.
let pos = 0
let field = 0
let valueStart = 0
let valueEnd = 0

function varint(buf, end) {
  // Values here are tags and lengths: well below 2^53, so plain arithmetic
  // (not bit operations, which would stop at 32 bits) is exact.
  let value = 0
  let scale = 1
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new Error('truncated varint')
    const byte = buf[pos++]
    value += (byte & 0x7f) * scale
    if (byte < 0x80) return value
    scale *= 128
  }
  throw new Error('varint longer than 10 bytes')
}

/** Moves to the next field of the message ending at `end`; false at its end. */
function next(buf, end) {
  if (pos >= end) return false
  const tag = varint(buf, end)
  field = Math.floor(tag / 8)
  const wireType = tag % 8
  if (wireType === VARINT) {
    varint(buf, end)
    valueStart = valueEnd = pos
  } else if (wireType === LEN) {
    const length = varint(buf, end)
    valueStart = pos
    valueEnd = pos + length
  } else if (wireType === FIXED64 || wireType === FIXED32) {
    valueStart = pos
    valueEnd = pos + (wireType === FIXED64 ? 8 : 4)
  } else {
    throw new Error(`unsupported wire type ${wireType} (field ${field})`)
  }
  if (valueEnd > end) throw new Error(`field ${field} runs past its message`)
  pos = valueEnd
  return true
}

/**
 * Field `wanted` (a string) of the message at [start, end): sets
 * valueStart/valueEnd to it and returns true, or false if it has none.
 * Leaves `pos` at `end`, where the message's parent reads on.
 */
function find(buf, start, end, wanted) {
  pos = start
  while (next(buf, end)) {
    if (field === wanted) {
      pos = end
      return true
    }
  }
  return false
}

/**
 * Tallies spans by "scope\tspan name\tparent" (parent: "child" for a span
 * with a parent span id, else "root"). A server's spans mostly repeat the
 * previous span's name: its bytes are compared with the last name's, and
 * only a different name is decoded, so most spans cost no string and no
 * map lookup (their count waits in `pending` until the name changes).
 */
class Tally {
  constructor(names) {
    this.names = names
    this.scope = ''
    this.child = false
    this.key = ''
    this.last = Buffer.alloc(0)
    this.pending = 0
  }

  add(scope, child, buf, start, end) {
    const last = this.last
    const n = end - start
    let same = scope === this.scope && child === this.child && n === last.length && this.pending > 0
    for (let i = 0; same && i < n; i++) same = buf[start + i] === last[i]
    if (same) {
      this.pending++
      return
    }
    this.flush()
    this.scope = scope
    this.child = child
    this.last = Buffer.from(buf.subarray(start, end))
    this.key = `${scope}\t${buf.toString('utf8', start, end)}\t${child ? 'child' : 'root'}`
    this.pending = 1
  }

  flush() {
    if (this.pending > 0) this.names.set(this.key, (this.names.get(this.key) ?? 0) + this.pending)
    this.pending = 0
  }
}

/**
 * Counts the spans in `buf` and adds each to `names` (a Map of
 * "scope\tspan name" to a count). Throws on malformed input.
 */
export function countSpans(buf, names) {
  let spans = 0
  const tally = new Tally(names)
  pos = 0
  const requestEnd = buf.length
  while (next(buf, requestEnd)) {
    if (field !== 1) continue
    const resourceEnd = valueEnd
    pos = valueStart
    while (next(buf, resourceEnd)) {
      if (field !== 2) continue
      const scopeSpansEnd = valueEnd
      pos = valueStart
      let scope = ''
      while (next(buf, scopeSpansEnd)) {
        if (field === 1) {
          const scopeEnd = valueEnd
          scope = find(buf, valueStart, scopeEnd, 1) ? buf.toString('utf8', valueStart, valueEnd) : ''
          pos = scopeEnd
        } else if (field === 2) {
          spans++
          const spanEnd = valueEnd
          // Fields up to the name (5): the parent span id (4) comes before it.
          let child = false
          let named = false
          pos = valueStart
          while (next(buf, spanEnd)) {
            if (field === 4) child = valueEnd > valueStart
            else if (field === 5) {
              named = true
              break
            }
          }
          if (named) tally.add(scope, child, buf, valueStart, valueEnd)
          else tally.add(scope, child, buf, 0, 0)
          pos = spanEnd
        }
      }
    }
  }
  tally.flush()
  return spans
}

/** The same for OTLP/JSON bodies (http/json), so either protocol can be pointed here. */
export function countJsonSpans(text, names) {
  let spans = 0
  for (const resourceSpans of JSON.parse(text).resourceSpans ?? []) {
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      const scope = scopeSpans.scope?.name ?? ''
      for (const span of scopeSpans.spans ?? []) {
        spans++
        const key = `${scope}\t${span.name ?? ''}\t${typeof span.parentSpanId === 'string' && span.parentSpanId !== '' ? 'child' : 'root'}`
        names.set(key, (names.get(key) ?? 0) + 1)
      }
    }
  }
  return spans
}
