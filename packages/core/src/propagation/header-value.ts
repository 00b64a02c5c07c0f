/**
 * Small helpers shared by the header parsers. They scan with charCodeAt and
 * never use a regex, so their cost is linear in the header size whatever an
 * attacker sends (house style: no regex over attacker-sized input).
 */

/** A header value as Node's IncomingHttpHeaders, fetch `Headers.get()` or a plain object give it. */
export type RawHeaderValue = string | readonly string[] | undefined | null

const SP = 0x20
const HTAB = 0x09

/** OWS = *( SP / HTAB ) (RFC 9110 section 5.6.3). CR and LF are not OWS. */
export function isOws(code: number): boolean {
  return code === SP || code === HTAB
}

/** `value` without leading and trailing spaces and tabs; other whitespace is kept. */
export function trimOws(value: string): string {
  let start = 0
  let end = value.length
  while (start < end && isOws(value.charCodeAt(start))) start++
  while (end > start && isOws(value.charCodeAt(end - 1))) end--
  return start === 0 && end === value.length ? value : value.slice(start, end)
}

/**
 * Several field lines of a list-based header, combined into one value in
 * order, joined with "," (RFC 9110 section 5.3; this is also what Node does
 * for unknown headers and what `Headers.get()` returns, with ", ").
 * Non-string elements are skipped so a malformed carrier cannot make this throw.
 * Returns undefined when there is no string at all.
 */
export function combineFieldValues(value: RawHeaderValue): string | undefined {
  if (typeof value === 'string') return value
  if (value === null || typeof value !== 'object') return undefined
  let combined: string | undefined
  for (let i = 0; i < value.length; i++) {
    const line = value[i]
    if (typeof line !== 'string') continue
    combined = combined === undefined ? line : combined + ',' + line
  }
  return combined
}

/**
 * The value of a header that must occur once (a "singleton" field): a lone
 * string, or an array holding exactly one string. Anything else, including
 * two field lines, is undefined: a sender that repeats a singleton field is
 * ambiguous, so the value is not used.
 */
export function singletonFieldValue(value: RawHeaderValue): string | undefined {
  if (typeof value === 'string') return value
  if (value === null || typeof value !== 'object' || value.length !== 1) return undefined
  const only = value[0]
  return typeof only === 'string' ? only : undefined
}

/**
 * The first field value, for formats whose spec says "the first value wins"
 * (B3 multi-header): the first array element, and within a string the part
 * before the first comma (Node and fetch join repeated lines with ", ").
 */
export function firstFieldValue(value: RawHeaderValue): string | undefined {
  let line: unknown = value
  if (value !== null && typeof value === 'object') line = value[0]
  if (typeof line !== 'string') return undefined
  const comma = line.indexOf(',')
  return comma === -1 ? line : line.slice(0, comma)
}

/**
 * Whether `value` holds exactly `length` lower-case hex digits from `start`,
 * not all of them zero. The caller ensures `start + length <= value.length`.
 */
export function isLowerHexId(value: string, start: number, length: number): boolean {
  let nonZero = false
  for (let i = start; i < start + length; i++) {
    const c = value.charCodeAt(i)
    if (c >= 0x30 && c <= 0x39) {
      if (c !== 0x30) nonZero = true
    } else if (c >= 0x61 && c <= 0x66) {
      nonZero = true
    } else {
      return false
    }
  }
  return nonZero
}

/** The value of one lower-case hex digit, or -1. */
export function lowerHexDigit(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10
  return -1
}
