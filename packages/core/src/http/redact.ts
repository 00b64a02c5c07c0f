/**
 * Keep secrets out of spans: signed-URL query parameters (`url.query`,
 * `url.full`) and credentials in URLs (`url.full`), as the URL semantic
 * conventions require
 * (https://opentelemetry.io/docs/specs/semconv/registry/attributes/url/).
 *
 * These run on every request and every outgoing call, on attacker-chosen
 * strings: one charCodeAt pass each, no regex, no decodeURIComponent (it
 * throws on malformed input), and the input string itself is returned when
 * nothing needs redacting.
 */
import { ERR_INVALID_ARGUMENT, TracingError } from '../errors.ts'
// Builtins by process.getBuiltinModule(), not ES imports: start-up time (see @spanline/core's src/diag.ts).
const { Buffer } = process.getBuiltinModule('node:buffer')
const { inspect } = process.getBuiltinModule('node:util')

/** What a redacted value, user name or password is replaced with (the conventions' literal). */
export const REDACTED = 'REDACTED'

/**
 * The query keys whose values the `url.query` and `url.full` notes say
 * "SHOULD be redacted by default": AWS SigV4 (X-Amz-*), AWS S3 SigV2 and
 * CloudFront (AWSAccessKeyId, Signature), Azure SAS (sig), Google Cloud
 * Storage (X-Goog-Signature). The list "is subject to change over time".
 */
export const DEFAULT_SENSITIVE_QUERY_PARAMS: readonly string[] = Object.freeze([
  'X-Amz-Signature',
  'X-Amz-Credential',
  'X-Amz-Security-Token',
  'AWSAccessKeyId',
  'Signature',
  'sig',
  'X-Goog-Signature',
])

/**
 * The set redactQuery() and redactUrl() match against, built once at
 * configuration time. `undefined` gives the defaults; a list replaces them
 * entirely, as the conventions' `sensitive_query_parameters` does ("a full
 * override of the default sensitive query parameter keys").
 *
 * Matching is case-sensitive, as the conventions say it SHOULD be ("Matching
 * of query parameter keys against the sensitive list SHOULD be
 * case-sensitive"): `Signature` and `signature` are different parameters to
 * the services that define them. List each spelling you need.
 *
 * @throws TracingError (ERR_INVALID_ARGUMENT) when `list` is not an array of strings.
 * @example
 * const sensitive = sensitiveSet([...DEFAULT_SENSITIVE_QUERY_PARAMS, 'token'])
 */
export function sensitiveSet(list: readonly string[] | undefined): ReadonlySet<string> {
  if (list === undefined) return new Set(DEFAULT_SENSITIVE_QUERY_PARAMS)
  if (!Array.isArray(list)) {
    throw new TracingError(ERR_INVALID_ARGUMENT, `sensitive query parameters must be an array of strings, got ${inspect(list, { depth: 1 })}`)
  }
  for (let i = 0; i < list.length; i++) {
    const key: unknown = list[i]
    if (typeof key !== 'string') {
      throw new TracingError(ERR_INVALID_ARGUMENT, `sensitive query parameters[${i}] must be a string, got ${inspect(key)}`)
    }
  }
  return new Set(list)
}

const PLUS = 0x2b
const PERCENT = 0x25
const AMPERSAND = 0x26
const EQUALS = 0x3d

/**
 * `query` (without the leading "?") with the value of every parameter whose
 * key is in `sensitive` replaced by `REDACTED`; everything else is kept
 * byte for byte: order, other values, empty values, keys without "=",
 * repeated keys. Pairs are separated by "&" only (WHATWG URL,
 * application/x-www-form-urlencoded; ";" is not a separator there).
 *
 * A key matches when it is in the set as written, or once percent-decoded
 * with "+" as a space, the way servers read it (URLSearchParams, `qs`):
 * `X%2DAmz%2DSignature=…` is still a working signature.
 * A sensitive key with an empty value (`sig=`) becomes `sig=REDACTED` too;
 * a sensitive key without "=" has no value and is left alone.
 *
 * Returns `query` itself (no copy) when nothing matched.
 *
 * @example
 * redactQuery('color=blue&sig=abc&sig', sensitiveSet(undefined)) // 'color=blue&sig=REDACTED&sig'
 */
export function redactQuery(query: string, sensitive: ReadonlySet<string>): string {
  if (typeof query !== 'string') return ''
  const length = query.length
  if (length === 0 || sensitive.size === 0) return query
  let out: string | undefined
  let copied = 0 // query[0, copied) is already in `out`
  let start = 0
  while (start <= length) {
    let equals = -1
    let encoded = false
    let i = start
    for (; i < length; i++) {
      const c = query.charCodeAt(i)
      if (c === AMPERSAND) break
      if (equals === -1) {
        if (c === EQUALS) equals = i
        else if (c === PERCENT || c === PLUS) encoded = true
      }
    }
    // The pair is query[start, i); its key is query[start, equals).
    if (equals !== -1 && isSensitiveKey(query, start, equals, encoded, sensitive)) {
      out = (out ?? '') + query.slice(copied, equals + 1) + REDACTED
      copied = i
    }
    start = i + 1
  }
  if (out === undefined) return query
  return copied < length ? out + query.slice(copied) : out
}

function isSensitiveKey(query: string, start: number, end: number, encoded: boolean, sensitive: ReadonlySet<string>): boolean {
  const key = query.slice(start, end)
  if (sensitive.has(key)) return true
  return encoded && sensitive.has(decodeKey(key))
}

/**
 * The form-urlencoded decoding of `key` ("+" is a space, "%XX" a byte, a
 * malformed "%" stays as it is, the bytes are read as UTF-8 with U+FFFD for
 * invalid sequences), like URLSearchParams and unlike decodeURIComponent,
 * which throws. Decoding happens in place in the key's UTF-8 bytes, so the
 * cost is linear in the key.
 */
function decodeKey(key: string): string {
  const bytes = Buffer.from(key, 'utf8')
  const length = bytes.length
  let w = 0
  for (let r = 0; r < length; r++) {
    const b = bytes[r]!
    if (b === PLUS) {
      bytes[w++] = 0x20
    } else if (b === PERCENT && r + 2 < length && hexValue(bytes[r + 1]!) !== -1 && hexValue(bytes[r + 2]!) !== -1) {
      bytes[w++] = (hexValue(bytes[r + 1]!) << 4) | hexValue(bytes[r + 2]!)
      r += 2
    } else {
      bytes[w++] = b
    }
  }
  return bytes.toString('utf8', 0, w)
}

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30
  const lower = b | 0x20
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10
  return -1
}

const SLASH = 0x2f
const BACKSLASH = 0x5c
const COLON = 0x3a
const QUESTION = 0x3f
const HASH = 0x23
const AT = 0x40

/** ASCII tab and newlines, which the WHATWG URL parser deletes anywhere in the input. */
function isTabOrNewline(c: number): boolean {
  return c === 0x09 || c === 0x0a || c === 0x0d
}

function isAlpha(c: number): boolean {
  const lower = c | 0x20
  return lower >= 0x61 && lower <= 0x7a
}

function isSchemeChar(c: number): boolean {
  return isAlpha(c) || (c >= 0x30 && c <= 0x39) || c === PLUS || c === 0x2d || c === 0x2e
}

/**
 * Whether url[start, end) is one of the WHATWG "special" schemes, whose
 * authority may follow any number of "/" or "\\" (even none: `http:u:p@host`
 * is a URL with credentials to a WHATWG parser), and ends at "\\" too.
 * Tabs and newlines inside are skipped, as the parser deletes them.
 */
function isSpecialScheme(url: string, start: number, end: number): boolean {
  return schemeIs(url, start, end, 'http') || schemeIs(url, start, end, 'https') || schemeIs(url, start, end, 'ws') ||
    schemeIs(url, start, end, 'wss') || schemeIs(url, start, end, 'ftp') || schemeIs(url, start, end, 'file')
}

/** Whether url[start, end), tabs and newlines skipped, is `name` (lower-case letters) in any case. */
function schemeIs(url: string, start: number, end: number, name: string): boolean {
  let j = 0
  for (let i = start; i < end; i++) {
    const c = url.charCodeAt(i)
    if (isTabOrNewline(c)) continue
    // OR-ing 0x20 lower-cases ASCII letters and maps no other character onto one.
    if (j === name.length || (c | 0x20) !== name.charCodeAt(j)) return false
    j++
  }
  return j === name.length
}

// Set by authorityStart(): whether the URL's scheme is special (see above).
let special = false

/**
 * Where the authority of `url` starts, or -1 when it has none, following the
 * WHATWG URL parser: leading C0 controls and spaces are stripped, tabs and
 * newlines ignored; a special scheme's authority comes after any run of "/"
 * and "\\", another scheme's after exactly "//". A scheme-relative `//host`
 * (which WHATWG rejects without a base) is read like a special one: where
 * unsure, this errs towards seeing an authority, which can only redact more.
 */
function authorityStart(url: string): number {
  const length = url.length
  special = false
  let i = 0
  while (i < length && url.charCodeAt(i) <= 0x20) i++
  const schemeStart = i
  if (i < length && isAlpha(url.charCodeAt(i))) {
    for (i++; i < length; i++) {
      const c = url.charCodeAt(i)
      if (!isSchemeChar(c) && !isTabOrNewline(c)) break
    }
    if (i < length && url.charCodeAt(i) === COLON) {
      if (isSpecialScheme(url, schemeStart, i)) {
        special = true
        return skipSlashes(url, i + 1, true)
      }
      const end = skipSlashes(url, i + 1, false)
      return slashCount === 2 ? end : -1
    }
  }
  const end = skipSlashes(url, schemeStart, true)
  return slashCount >= 2 ? end : -1
}

// skipSlashes() reports its count here rather than in a returned object, so
// the per-call path allocates nothing; it is read right after each call.
let slashCount = 0

/**
 * The position after the slashes at url[from] (tabs and newlines skipped),
 * their number in slashCount. With `any`, every "/" and "\\" of the run;
 * otherwise at most two "/", the "//" that opens a non-special authority.
 */
function skipSlashes(url: string, from: number, any: boolean): number {
  slashCount = 0
  let i = from
  for (; i < url.length; i++) {
    const c = url.charCodeAt(i)
    if (c === SLASH || (any && c === BACKSLASH)) {
      if (!any && slashCount === 2) break
      slashCount++
    } else if (!isTabOrNewline(c)) {
      break
    }
  }
  return i
}

/**
 * `url` for the `url.full` attribute of a client span: credentials replaced
 * by `REDACTED:REDACTED` ("`url.full` MUST NOT contain credentials passed
 * via URL ... attribute's value SHOULD be
 * `https://REDACTED:REDACTED@www.example.com/`"), and the query redacted as
 * by redactQuery(). Any userinfo counts, a user name alone included
 * (`https://token@host` is how many APIs pass a token); an empty one
 * (`https://@host`) carries nothing and is kept. The userinfo ends at the last
 * "@" before the path, as in the WHATWG parser, so `https://a@b@host` is
 * fully redacted. The fragment is kept as is.
 *
 * Never throws. Unparseable input is handled as well as it can be: when in
 * doubt whether something is userinfo, it is redacted.
 *
 * @example
 * redactUrl('https://user:pw@example.com/p?X-Amz-Signature=abc#top', sensitiveSet(undefined))
 * // 'https://REDACTED:REDACTED@example.com/p?X-Amz-Signature=REDACTED#top'
 */
export function redactUrl(url: string, sensitive: ReadonlySet<string>): string {
  if (typeof url !== 'string') return ''
  const length = url.length
  let head = '' // the redacted prefix url[0, rest) when credentials were found
  let rest = 0
  let scan = 0 // where to look for the query
  const authority = authorityStart(url)
  if (authority !== -1) {
    let end = authority
    let at = -1
    for (; end < length; end++) {
      const c = url.charCodeAt(end)
      if (c === SLASH || c === QUESTION || c === HASH || (special && c === BACKSLASH)) break
      if (c === AT) at = end
    }
    if (at > authority) {
      head = url.slice(0, authority) + REDACTED + ':' + REDACTED
      rest = at
    }
    scan = end
  }
  let question = -1
  for (let i = scan; i < length; i++) {
    const c = url.charCodeAt(i)
    if (c === HASH) break
    if (c === QUESTION) {
      question = i
      break
    }
  }
  if (question !== -1) {
    let queryEnd = url.indexOf('#', question + 1)
    if (queryEnd === -1) queryEnd = length
    const query = url.slice(question + 1, queryEnd)
    const redacted = redactQuery(query, sensitive)
    if (redacted !== query) return head + url.slice(rest, question + 1) + redacted + url.slice(queryEnd)
  }
  return rest === 0 ? url : head + url.slice(rest)
}
