/**
 * The W3C `tracestate` header, Trace Context Level 2
 * (https://www.w3.org/TR/trace-context-2/#tracestate-header), section
 * "tracestate Header Field Values":
 *
 *   list        = list-member 0*31( OWS "," OWS list-member )
 *   list-member = key "=" value
 *   list-member = OWS
 *   key         = ( lcalpha / DIGIT ) 0*255 ( keychar )
 *   keychar     = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
 *   value       = 0*255(chr) nblk-chr
 *   nblk-chr    = %x21-2B / %x2D-3C / %x3E-7E
 *   chr         = %x20 / nblk-chr
 *
 * Level 2 folded the Level 1 split between "simple" keys and
 * "tenant@system" keys into the one rule above ("@" is an ordinary key
 * character, any key may start with a digit, 256 characters at most).
 * The official test suite checks the Level 2 rule since
 * w3c/trace-context#584 (test_tracestate_key_illegal_vendor_format,
 * test_tracestate_key_length_limit), so Level 1 tenant/system limits must
 * not be enforced.
 */
import { ERR_INVALID_TRACESTATE, TracingError } from '../errors.ts'
import { combineFieldValues, isOws, type RawHeaderValue } from './header-value.ts'

/** "There can be a maximum of 32 list-members in a list." */
export const TRACESTATE_MAX_MEMBERS = 32
/** "Vendors SHOULD propagate at least 512 characters of a combined header." */
export const TRACESTATE_DEFAULT_MAX_LENGTH = 512
/** "Entries larger than 128 characters long SHOULD be removed first." */
const LARGE_MEMBER = 128
const MAX_KEY_LENGTH = 256
const MAX_VALUE_LENGTH = 256

const COMMA = 0x2c
const EQUALS = 0x3d
const SPACE = 0x20

function isKeyStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)
}

function isKeyChar(c: number): boolean {
  // lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x5f || c === 0x2d || c === 0x2a || c === 0x2f || c === 0x40
}

/** Whether value[start, end) is a tracestate key. */
function isKeyRange(value: string, start: number, end: number): boolean {
  const length = end - start
  if (length < 1 || length > MAX_KEY_LENGTH) return false
  if (!isKeyStart(value.charCodeAt(start))) return false
  for (let i = start + 1; i < end; i++) {
    if (!isKeyChar(value.charCodeAt(i))) return false
  }
  return true
}

/** Whether value[start, end) is a tracestate value: 1 to 256 of %x20-7E minus "," and "=", not ending in a space. */
function isValueRange(value: string, start: number, end: number): boolean {
  const length = end - start
  if (length < 1 || length > MAX_VALUE_LENGTH) return false
  if (value.charCodeAt(end - 1) === SPACE) return false
  for (let i = start; i < end; i++) {
    const c = value.charCodeAt(i)
    if (c < 0x20 || c > 0x7e || c === COMMA || c === EQUALS) return false
  }
  return true
}

/** Whether `key` is a valid tracestate key (Level 2 grammar). */
export function isValidTraceStateKey(key: string): boolean {
  return typeof key === 'string' && isKeyRange(key, 0, key.length)
}

/** Whether `value` is a valid tracestate value. */
export function isValidTraceStateValue(value: string): boolean {
  return typeof value === 'string' && isValueRange(value, 0, value.length)
}

function quote(text: string): string {
  // Name the offending input without echoing an arbitrarily large string.
  return JSON.stringify(text.length > 64 ? text.slice(0, 64) + '…' : text)
}

/**
 * An immutable, ordered tracestate list: the leftmost member belongs to the
 * vendor that last touched the trace. Every mutation returns a new instance.
 */
export class TraceState {
  /** The empty list, to start from when this service adds its own entry. */
  static readonly EMPTY: TraceState = new TraceState([], [])

  readonly #keys: readonly string[]
  readonly #values: readonly string[]

  private constructor(keys: readonly string[], values: readonly string[]) {
    this.#keys = keys
    this.#values = values
  }

  /**
   * Reads one or more `tracestate` field lines (an array, or one string that
   * the HTTP stack already joined with commas), combined in order as RFC 9110
   * section 5.3 says. Returns undefined when the header is absent, holds no
   * member, or is invalid.
   *
   * Invalid means: a member that breaks the key or value grammar, or more
   * than 32 members. The whole list is then discarded, which is what the
   * official suite expects in strict mode (test_tracestate_key_illegal_characters,
   * test_tracestate_value_illegal_characters, test_tracestate_member_count_limit,
   * ...). Empty and whitespace-only members are allowed and skipped (spec:
   * "Empty and whitespace-only list members are allowed").
   *
   * Duplicated keys do NOT invalidate the list: since w3c/trace-context#477 the
   * spec says a receiver MAY drop duplicates or pass them on, and
   * test_tracestate_duplicated_keys expects the tracestate to be inherited.
   * The first (leftmost, most recent) entry is kept and later ones are
   * dropped; they still count towards the 32-member limit because the limit
   * is on the list as received.
   *
   * Time is linear in the header size and parsing stops at the first invalid
   * member or at member 33.
   */
  static parse(value: RawHeaderValue): TraceState | undefined {
    const header = combineFieldValues(value)
    if (header === undefined || header.length === 0) return undefined

    const keys: string[] = []
    const values: string[] = []
    let members = 0
    let pos = 0
    const length = header.length
    while (pos <= length) {
      let end = header.indexOf(',', pos)
      if (end === -1) end = length
      const next = end + 1

      // Trim the member's OWS.
      let start = pos
      while (start < end && isOws(header.charCodeAt(start))) start++
      while (end > start && isOws(header.charCodeAt(end - 1))) end--
      pos = next
      if (start === end) continue

      if (++members > TRACESTATE_MAX_MEMBERS) return undefined

      // The key cannot contain "=", so the first "=" ends it; the value may
      // not contain "=" either, which isValueRange checks. Search only as far
      // as the longest key so a long member costs no more than its length.
      let eq = -1
      const keyLimit = Math.min(end, start + MAX_KEY_LENGTH + 1)
      for (let i = start; i < keyLimit; i++) {
        if (header.charCodeAt(i) === EQUALS) {
          eq = i
          break
        }
      }
      if (eq === -1 || !isKeyRange(header, start, eq) || !isValueRange(header, eq + 1, end)) return undefined

      const key = header.slice(start, eq)
      if (keys.includes(key)) continue
      keys.push(key)
      values.push(header.slice(eq + 1, end))
    }
    return keys.length === 0 ? undefined : new TraceState(keys, values)
  }

  /** The number of members. */
  get size(): number {
    return this.#keys.length
  }

  /** The value for `key`, or undefined. */
  get(key: string): string | undefined {
    const i = this.#keys.indexOf(key)
    return i === -1 ? undefined : this.#values[i]
  }

  /** The keys, leftmost first. */
  keys(): string[] {
    return this.#keys.slice()
  }

  /**
   * A new list with `key` set to `value` and moved to the left (spec
   * "Mutating the tracestate Field": "Modified keys MUST be moved to the
   * beginning (left) of the list"). If the list would then hold more than 32
   * members, the rightmost one is dropped.
   *
   * @throws TracingError with code ERR_INVALID_TRACESTATE when the key or the
   * value breaks the grammar.
   *
   * @example
   * TraceState.EMPTY.set('congo', 't61rcWkgMzE').serialize() // 'congo=t61rcWkgMzE'
   */
  set(key: string, value: string): TraceState {
    if (!isValidTraceStateKey(key)) {
      throw new TracingError(ERR_INVALID_TRACESTATE, `invalid tracestate key ${quote(String(key))}`)
    }
    if (!isValidTraceStateValue(value)) {
      throw new TracingError(ERR_INVALID_TRACESTATE, `invalid tracestate value ${quote(String(value))} for key "${key}"`)
    }
    const keys = [key]
    const values = [value]
    for (let i = 0; i < this.#keys.length && keys.length < TRACESTATE_MAX_MEMBERS; i++) {
      if (this.#keys[i] === key) continue
      keys.push(this.#keys[i]!)
      values.push(this.#values[i]!)
    }
    return new TraceState(keys, values)
  }

  /** A new list without `key` (this one when `key` is absent). */
  delete(key: string): TraceState {
    const i = this.#keys.indexOf(key)
    if (i === -1) return this
    const keys = this.#keys.slice()
    const values = this.#values.slice()
    keys.splice(i, 1)
    values.splice(i, 1)
    return new TraceState(keys, values)
  }

  /**
   * The header value, `k1=v1,k2=v2`, at most `maxLength` characters
   * (default 512, the length the spec asks everyone to propagate). When the
   * list is longer, whole members are dropped, never part of one (spec
   * "tracestate Limits"): first members longer than 128 characters, starting
   * from the right, then members from the right, until it fits. Returns ""
   * when nothing fits or the list is empty; send no header then.
   */
  serialize(maxLength: number = TRACESTATE_DEFAULT_MAX_LENGTH): string {
    const count = this.#keys.length
    if (count === 0) return ''
    const members: string[] = new Array<string>(count)
    let total = count - 1
    for (let i = 0; i < count; i++) {
      const member = this.#keys[i]! + '=' + this.#values[i]!
      members[i] = member
      total += member.length
    }
    if (total <= maxLength) return members.join(',')

    const keep: boolean[] = new Array<boolean>(count).fill(true)
    let kept = count
    const drop = (i: number): void => {
      keep[i] = false
      kept--
      // One comma goes with the member, unless it was the last one left.
      total -= members[i]!.length + (kept > 0 ? 1 : 0)
    }
    for (let i = count - 1; i >= 0 && total > maxLength; i--) {
      if (members[i]!.length > LARGE_MEMBER) drop(i)
    }
    for (let i = count - 1; i >= 0 && total > maxLength && kept > 0; i--) {
      if (keep[i]) drop(i)
    }
    if (kept === 0 || total > maxLength) return ''
    let out = ''
    for (let i = 0; i < count; i++) {
      if (!keep[i]) continue
      out = out.length === 0 ? members[i]! : out + ',' + members[i]!
    }
    return out
  }

  /** Same as serialize() with the default limit. */
  toString(): string {
    return this.serialize()
  }
}
