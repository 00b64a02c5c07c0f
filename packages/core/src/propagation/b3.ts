/**
 * Zipkin B3 propagation (https://github.com/openzipkin/b3-propagation):
 * the single `b3` header and the `X-B3-*` multi-header encoding.
 *
 * The spec writes ids as lower-hex; upper-case hex is accepted here (some
 * tracers send it) and returned lower-case. A trace id is 16 or 32 hex
 * digits and is returned as 32 (a 64-bit id left-padded with zeros, as W3C
 * trace ids need 128 bits). Span ids are 16 hex digits. An all-zero id is
 * invalid. Parsing never throws.
 */
import { firstFieldValue, trimOws, type RawHeaderValue } from './header-value.ts'

export interface ParsedB3 {
  /** 32 lower-case hex digits. */
  traceId: string
  /** 16 lower-case hex digits. */
  spanId: string
  /** true accept, false deny, undefined: decision deferred to the receiver. */
  sampled: boolean | undefined
  /** Debug ("d" or X-B3-Flags: 1); implies sampled. */
  debug: boolean
  /** 16 lower-case hex digits, when sent. */
  parentSpanId: string | undefined
}

const PAD16 = '0000000000000000'

/** Whether value[start, start+length) is hex (either case) and not all zeros. */
function isHexId(value: string, start: number, length: number): boolean {
  let nonZero = false
  for (let i = start; i < start + length; i++) {
    const c = value.charCodeAt(i)
    if (c >= 0x30 && c <= 0x39) {
      if (c !== 0x30) nonZero = true
    } else if ((c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)) {
      nonZero = true
    } else {
      return false
    }
  }
  return nonZero
}

/** A trace id of 16 or 32 hex digits, as 32 lower-case digits, or undefined. */
function readTraceId(value: string, start: number, end: number): string | undefined {
  const length = end - start
  if ((length !== 16 && length !== 32) || !isHexId(value, start, length)) return undefined
  const id = value.slice(start, end).toLowerCase()
  return length === 16 ? PAD16 + id : id
}

/** A span id of 16 hex digits, lower-cased, or undefined. */
function readSpanId(value: string, start: number, end: number): string | undefined {
  if (end - start !== 16 || !isHexId(value, start, 16)) return undefined
  return value.slice(start, end).toLowerCase()
}

/**
 * Reads a single `b3` header: `{TraceId}-{SpanId}[-{SamplingState}[-{ParentSpanId}]]`
 * with SamplingState `0` (deny), `1` (accept) or `d` (debug, which implies
 * accept). A value carrying only a sampling state (`0`, `1`, `d`) has no ids
 * to continue and gives null, as does anything invalid. Surrounding spaces
 * and tabs are ignored; of repeated lines only the first is read ("the
 * first value wins", as for the multi-header encoding).
 *
 * @example
 * parseB3Single('80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90')
 */
export function parseB3Single(value: RawHeaderValue): ParsedB3 | null {
  const first = firstFieldValue(value)
  if (first === undefined) return null
  const header = trimOws(first)

  const dash1 = header.indexOf('-')
  if (dash1 === -1) return null
  const traceId = readTraceId(header, 0, dash1)
  if (traceId === undefined) return null

  let dash2 = header.indexOf('-', dash1 + 1)
  if (dash2 === -1) dash2 = header.length
  const spanId = readSpanId(header, dash1 + 1, dash2)
  if (spanId === undefined) return null
  if (dash2 === header.length) {
    return { traceId, spanId, sampled: undefined, debug: false, parentSpanId: undefined }
  }

  // The sampling state is one character, then the end or "-" and a parent id.
  if (dash2 + 2 !== header.length && header.charCodeAt(dash2 + 2) !== 0x2d) return null
  let sampled: boolean
  let debug = false
  switch (header.charCodeAt(dash2 + 1)) {
    case 0x30: // '0'
      sampled = false
      break
    case 0x31: // '1'
      sampled = true
      break
    case 0x64: // 'd'
      sampled = true
      debug = true
      break
    default:
      return null
  }
  if (dash2 + 2 === header.length) return { traceId, spanId, sampled, debug, parentSpanId: undefined }

  const parentSpanId = readSpanId(header, dash2 + 3, header.length)
  if (parentSpanId === undefined) return null
  return { traceId, spanId, sampled, debug, parentSpanId }
}

function readHeader(get: (name: string) => RawHeaderValue, name: string): string | undefined {
  const first = firstFieldValue(get(name))
  return first === undefined ? undefined : trimOws(first)
}

/**
 * Reads the multi-header encoding. `get` returns a header's value for a
 * lower-case name: 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid',
 * 'x-b3-sampled', 'x-b3-flags'. For repeated headers the first value wins
 * (b3-propagation, "Multiple Headers").
 *
 * - TraceId and SpanId are required; an invalid one gives null. An invalid
 *   ParentSpanId also gives null (the context would be inconsistent).
 * - X-B3-Sampled: "1" / "0", and the legacy "true" / "false" the spec lets a
 *   lenient reader accept. Any other value is treated as absent (deferred).
 * - X-B3-Flags: "1" is debug, which implies sampled. Other values are ignored.
 *
 * Nothing here throws; an error thrown by `get` itself (the caller's carrier
 * accessor) is not caught.
 */
export function parseB3Multi(get: (name: string) => RawHeaderValue): ParsedB3 | null {
  const rawTraceId = readHeader(get, 'x-b3-traceid')
  if (rawTraceId === undefined) return null
  const traceId = readTraceId(rawTraceId, 0, rawTraceId.length)
  if (traceId === undefined) return null
  const rawSpanId = readHeader(get, 'x-b3-spanid')
  if (rawSpanId === undefined) return null
  const spanId = readSpanId(rawSpanId, 0, rawSpanId.length)
  if (spanId === undefined) return null

  let parentSpanId: string | undefined
  const rawParent = readHeader(get, 'x-b3-parentspanid')
  if (rawParent !== undefined && rawParent !== '') {
    parentSpanId = readSpanId(rawParent, 0, rawParent.length)
    if (parentSpanId === undefined) return null
  }

  let sampled: boolean | undefined
  switch (readHeader(get, 'x-b3-sampled')) {
    case '1':
    case 'true':
      sampled = true
      break
    case '0':
    case 'false':
      sampled = false
      break
    default:
      sampled = undefined
  }
  const debug = readHeader(get, 'x-b3-flags') === '1'
  if (debug) sampled = true
  return { traceId, spanId, sampled, debug, parentSpanId }
}

/**
 * A single `b3` header value: `{traceId}-{spanId}-1` or `-0`. The ids must
 * already be valid lower-case hex (the per-request path does not check them).
 *
 * @example
 * formatB3Single('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', true)
 * // '4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1'
 */
export function formatB3Single(traceId: string, spanId: string, sampled: boolean): string {
  return traceId + '-' + spanId + (sampled ? '-1' : '-0')
}
