/**
 * The W3C `traceparent` header, Trace Context Level 2
 * (https://www.w3.org/TR/trace-context-2/#traceparent-header).
 *
 *   value = version "-" trace-id "-" parent-id "-" trace-flags
 *   version 2HEXDIGLC (ff forbidden), trace-id 32HEXDIGLC, parent-id
 *   16HEXDIGLC (neither all zeros), trace-flags 2HEXDIGLC
 *
 * Parsing uses fixed offsets and charCodeAt checks, reads the ids as 32-bit
 * words (ids.ts) as it checks them, and never throws (house style: nothing
 * that throws while parsing request headers).
 */
import { hexOfWords, hexWords, idsInHexWords, readHexWords } from '../ids.ts'
import { isLowerHexId, isOws, lowerHexDigit, singletonFieldValue, type RawHeaderValue } from './header-value.ts'

export interface ParsedTraceparent {
  /** 32 lower-case hex digits, not all zero. */
  traceId: string
  /** 16 lower-case hex digits, not all zero (the caller's span id). */
  spanId: string
  /** Only the bits this version defines: 0x01 sampled, 0x02 random trace id. */
  traceFlags: number
}

/** trace-flags bit 0 (spec section "Sampled flag"). */
export const TRACE_FLAG_SAMPLED = 0x01
/** trace-flags bit 1 (Level 2 section "Random Trace ID Flag"). */
export const TRACE_FLAG_RANDOM = 0x02
/**
 * The bits Level 2 defines. The others are reserved; "vendors MUST set those
 * to zero", so they are dropped on the way in and never sent.
 */
export const KNOWN_TRACE_FLAGS = 0x03

/** Length of a version-00 value: 2 + 1 + 32 + 1 + 16 + 1 + 2. */
export const TRACEPARENT_LENGTH = 55

const DASH = 0x2d
const COMMA = 0x2c

/**
 * Reads a `traceparent` value. Returns null when it is absent or invalid, in
 * which case the caller restarts the trace (and must not read tracestate).
 *
 * - Spaces and tabs around the value are ignored (test_traceparent_ows_handling).
 * - Two field lines are invalid (test_traceparent_duplicated): an array with
 *   more than one element, and a string containing a comma, which is what
 *   Node's IncomingMessage and fetch `Headers.get()` make of two lines.
 * - Version 00 must be exactly 55 characters. A higher version is read by its
 *   first four fields when the value is 55 characters or character 55 is "-"
 *   (spec "Versioning of traceparent"); version ff is invalid.
 *
 * @example
 * parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')
 * // { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 }
 */
export function parseTraceparent(value: RawHeaderValue): ParsedTraceparent | null {
  const traceFlags = readTraceparent(value)
  if (traceFlags < 0) return null
  const w = hexWords
  // The very digits of the header: they were lower-case hex.
  return { traceId: hexOfWords(16, w[0]!, w[1]!, w[2]!, w[3]!), spanId: hexOfWords(8, w[4]!, w[5]!, 0, 0), traceFlags }
}

/**
 * Internal (trace-context.ts): parseTraceparent() without making the id
 * strings, for a remote span that makes them only if they are read (most
 * server spans' never are). Returns the trace flags (the known bits), with
 * the ids as words in ids.ts's hexWords (read them at once), or -1 when the
 * value is absent or invalid.
 */
export function readTraceparent(value: RawHeaderValue): number {
  const header = singletonFieldValue(value)
  if (header === undefined) return -1

  let start = 0
  let end = header.length
  while (start < end && isOws(header.charCodeAt(start))) start++
  while (end > start && isOws(header.charCodeAt(end - 1))) end--
  const length = end - start
  if (length < TRACEPARENT_LENGTH) return -1

  const v1 = lowerHexDigit(header.charCodeAt(start))
  const v2 = lowerHexDigit(header.charCodeAt(start + 1))
  if (v1 < 0 || v2 < 0 || header.charCodeAt(start + 2) !== DASH) return -1
  const version = (v1 << 4) | v2
  if (version === 0xff) return -1

  if (length !== TRACEPARENT_LENGTH) {
    // Version 00 has exactly four fields (test_traceparent_version_0x00).
    if (version === 0x00) return -1
    // A future version may only append "-" and more fields (test_traceparent_version_0xcc).
    if (header.charCodeAt(start + TRACEPARENT_LENGTH) !== DASH) return -1
    // Unknown fields are not parsed (spec: "MUST NOT parse or assume anything
    // about unknown fields") but a comma cannot come from one sender: it is
    // two traceparent lines joined by the HTTP stack.
    for (let i = start + TRACEPARENT_LENGTH + 1; i < end; i++) {
      if (header.charCodeAt(i) === COMMA) return -1
    }
  }

  if (header.charCodeAt(start + 35) !== DASH || header.charCodeAt(start + 52) !== DASH) return -1
  // Neither id may be all zeros.
  if (!readHexWords(header, start + 3, 4, 0) || !readHexWords(header, start + 36, 2, 4) || !idsInHexWords()) return -1
  const f1 = lowerHexDigit(header.charCodeAt(start + 53))
  const f2 = lowerHexDigit(header.charCodeAt(start + 54))
  if (f1 < 0 || f2 < 0) return -1
  return ((f1 << 4) | f2) & KNOWN_TRACE_FLAGS
}

const FLAGS_HEX: readonly string[] = ['00', '01', '02', '03']

/**
 * A version-00 `traceparent` (the highest version this code knows, which the
 * spec requires for the outgoing header). Only the sampled and random flags
 * are written; unknown bits are zeroed. `traceId` and `spanId` must already
 * be valid lower-case hex ids (see isValidTraceId / isValidSpanId): this is
 * the per-request path and does not check them.
 *
 * @example
 * formatTraceparent('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', 0x01)
 * // '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
 */
export function formatTraceparent(traceId: string, spanId: string, traceFlags: number): string {
  return '00-' + traceId + '-' + spanId + '-' + FLAGS_HEX[traceFlags & KNOWN_TRACE_FLAGS]!
}

/** 32 lower-case hex digits, not all zero. */
export function isValidTraceId(traceId: string): boolean {
  return typeof traceId === 'string' && traceId.length === 32 && isLowerHexId(traceId, 0, 32)
}

/** 16 lower-case hex digits, not all zero. */
export function isValidSpanId(spanId: string): boolean {
  return typeof spanId === 'string' && spanId.length === 16 && isLowerHexId(spanId, 0, 16)
}
