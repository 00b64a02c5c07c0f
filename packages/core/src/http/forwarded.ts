/**
 * Who the client really is, and which host and scheme it used, when the
 * request came through proxies. The HTTP server semantic conventions
 * (https://opentelemetry.io/docs/specs/semconv/http/http-spans/#http-server)
 * take `client.address` from Forwarded#for, then X-Forwarded-For;
 * `server.address`/`server.port` from Forwarded#host, then X-Forwarded-Host,
 * then Host / :authority; `url.scheme` from Forwarded#proto, then
 * X-Forwarded-Proto. These helpers parse those headers; http/server.ts picks.
 *
 * Every function here runs on every request with attacker-controlled input,
 * so each one scans with charCodeAt (no regex), looks at a bounded prefix of
 * the header, allocates only the strings it returns, and never throws: a
 * value it cannot read is `undefined`, never an exception.
 *
 * Nothing here decides whether a proxy is trusted; any client can send these
 * headers. The conventions accept that for telemetry; do not use these
 * values for access control.
 */
import { isOws, trimOws, type RawHeaderValue } from '../propagation/header-value.ts'

/** The parameters of one Forwarded element that the conventions use (RFC 7239 section 5). */
export interface ForwardedInfo {
  /** The node that made the request to the proxy, unquoted, e.g. `[2001:db8::17]:4711`; pass it to nodeAddress(). */
  readonly for: string | undefined
  /** The Host header the proxy received (`host[:port]`); pass it to parseHostPort(). */
  readonly host: string | undefined
  /** The scheme the proxy received, lower-cased (`http`, `https`). */
  readonly proto: string | undefined
}

/**
 * How much of a Forwarded header we read, empty elements included. A client
 * with an honest proxy chain puts its element first, and that element is a
 * few dozen characters: 4 KiB leaves room for extensions while a 64 KiB
 * header costs no more than a 4 KiB one.
 */
const MAX_FORWARDED_SCAN = 4096
/** The same bound for X-Forwarded-For/-Host/-Proto, whose first member is an address, a host or a scheme. */
const MAX_MEMBER_SCAN = 1024
/** A Host value longer than this is not a real host (DNS names stop at 253 characters). */
const MAX_HOST_LENGTH = 1024

const EMPTY: ForwardedInfo = Object.freeze({ for: undefined, host: undefined, proto: undefined })

const HTAB = 0x09
const SP = 0x20
const DQUOTE = 0x22
const COMMA = 0x2c
const DOT = 0x2e
const COLON = 0x3a
const SEMICOLON = 0x3b
const EQUALS = 0x3d
const LBRACKET = 0x5b
const BACKSLASH = 0x5c
const RBRACKET = 0x5d

// Character classes for the ASCII range, as bit flags in one table so every
// check is a single array load.
const TCHAR = 1 // RFC 9110 section 5.6.2
const NODE = 2 // RFC 7239 section 6: ALPHA / DIGIT / "." / "_" / "-" / ":" / "[" / "]"
const SCHEME = 4 // RFC 3986 section 3.1 (after the first ALPHA): ALPHA / DIGIT / "+" / "-" / "."
const REG_NAME = 8 // RFC 3986 section 3.2.2: unreserved / pct-encoded / sub-delims
const HEX = 16
const ALPHA = 32
const UPPER = 64

const CLASSES = new Uint8Array(128)
for (let c = 0x30; c <= 0x39; c++) CLASSES[c] = TCHAR | NODE | SCHEME | REG_NAME | HEX
for (let c = 0x41; c <= 0x5a; c++) CLASSES[c] = TCHAR | NODE | SCHEME | REG_NAME | ALPHA | UPPER | (c <= 0x46 ? HEX : 0)
for (let c = 0x61; c <= 0x7a; c++) CLASSES[c] = TCHAR | NODE | SCHEME | REG_NAME | ALPHA | (c <= 0x66 ? HEX : 0)
for (const ch of "!#$%&'*+-.^_`|~") CLASSES[ch.charCodeAt(0)]! |= TCHAR
for (const ch of '._-:[]') CLASSES[ch.charCodeAt(0)]! |= NODE
for (const ch of '+-.') CLASSES[ch.charCodeAt(0)]! |= SCHEME
for (const ch of "-._~%!$&'()*+,;=") CLASSES[ch.charCodeAt(0)]! |= REG_NAME

function has(c: number, cls: number): boolean {
  return c < 128 && (CLASSES[c]! & cls) !== 0
}

/**
 * `value` with ASCII upper case lowered. Returns the same string when there
 * is nothing to lower, so the usual lower-case header costs no allocation.
 * Callers pass ASCII only, so toLowerCase() cannot change the length.
 */
function lowerAscii(value: string): string {
  for (let i = 0; i < value.length; i++) {
    if (has(value.charCodeAt(i), UPPER)) return value.toLowerCase()
  }
  return value
}

function allOf(value: string, cls: number): boolean {
  for (let i = 0; i < value.length; i++) {
    if (!has(value.charCodeAt(i), cls)) return false
  }
  return true
}

/**
 * The first position in line[from, limit) that is neither OWS nor a comma:
 * list syntax allows empty elements and recipients must skip them
 * (RFC 9110 section 5.6.1). `limit` when there is none.
 */
function skipEmptyElements(line: string, from: number, limit: number): number {
  let i = from
  while (i < limit) {
    const c = line.charCodeAt(i)
    if (c !== COMMA && c !== SP && c !== HTAB) break
    i++
  }
  return i
}

/**
 * The first forwarded-element of a Forwarded header (RFC 7239 section 4):
 *
 *   Forwarded         = 1#forwarded-element
 *   forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
 *   forwarded-pair    = token "=" value
 *   value             = token / quoted-string
 *
 * Each proxy appends its element after those already present (section 4),
 * so the first element is the one the proxy nearest the client added: it
 * describes the original request. Several field lines (a string[], or one string joined with ", ")
 * form one list; empty elements are skipped. Parameter names are
 * case-insensitive (section 4); `proto` is lower-cased, `for` and `host` are
 * returned unquoted and otherwise unchanged.
 *
 * A syntax error in that element, a repeated for/by/host/proto parameter
 * (section 4: "MUST NOT occur more than once per forwarded-element"), or an
 * element that does not end within the first 4 KiB gives all undefined; later
 * elements are not consulted, as they describe proxies, not the client.
 *
 * Two leniencies, because real proxies send them: OWS is allowed around ";"
 * and ",", and an unquoted value may contain ":", "[" and "]" (an IPv6
 * address or a port that should have been quoted, e.g. `for=192.0.2.43:47011`).
 *
 * A `for` value with characters outside the node grammar (section 6) and a
 * `proto` that is not a URI scheme are dropped (undefined) without
 * invalidating the rest.
 *
 * @example
 * parseForwarded('for="[2001:db8:cafe::17]:4711";proto=HTTPS, for=198.51.100.17')
 * // { for: '[2001:db8:cafe::17]:4711', host: undefined, proto: 'https' }
 */
export function parseForwarded(value: string | readonly string[] | undefined): ForwardedInfo {
  const raw = value as RawHeaderValue
  if (typeof raw === 'string') return firstElementOfLine(raw, MAX_FORWARDED_SCAN)
  if (raw === null || typeof raw !== 'object') return EMPTY
  let budget = MAX_FORWARDED_SCAN
  for (let n = 0; n < raw.length && budget > 0; n++) {
    const line = raw[n]
    if (typeof line !== 'string') {
      budget-- // so an array of a million non-strings is still bounded
      continue
    }
    const limit = Math.min(line.length, budget)
    const start = skipEmptyElements(line, 0, limit)
    if (start < limit) return parseElement(line, start, limit)
    if (limit < line.length) return EMPTY
    budget -= line.length + 1
  }
  return EMPTY
}

function firstElementOfLine(line: string, budget: number): ForwardedInfo {
  const limit = Math.min(line.length, budget)
  const start = skipEmptyElements(line, 0, limit)
  return start < limit ? parseElement(line, start, limit) : EMPTY
}

// Bits for the parameters we track, to detect repeats without allocating.
const P_FOR = 1
const P_BY = 2
const P_HOST = 4
const P_PROTO = 8

/** Which of for/by/host/proto line[start, end) names, case-insensitively; 0 for an extension. */
function parameterId(line: string, start: number, end: number): number {
  const length = end - start
  if (length < 2 || length > 5) return 0
  // Lower-casing ASCII letters only: OR-ing 0x20 maps 'A'..'Z' onto 'a'..'z'.
  const c0 = line.charCodeAt(start) | 0x20
  const c1 = line.charCodeAt(start + 1) | 0x20
  if (length === 2) return c0 === 0x62 && c1 === 0x79 ? P_BY : 0 // "by"
  const c2 = line.charCodeAt(start + 2) | 0x20
  if (length === 3) return c0 === 0x66 && c1 === 0x6f && c2 === 0x72 ? P_FOR : 0 // "for"
  const c3 = line.charCodeAt(start + 3) | 0x20
  if (length === 4) return c0 === 0x68 && c1 === 0x6f && c2 === 0x73 && c3 === 0x74 ? P_HOST : 0 // "host"
  const c4 = line.charCodeAt(start + 4) | 0x20
  return c0 === 0x70 && c1 === 0x72 && c2 === 0x6f && c3 === 0x74 && c4 === 0x6f ? P_PROTO : 0 // "proto"
}

/** qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text (RFC 9110 section 5.6.4). */
function isQdtext(c: number): boolean {
  return c === HTAB || (c >= SP && c <= 0xff && c !== DQUOTE && c !== BACKSLASH && c !== 0x7f)
}

/** The character after "\" in a quoted-pair: HTAB / SP / VCHAR / obs-text. */
function isQuotedPairChar(c: number): boolean {
  return c === HTAB || (c >= SP && c <= 0xff && c !== 0x7f)
}

/** The content of the quoted-string line[start, end) (quotes excluded) with quoted-pairs resolved. */
function unescape(line: string, start: number, end: number): string {
  let out = ''
  let from = start
  for (let i = start; i < end; i++) {
    if (line.charCodeAt(i) === BACKSLASH) {
      out += line.slice(from, i)
      from = ++i // keep the escaped character, whatever it is
    }
  }
  return out + line.slice(from, end)
}

/**
 * Parse the forwarded-element starting at line[i] (not OWS, not a comma).
 * `limit` is where the scan budget ends: reaching it before the end of the
 * line means the element is too long, which makes it invalid.
 */
function parseElement(line: string, i: number, limit: number): ForwardedInfo {
  let forValue: string | undefined
  let host: string | undefined
  let proto: string | undefined
  let seen = 0
  for (;;) {
    while (i < limit && isOws(line.charCodeAt(i))) i++
    if (i >= limit) break
    let c = line.charCodeAt(i)
    if (c === COMMA) break
    if (c === SEMICOLON) { // an empty pair: `for=a;;proto=b`, `for=a;`
      i++
      continue
    }
    const nameStart = i
    while (i < limit && has(line.charCodeAt(i), TCHAR)) i++
    if (i === nameStart || i >= limit || line.charCodeAt(i) !== EQUALS) return EMPTY
    const id = parameterId(line, nameStart, i)
    if ((seen & id) !== 0) return EMPTY
    seen |= id
    const keep = id !== 0 && id !== P_BY
    i++ // "="
    let parsed: string | undefined
    if (i < limit && line.charCodeAt(i) === DQUOTE) {
      const start = ++i
      let escaped = false
      for (;;) {
        if (i >= limit) return EMPTY // unbalanced quote (or past the budget)
        c = line.charCodeAt(i)
        if (c === DQUOTE) break
        if (c === BACKSLASH) {
          if (++i >= limit || !isQuotedPairChar(line.charCodeAt(i))) return EMPTY
          escaped = true
        } else if (!isQdtext(c)) {
          return EMPTY
        }
        i++
      }
      if (keep) parsed = escaped ? unescape(line, start, i) : line.slice(start, i)
      i++ // closing quote
    } else {
      const start = i
      while (i < limit && isLenientTokenChar(line.charCodeAt(i))) i++
      if (i === start) return EMPTY // `for=` has no value
      if (keep) parsed = line.slice(start, i)
    }
    if (parsed !== undefined && parsed.length > 0) {
      if (id === P_FOR) forValue = allOf(parsed, NODE) ? parsed : undefined
      else if (id === P_HOST) host = parsed
      else proto = isScheme(parsed) ? lowerAscii(parsed) : undefined
    }
    while (i < limit && isOws(line.charCodeAt(i))) i++
    if (i >= limit) break
    c = line.charCodeAt(i)
    if (c === COMMA) break
    if (c !== SEMICOLON) return EMPTY // e.g. `for=a b`, `for="a"x`
    i++
  }
  // Stopped at the budget, not at the end of the line: the element goes on.
  if (i >= limit && limit < line.length) return EMPTY
  if (forValue === undefined && host === undefined && proto === undefined) return EMPTY
  return { for: forValue, host, proto }
}

/** tchar, plus ":" "[" "]" that an unquoted IPv6 address or port brings along. */
function isLenientTokenChar(c: number): boolean {
  return has(c, TCHAR) || c === COLON || c === LBRACKET || c === RBRACKET
}

/** scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 section 3.1). */
function isScheme(value: string): boolean {
  if (!has(value.charCodeAt(0), ALPHA)) return false
  for (let i = 1; i < value.length; i++) {
    if (!has(value.charCodeAt(i), SCHEME)) return false
  }
  return true
}

/**
 * The first member of a comma-separated list header, trimmed; undefined when
 * it is absent, longer than MAX_MEMBER_SCAN, or holds anything but visible
 * ASCII (an address, host or scheme never does). Empty members are skipped;
 * a bad first member is not replaced by the second, which names a proxy.
 */
function firstMember(value: RawHeaderValue): string | undefined {
  if (typeof value === 'string') return memberAt(value, MAX_MEMBER_SCAN)
  if (value === null || typeof value !== 'object') return undefined
  let budget = MAX_MEMBER_SCAN
  for (let n = 0; n < value.length && budget > 0; n++) {
    const line = value[n]
    if (typeof line !== 'string') {
      budget--
      continue
    }
    const limit = Math.min(line.length, budget)
    if (skipEmptyElements(line, 0, limit) < limit) return memberAt(line, budget)
    if (limit < line.length) return undefined
    budget -= line.length + 1
  }
  return undefined
}

function memberAt(line: string, budget: number): string | undefined {
  const limit = Math.min(line.length, budget)
  const start = skipEmptyElements(line, 0, limit)
  let end = start
  while (end < limit && line.charCodeAt(end) !== COMMA) end++
  if (end === start || (end === limit && limit < line.length)) return undefined
  while (isOws(line.charCodeAt(end - 1))) end-- // stops at `start`, which is not OWS
  for (let i = start; i < end; i++) {
    const c = line.charCodeAt(i)
    if (c <= SP || c >= 0x7f) return undefined
  }
  return start === 0 && end === line.length ? line : line.slice(start, end)
}

/**
 * The first entry of X-Forwarded-For (the client; each proxy appends the
 * address it received the request from), trimmed. Undefined when the header
 * is absent, the entry is empty, not visible ASCII, or longer than 1 KiB.
 * The entry may carry a port (`192.0.2.60:1234`, `[2001:db8::1]:1234`);
 * pass it to nodeAddress().
 *
 * @example
 * firstForwardedFor('203.0.113.195, 70.41.3.18, 150.172.238.178') // '203.0.113.195'
 */
export function firstForwardedFor(value: string | readonly string[] | undefined): string | undefined {
  return firstMember(value as RawHeaderValue)
}

/**
 * The first value of an X-Forwarded-Proto or X-Forwarded-Host header (some
 * proxies append rather than replace, so `https, http` means the client used
 * https), trimmed and ASCII lower-cased: schemes (RFC 3986 section 3.1) and
 * hosts (section 3.2.2) are both case-insensitive, so this is a
 * normalisation, not a change of meaning. Undefined under the same
 * conditions as firstForwardedFor().
 *
 * @example
 * firstHeaderToken('HTTPS, http') // 'https'
 */
export function firstHeaderToken(value: string | readonly string[] | undefined): string | undefined {
  const member = firstMember(value as RawHeaderValue)
  return member === undefined ? undefined : lowerAscii(member)
}

/**
 * Split a Host-style value (`uri-host [ ":" port ]`, RFC 9110 section 7.2;
 * also Forwarded#host, X-Forwarded-Host and :authority) into the
 * `server.address` and `server.port` attributes. The address is lower-cased
 * (hosts are case-insensitive, RFC 3986 section 3.2.2) and an IPv6 literal
 * loses its brackets. The port must be 1 to 5 digits with a value of 1 to
 * 65535; an empty port (`example.com:`) counts as no port (RFC 3986
 * section 3.2.3). Anything else (userinfo, a bare IPv6 address, spaces,
 * non-ASCII, more than 1 KiB) is undefined.
 *
 * @example
 * parseHostPort('Example.com:8080') // { address: 'example.com', port: 8080 }
 * parseHostPort('[::1]:3000')       // { address: '::1', port: 3000 }
 * parseHostPort('example.com')      // { address: 'example.com', port: undefined }
 */
export function parseHostPort(value: string | undefined): HostPort | undefined {
  if (typeof value !== 'string' || value.length > MAX_HOST_LENGTH) return undefined
  // A server sees the same Host on request after request: remember the
  // last one (the result is immutable, so sharing it is safe).
  if (value === lastHost) return lastHostPort
  const parsed = parseHostPortUncached(value)
  lastHost = value
  lastHostPort = parsed
  return parsed
}

export interface HostPort {
  readonly address: string
  readonly port: number | undefined
}

let lastHost: string | undefined
let lastHostPort: HostPort | undefined

function parseHostPortUncached(value: string): HostPort | undefined {
  const host = trimOws(value)
  const length = host.length
  if (length === 0) return undefined
  let address: string
  let colon: number
  if (host.charCodeAt(0) === LBRACKET) {
    // IP-literal = "[" IPv6address "]"; IPvFuture and zone ids are not accepted.
    let i = 1
    let sawColon = false
    for (; i < length; i++) {
      const c = host.charCodeAt(i)
      if (c === RBRACKET) break
      if (c === COLON) sawColon = true
      else if (c !== DOT && !has(c, HEX)) return undefined
    }
    if (i >= length || !sawColon) return undefined
    address = host.slice(1, i)
    colon = i + 1
    if (colon < length && host.charCodeAt(colon) !== COLON) return undefined
  } else {
    let i = 0
    for (; i < length; i++) {
      const c = host.charCodeAt(i)
      if (c === COLON) break
      if (!has(c, REG_NAME)) return undefined
    }
    if (i === 0) return undefined
    address = i === length ? host : host.slice(0, i)
    colon = i
  }
  const port = parsePort(host, colon + 1, length)
  if (port === -1) return undefined
  return Object.freeze({ address: lowerAscii(address), port: port === 0 ? undefined : port })
}

/** The port in value[start, end): 0 when empty, -1 when invalid. */
function parsePort(value: string, start: number, end: number): number {
  if (start >= end) return 0
  if (end - start > 5) return -1
  let port = 0
  for (let i = start; i < end; i++) {
    const c = value.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return -1
    port = port * 10 + (c - 0x30)
  }
  return port >= 1 && port <= 65535 ? port : -1
}

/**
 * The address part of a node (RFC 7239 section 6, `nodename [ ":" node-port ]`)
 * or of an X-Forwarded-For entry, for `client.address`: the port is dropped
 * and an IPv6 literal loses its brackets. `unknown` and obfuscated names
 * (`_hidden`) are returned as they are, without a port if one is attached.
 * A bare IPv6 address (two or more colons, as X-Forwarded-For writes them)
 * is kept whole, and anything unreadable (a lone `[`) is returned unchanged.
 *
 * @example
 * nodeAddress('[2001:db8::1]:4711') // '2001:db8::1'
 * nodeAddress('192.0.2.60:80')      // '192.0.2.60'
 * nodeAddress('2001:db8::1')        // '2001:db8::1'
 * nodeAddress('_hidden')            // '_hidden'
 */
export function nodeAddress(node: string): string {
  if (typeof node !== 'string' || node.length === 0) return node
  if (node.charCodeAt(0) === LBRACKET) {
    const close = node.indexOf(']')
    if (close === -1 || (close + 1 < node.length && node.charCodeAt(close + 1) !== COLON)) return node
    return node.slice(1, close)
  }
  const colon = node.indexOf(':')
  // No port; a bare IPv6 address; or ":80", which has no address to keep.
  if (colon <= 0 || node.indexOf(':', colon + 1) !== -1) return node
  return node.slice(0, colon)
}
