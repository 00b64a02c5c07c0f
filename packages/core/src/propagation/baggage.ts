/**
 * The W3C `baggage` header (https://www.w3.org/TR/baggage/, Candidate
 * Recommendation 30 May 2024), section 3.3.1:
 *
 *   baggage-string = list-member 0*179( OWS "," OWS list-member )
 *   list-member    = key OWS "=" OWS value *( OWS ";" OWS property )
 *   property       = key OWS "=" OWS value
 *   property       =/ key OWS
 *   key            = token                        ; RFC 7230 section 3.2.6
 *   value          = *baggage-octet
 *   baggage-octet  = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
 *
 * Values are percent-encoded UTF-8 (section 3.3.1.3). Parsing never throws
 * and is linear in the header size.
 */
import { ERR_INVALID_BAGGAGE, TracingError } from '../errors.ts'
import { combineFieldValues, isOws, type RawHeaderValue } from './header-value.ts'

/**
 * Section 3.3.2 "Limits": every member must be propagated while the result
 * holds at most 64 members and 8192 bytes. These are the limits this code
 * applies, on the way in and on the way out.
 */
export const BAGGAGE_MAX_MEMBERS = 64
export const BAGGAGE_MAX_BYTES = 8192

export interface BaggageEntry {
  /** The decoded value. */
  readonly value: string
  /** The raw property list after the first ";", without surrounding OWS (e.g. `p1;p2=v`). */
  readonly metadata?: string
}

const TCHAR = 1
const OCTET = 2
/** Bit flags per ASCII code: TCHAR (RFC 7230 token), OCTET (baggage-octet). */
const CLASS = new Uint8Array(128)
for (let c = 0x21; c <= 0x7e; c++) {
  // baggage-octet excludes DQUOTE, comma, semicolon and backslash.
  if (c !== 0x22 && c !== 0x2c && c !== 0x3b && c !== 0x5c) CLASS[c]! |= OCTET
}
for (const ch of "!#$%&'*+-.^_`|~") CLASS[ch.charCodeAt(0)]! |= TCHAR
for (let c = 0x30; c <= 0x39; c++) CLASS[c]! |= TCHAR
for (let c = 0x41; c <= 0x5a; c++) CLASS[c]! |= TCHAR
for (let c = 0x61; c <= 0x7a; c++) CLASS[c]! |= TCHAR

const PERCENT = 0x25
const EQUALS = 0x3d
const SEMICOLON = 0x3b

/** Index of `code` in text[start, end), or `end`. Bounded so a search never runs past the member. */
function indexIn(text: string, code: number, start: number, end: number): number {
  for (let i = start; i < end; i++) {
    if (text.charCodeAt(i) === code) return i
  }
  return end
}

function isClass(text: string, start: number, end: number, cls: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i)
    if (c >= 128 || (CLASS[c]! & cls) === 0) return false
  }
  return true
}

/** Whether `key` is an RFC 7230 token, the grammar of baggage keys. */
export function isValidBaggageKey(key: string): boolean {
  return typeof key === 'string' && key.length > 0 && isClass(key, 0, key.length, TCHAR)
}

/**
 * Whether text[start, end) is `property *( OWS ";" OWS property )`, the
 * metadata grammar. An empty property (";;" or a trailing ";") is invalid.
 */
function isPropertyList(text: string, start: number, end: number): boolean {
  let pos = start
  for (;;) {
    const semi = indexIn(text, SEMICOLON, pos, end)
    let s = pos
    let e = semi
    while (s < e && isOws(text.charCodeAt(s))) s++
    while (e > s && isOws(text.charCodeAt(e - 1))) e--
    if (s === e) return false
    const eq = indexIn(text, EQUALS, s, e)
    if (eq === e) {
      if (!isClass(text, s, e, TCHAR)) return false
    } else {
      let ke = eq
      while (ke > s && isOws(text.charCodeAt(ke - 1))) ke--
      let vs = eq + 1
      while (vs < e && isOws(text.charCodeAt(vs))) vs++
      if (ke === s || !isClass(text, s, ke, TCHAR) || !isClass(text, vs, e, OCTET)) return false
    }
    if (semi === end) return true
    pos = semi + 1
  }
}

/** Whether `metadata` is a valid property list (what set() accepts). */
export function isValidBaggageMetadata(metadata: string): boolean {
  return typeof metadata === 'string' && isPropertyList(metadata, 0, metadata.length)
}

const HEX = '0123456789ABCDEF'
const encoder = new TextEncoder()
// ignoreBOM keeps a leading U+FEFF that the sender encoded on purpose.
// Invalid UTF-8 becomes U+FFFD (section 3.3.1.3: "percent-encoded octet
// sequences that do not match the UTF-8 encoding scheme MUST be replaced with
// the replacement code point"); the decoder does that and never throws,
// unlike decodeURIComponent.
const decoder = new TextDecoder('utf-8', { ignoreBOM: true })

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10
  return -1
}

/**
 * Decodes a value already checked to be baggage-octets. A "%" that does not
 * start a "%XX" escape is kept as a literal "%", as URL percent-decoding does
 * (WHATWG URL, "percent-decode").
 */
function decodeValue(raw: string): string {
  if (raw.indexOf('%') === -1) return raw
  const bytes = new Uint8Array(raw.length)
  let n = 0
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i)
    if (c === PERCENT && i + 2 < raw.length) {
      const hi = hexValue(raw.charCodeAt(i + 1))
      const lo = hexValue(raw.charCodeAt(i + 2))
      if (hi >= 0 && lo >= 0) {
        bytes[n++] = (hi << 4) | lo
        i += 2
        continue
      }
    }
    bytes[n++] = c
  }
  return decoder.decode(bytes.subarray(0, n))
}

/**
 * Encodes a value: every code point outside baggage-octet, and "%" itself,
 * as %XX of its UTF-8 bytes (section 3.3.1.3). A lone surrogate is encoded as
 * U+FFFD, as UTF-8 cannot carry it.
 */
function encodeValue(value: string): string {
  let plain = true
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c >= 128 || c === PERCENT || (CLASS[c]! & OCTET) === 0) {
      plain = false
      break
    }
  }
  if (plain) return value
  const bytes = encoder.encode(value)
  let out = ''
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!
    if (b < 128 && b !== PERCENT && (CLASS[b]! & OCTET) !== 0) out += String.fromCharCode(b)
    else out += '%' + HEX[b >> 4]! + HEX[b & 15]!
  }
  return out
}

interface Item {
  readonly entry: BaggageEntry
  /** The member as it is sent: key=encoded-value[;metadata]. */
  readonly wire: string
}

function makeItem(key: string, value: string, metadata: string | undefined): Item {
  const encoded = encodeValue(value)
  if (metadata === undefined) {
    return { entry: Object.freeze({ value }), wire: key + '=' + encoded }
  }
  return { entry: Object.freeze({ value, metadata }), wire: key + '=' + encoded + ';' + metadata }
}

/**
 * The members that fit section 3.3.2's limits, in order: a member is kept
 * when the result still has at most 64 members and 8192 bytes with it;
 * otherwise it is skipped and later, smaller members may still fit. The
 * spec leaves the choice of members to drop to the implementation and only
 * forbids partial members.
 */
function withinLimits(items: ReadonlyMap<string, Item>): Map<string, Item> {
  const kept = new Map<string, Item>()
  let bytes = 0
  for (const [key, item] of items) {
    if (kept.size === BAGGAGE_MAX_MEMBERS) break
    const added = item.wire.length + (kept.size > 0 ? 1 : 0)
    if (bytes + added > BAGGAGE_MAX_BYTES) continue
    bytes += added
    kept.set(key, item)
  }
  return kept
}

/**
 * Immutable W3C baggage: ordered key/value entries with optional metadata.
 * Every mutation returns a new instance.
 */
export class Baggage {
  static readonly EMPTY: Baggage = new Baggage(new Map())

  readonly #items: ReadonlyMap<string, Item>

  private constructor(items: ReadonlyMap<string, Item>) {
    this.#items = items
  }

  /**
   * Reads one or more `baggage` field lines (an array, or a string the HTTP
   * stack already joined with commas), combined in order; the limits apply
   * to the combination (section 3.3.2). Never throws.
   *
   * - A member that breaks the grammar (no "=", a key that is not a token, a
   *   value or property outside baggage-octet, an empty property) is dropped
   *   and the others are kept: section 3.5 lets a system "remove that entry"
   *   when it "is not in the format defined in this specification". Empty
   *   members (",,") are skipped.
   * - Values are percent-decoded; invalid UTF-8 becomes U+FFFD and a stray "%"
   *   stays a literal "%".
   * - A repeated key keeps its first position and takes the last value
   *   (section 3.5 allows any de-duplication; last-wins is what the
   *   OpenTelemetry implementations do).
   * - Limits: at most 64 distinct keys are read (later new keys are
   *   dropped), then members are kept in order while the re-serialized
   *   header stays within 64 members and 8192 bytes, so parse() keeps
   *   everything serialize() will send.
   *
   * @example
   * Baggage.parse('userId=Am%C3%A9lie, isProduction=false;ttl=60').get('userId')
   * // { value: 'Amélie' }
   */
  static parse(value: RawHeaderValue): Baggage {
    const header = combineFieldValues(value)
    if (header === undefined || header.length === 0) return Baggage.EMPTY

    const items = new Map<string, Item>()
    const length = header.length
    let pos = 0
    while (pos <= length) {
      let end = header.indexOf(',', pos)
      if (end === -1) end = length
      let start = pos
      pos = end + 1
      while (start < end && isOws(header.charCodeAt(start))) start++
      while (end > start && isOws(header.charCodeAt(end - 1))) end--
      if (start === end) continue

      // Searches stay inside the member so a long header costs linear time.
      const semi = indexIn(header, SEMICOLON, start, end)
      const eq = indexIn(header, EQUALS, start, semi)
      if (eq === semi) continue

      let keyEnd = eq
      while (keyEnd > start && isOws(header.charCodeAt(keyEnd - 1))) keyEnd--
      let valueStart = eq + 1
      let valueEnd = semi
      while (valueStart < valueEnd && isOws(header.charCodeAt(valueStart))) valueStart++
      while (valueEnd > valueStart && isOws(header.charCodeAt(valueEnd - 1))) valueEnd--
      if (keyEnd === start || !isClass(header, start, keyEnd, TCHAR)) continue
      if (!isClass(header, valueStart, valueEnd, OCTET)) continue

      let metadata: string | undefined
      if (semi !== end) {
        if (!isPropertyList(header, semi + 1, end)) continue
        let metaStart = semi + 1
        while (isOws(header.charCodeAt(metaStart))) metaStart++
        metadata = header.slice(metaStart, end)
      }

      const key = header.slice(start, keyEnd)
      if (!items.has(key) && items.size === BAGGAGE_MAX_MEMBERS) continue
      items.set(key, makeItem(key, decodeValue(header.slice(valueStart, valueEnd)), metadata))
    }
    return items.size === 0 ? Baggage.EMPTY : new Baggage(withinLimits(items))
  }

  /** The number of entries. */
  get size(): number {
    return this.#items.size
  }

  /** The entry for `key`, or undefined. */
  get(key: string): BaggageEntry | undefined {
    return this.#items.get(key)?.entry
  }

  /** The decoded value for `key`, or undefined. */
  getValue(key: string): string | undefined {
    return this.#items.get(key)?.entry.value
  }

  /** [key, entry] pairs in header order. */
  *entries(): IterableIterator<[string, BaggageEntry]> {
    for (const [key, item] of this.#items) yield [key, item.entry]
  }

  /**
   * A new baggage with `key` set; an existing key keeps its position (section
   * 3.3.1.1: the order SHOULD be preserved). `value` is any string and is
   * percent-encoded when sent. `metadata`, when given, is a property list
   * such as `ttl=60;secret` (surrounding OWS is removed; "" means none).
   *
   * @throws TracingError with code ERR_INVALID_BAGGAGE when `key` is not an
   * RFC 7230 token, `value` is not a string, or `metadata` is not a property list.
   */
  set(key: string, value: string, metadata?: string): Baggage {
    if (!isValidBaggageKey(key)) {
      throw new TracingError(ERR_INVALID_BAGGAGE, `invalid baggage key ${quote(String(key))}: must be an RFC 7230 token`)
    }
    if (typeof value !== 'string') {
      throw new TracingError(ERR_INVALID_BAGGAGE, `invalid baggage value for key "${key}": must be a string`)
    }
    let meta: string | undefined
    if (metadata !== undefined) {
      if (typeof metadata !== 'string') {
        throw new TracingError(ERR_INVALID_BAGGAGE, `invalid baggage metadata for key "${key}": must be a string`)
      }
      let s = 0
      let e = metadata.length
      while (s < e && isOws(metadata.charCodeAt(s))) s++
      while (e > s && isOws(metadata.charCodeAt(e - 1))) e--
      if (s < e) {
        if (!isPropertyList(metadata, s, e)) {
          throw new TracingError(ERR_INVALID_BAGGAGE, `invalid baggage metadata ${quote(metadata)} for key "${key}"`)
        }
        meta = metadata.slice(s, e)
      }
    }
    const items = new Map(this.#items)
    items.set(key, makeItem(key, value, meta))
    return new Baggage(items)
  }

  /** A new baggage without `key` (this one when `key` is absent). */
  delete(key: string): Baggage {
    if (!this.#items.has(key)) return this
    const items = new Map(this.#items)
    items.delete(key)
    return new Baggage(items)
  }

  /**
   * The header value: `key=value;metadata` members joined by ",", values
   * percent-encoded. Within section 3.3.2's limits (64 members, 8192 bytes):
   * members are taken in order and one that would exceed a limit is left
   * out whole, later ones that still fit are kept. "" when empty.
   */
  serialize(): string {
    let out = ''
    for (const item of withinLimits(this.#items).values()) {
      out = out.length === 0 ? item.wire : out + ',' + item.wire
    }
    return out
  }

  /** Same as serialize(). */
  toString(): string {
    return this.serialize()
  }
}

function quote(text: string): string {
  // Name the offending input without echoing an arbitrarily large string.
  return JSON.stringify(text.length > 64 ? text.slice(0, 64) + '…' : text)
}
