// Counts the spans of an OTLP ExportTraceServiceRequest (protobuf) without
// decoding it: the benchmark sink must cost as little CPU as possible, since
// it shares a core with the load generator, and must not keep what it reads.
//
//   ExportTraceServiceRequest  field 1: ResourceSpans (repeated)
//   ResourceSpans              field 2: ScopeSpans (repeated)
//   ScopeSpans                 field 1: InstrumentationScope, field 2: Span (repeated)
//   InstrumentationScope       field 1: name
//   Span                       field 5: name
//
// Every other field is skipped by its wire type. Span names are tallied by
// instrumentation scope as well, so the report can say which spans a library
// makes per request (reading a name stops at field 5, early in each Span).

const VARINT = 0
const FIXED64 = 1
const LEN = 2
const FIXED32 = 5

/**
 * A cursor over one length-delimited message. Protobuf messages are a flat
 * list of (tag, value) pairs; nested messages are LEN values walked by a
 * cursor of their own.
 */
class Fields {
  constructor(buf, start, end) {
    this.buf = buf
    this.pos = start
    this.end = end
    this.field = 0
    this.valueStart = 0
    this.valueEnd = 0
  }

  varint() {
    // Values here are tags and lengths: well below 2^53, so plain arithmetic
    // (not bit operations, which would stop at 32 bits) is exact.
    let value = 0
    let scale = 1
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('truncated varint')
      const byte = this.buf[this.pos++]
      value += (byte & 0x7f) * scale
      if (byte < 0x80) return value
      scale *= 128
    }
    throw new Error('varint longer than 10 bytes')
  }

  /** Moves to the next field; false at the end of the message. */
  next() {
    if (this.pos >= this.end) return false
    const tag = this.varint()
    this.field = Math.floor(tag / 8)
    const wireType = tag % 8
    if (wireType === VARINT) {
      this.varint()
      this.valueStart = this.valueEnd = this.pos
    } else if (wireType === LEN) {
      const length = this.varint()
      this.valueStart = this.pos
      this.valueEnd = this.pos + length
    } else if (wireType === FIXED64 || wireType === FIXED32) {
      this.valueStart = this.pos
      this.valueEnd = this.pos + (wireType === FIXED64 ? 8 : 4)
    } else {
      throw new Error(`unsupported wire type ${wireType} (field ${this.field})`)
    }
    if (this.valueEnd > this.end) throw new Error(`field ${this.field} runs past its message`)
    this.pos = this.valueEnd
    return true
  }

  /** The current LEN field as a message of its own. */
  message() {
    return new Fields(this.buf, this.valueStart, this.valueEnd)
  }

  string() {
    return this.buf.toString('utf8', this.valueStart, this.valueEnd)
  }
}

function spanName(span) {
  while (span.next()) if (span.field === 5) return span.string()
  return ''
}

function scopeName(scope) {
  while (scope.next()) if (scope.field === 1) return scope.string()
  return ''
}

/**
 * Counts the spans in `buf` and adds each to `names` (a Map of
 * "scope\tspan name" to a count). Throws on malformed input.
 */
export function countSpans(buf, names) {
  let spans = 0
  const request = new Fields(buf, 0, buf.length)
  while (request.next()) {
    if (request.field !== 1) continue
    const resourceSpans = request.message()
    while (resourceSpans.next()) {
      if (resourceSpans.field !== 2) continue
      const scopeSpans = resourceSpans.message()
      let scope = ''
      while (scopeSpans.next()) {
        if (scopeSpans.field === 1) scope = scopeName(scopeSpans.message())
        else if (scopeSpans.field === 2) {
          spans++
          const key = `${scope}\t${spanName(scopeSpans.message())}`
          names.set(key, (names.get(key) ?? 0) + 1)
        }
      }
    }
  }
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
        const key = `${scope}\t${span.name ?? ''}`
        names.set(key, (names.get(key) ?? 0) + 1)
      }
    }
  }
  return spans
}
