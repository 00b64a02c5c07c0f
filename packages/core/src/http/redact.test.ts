import fc from 'fast-check'
import { ERR_INVALID_ARGUMENT, TracingError } from '../errors.ts'
import { DEFAULT_SENSITIVE_QUERY_PARAMS, REDACTED, redactQuery, redactUrl, sensitiveSet } from './redact.ts'

const DEFAULTS = sensitiveSet(undefined)

function timeMs(fn: () => void): number {
  let best = Infinity
  for (let n = 0; n < 3; n++) {
    const start = performance.now()
    fn()
    best = Math.min(best, performance.now() - start)
  }
  return best
}

describe('DEFAULT_SENSITIVE_QUERY_PARAMS', () => {
  it('is the url.query / url.full default list of the semantic conventions', () => {
    expect([...DEFAULT_SENSITIVE_QUERY_PARAMS].sort()).toEqual(
      ['AWSAccessKeyId', 'Signature', 'X-Amz-Credential', 'X-Amz-Security-Token', 'X-Amz-Signature', 'X-Goog-Signature', 'sig'],
    )
    expect(Object.isFrozen(DEFAULT_SENSITIVE_QUERY_PARAMS)).toBe(true)
  })
})

describe('sensitiveSet', () => {
  it('defaults, and replaces the defaults when given a list', () => {
    expect([...sensitiveSet(undefined)]).toEqual([...DEFAULT_SENSITIVE_QUERY_PARAMS])
    expect([...sensitiveSet(['token'])]).toEqual(['token'])
    expect(sensitiveSet([]).size).toBe(0)
  })

  it.each([[42], ['sig'], [null], [['sig', 1]], [[undefined]], [{ length: 1, 0: 'sig' }]])('rejects %j', (list) => {
    expect(() => sensitiveSet(list as unknown as string[])).toThrow(TracingError)
    try {
      sensitiveSet(list as unknown as string[])
    } catch (err) {
      expect((err as TracingError).code).toBe(ERR_INVALID_ARGUMENT)
    }
  })
})

describe('redactQuery', () => {
  it.each([
    // The conventions' example.
    ['q=OpenTelemetry&sig=abc', 'q=OpenTelemetry&sig=REDACTED'],
    ['color=blue&sig=secret', 'color=blue&sig=REDACTED'],
    ['X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F2013&X-Amz-Date=20130721T201207Z&X-Amz-Signature=fe5f80',
      'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED&X-Amz-Date=20130721T201207Z&X-Amz-Signature=REDACTED'],
    ['AWSAccessKeyId=AKIA&Expires=1&Signature=abc%2B%3D', 'AWSAccessKeyId=REDACTED&Expires=1&Signature=REDACTED'],
    ['X-Goog-Signature=abc&X-Amz-Security-Token=tok', 'X-Goog-Signature=REDACTED&X-Amz-Security-Token=REDACTED'],
    // Repeated keys, empty values, values with "=".
    ['sig=a&sig=b&sig=', 'sig=REDACTED&sig=REDACTED&sig=REDACTED'],
    ['sig=a=b=c&x=1', 'sig=REDACTED&x=1'],
    ['sig==', 'sig=REDACTED'],
    // Keys without "=" have no value to hide and are kept.
    ['sig&x=1&sig', 'sig&x=1&sig'],
    // Empty pairs are kept byte for byte.
    ['&&sig=1&&', '&&sig=REDACTED&&'],
    ['&', '&'],
    // Percent-encoded and "+" keys match once decoded, as servers read them.
    ['X%2DAmz%2DSignature=abc', 'X%2DAmz%2DSignature=REDACTED'],
    ['%73%69%67=abc', '%73%69%67=REDACTED'],
    ['%73ig=abc&s%69g=def', '%73ig=REDACTED&s%69g=REDACTED'],
    // Case-sensitive, as the conventions say.
    ['SIG=abc&signature=x&x-amz-signature=y', 'SIG=abc&signature=x&x-amz-signature=y'],
    // Not a separator, not a key: ";" and a key inside a value.
    ['a=1;sig=2', 'a=1;sig=2'],
    ['a=sig=2', 'a=sig=2'],
    // Unicode, malformed escapes.
    ['sig=\u{1F600}&\u00e9=1', 'sig=REDACTED&\u00e9=1'],
    ['%=1&%zz=2&sig%=3&sig=%', '%=1&%zz=2&sig%=3&sig=REDACTED'],
  ])('%j → %j', (query, expected) => {
    expect(redactQuery(query, DEFAULTS)).toBe(expected)
  })

  it('matches "+" as a space and non-ASCII keys after UTF-8 decoding', () => {
    const set = sensitiveSet(['api key', 'clé', 'a+b'])
    expect(redactQuery('api+key=1&api%20key=2&api key=3', set)).toBe('api+key=REDACTED&api%20key=REDACTED&api key=REDACTED')
    expect(redactQuery('cl%C3%A9=1&cl\u00e9=2&cl%E9=3', set)).toBe('cl%C3%A9=REDACTED&cl\u00e9=REDACTED&cl%E9=3')
    // As written, or decoded ("%2B" is a literal "+").
    expect(redactQuery('a+b=1&a%2Bb=2', set)).toBe('a+b=REDACTED&a%2Bb=REDACTED')
  })

  it('returns the very same string when nothing matches', () => {
    const query = 'q=1&sig&Signature2=x&' + 'x=y&'.repeat(10)
    expect(redactQuery(query, DEFAULTS)).toBe(query)
    expect(redactQuery('sig=1', new Set())).toBe('sig=1')
    expect(redactQuery('', DEFAULTS)).toBe('')
  })

  it('uses the given set only', () => {
    expect(redactQuery('token=1&sig=2', sensitiveSet(['token']))).toBe('token=REDACTED&sig=2')
  })

  it('tolerates carrier garbage', () => {
    expect(redactQuery(undefined as unknown as string, DEFAULTS)).toBe('')
    expect(redactQuery(42 as unknown as string, DEFAULTS)).toBe('')
  })
})

describe('redactUrl', () => {
  it.each([
    // The conventions' examples.
    ['https://username:password@www.example.com/', 'https://REDACTED:REDACTED@www.example.com/'],
    ['https://www.example.com/path?color=blue&sig=abc', 'https://www.example.com/path?color=blue&sig=REDACTED'],
    // Both at once, with port and fragment.
    ['https://u:p@example.com:8443/p?X-Amz-Signature=abc&a=1#frag?sig=1', 'https://REDACTED:REDACTED@example.com:8443/p?X-Amz-Signature=REDACTED&a=1#frag?sig=1'],
    // A user name alone, an empty user, an empty userinfo.
    ['https://token@example.com/', 'https://REDACTED:REDACTED@example.com/'],
    ['https://:secret@example.com/', 'https://REDACTED:REDACTED@example.com/'],
    ['https://@example.com/', 'https://@example.com/'],
    // The userinfo ends at the last "@" of the authority, as in WHATWG URL.
    ['https://a@b:c@example.com/', 'https://REDACTED:REDACTED@example.com/'],
    ['http://user:pa%40ss@[::1]:80/x', 'http://REDACTED:REDACTED@[::1]:80/x'],
    // "@" after the authority is not userinfo.
    ['https://example.com/@user?email=a@b#x@y', 'https://example.com/@user?email=a@b#x@y'],
    ['https://registry.npmjs.org/@types%2fnode', 'https://registry.npmjs.org/@types%2fnode'],
    ['https://example.com?x=a@b', 'https://example.com?x=a@b'],
    // Query without a path; fragment before "?" means no query.
    ['https://example.com?sig=1', 'https://example.com?sig=REDACTED'],
    ['https://example.com#a?sig=1', 'https://example.com#a?sig=1'],
    ['https://example.com/?', 'https://example.com/?'],
    // What WHATWG parsers also read as credentials.
    ['http:user:pass@example.com/', 'http:REDACTED:REDACTED@example.com/'],
    ['http:/user:pass@example.com/', 'http:/REDACTED:REDACTED@example.com/'],
    ['HTTPS:\\\\user:pass@example.com\\x', 'HTTPS:\\\\REDACTED:REDACTED@example.com\\x'],
    ['  \u0000https://user:pass@example.com/', '  \u0000https://REDACTED:REDACTED@example.com/'],
    ['ht\ttps://us\ner:pass@example.com/', 'ht\ttps://REDACTED:REDACTED@example.com/'],
    ['//user:pass@example.com/p', '//REDACTED:REDACTED@example.com/p'],
    ['wss://u:p@example.com', 'wss://REDACTED:REDACTED@example.com'],
    ['foo://u:p@example.com', 'foo://REDACTED:REDACTED@example.com'],
    // No authority: nothing to redact there.
    ['mailto:user@example.com', 'mailto:user@example.com'],
    ['data:,a@b', 'data:,a@b'],
    ['/relative/path?sig=1', '/relative/path?sig=REDACTED'],
    ['?sig=1', '?sig=REDACTED'],
    ['', ''],
    ['https://', 'https://'],
    ['https://u:p@', 'https://REDACTED:REDACTED@'],
    ['@', '@'],
    [':', ':'],
  ])('%j → %j', (url, expected) => {
    expect(redactUrl(url, DEFAULTS)).toBe(expected)
  })

  it('returns the very same string when nothing is redacted', () => {
    const url = 'https://example.com/a/b?c=d#e'
    expect(redactUrl(url, DEFAULTS)).toBe(url)
  })

  it('tolerates carrier garbage', () => {
    expect(redactUrl(null as unknown as string, DEFAULTS)).toBe('')
  })
})

describe('redact: hostile input', () => {
  const KiB64 = 64 * 1024
  it.each([
    ['64 KiB value', 'sig=' + 'a'.repeat(KiB64)],
    ['thousands of sensitive pairs', 'sig=1&'.repeat(KiB64 / 6)],
    ['thousands of encoded keys', '%73%69%67=1&'.repeat(KiB64 / 12)],
    ['thousands of "&"', '&'.repeat(KiB64)],
    ['thousands of "="', '='.repeat(KiB64)],
    ['64 KiB encoded key', '%41'.repeat(KiB64 / 3) + '=1'],
    ['unicode', '\u{1F600}\uD800=\u0301&'.repeat(KiB64 / 6)],
  ])('%s: redactQuery and redactUrl are fast and never throw', (_name, input) => {
    const url = 'https://u:p@' + input.slice(0, 100) + '/' + input + '?' + input + '#' + input
    expect(timeMs(() => {
      redactQuery(input, DEFAULTS)
      redactUrl(url, DEFAULTS)
      redactUrl('https://' + '@'.repeat(KiB64), DEFAULTS)
      redactUrl('http:' + '\\'.repeat(KiB64), DEFAULTS)
    })).toBeLessThan(50)
  })
})

// --- properties -------------------------------------------------------------

const SENSITIVE = [...DEFAULT_SENSITIVE_QUERY_PARAMS]

/** Percent-encode some characters of `key` (any may be), the way a client could send it. */
const encodedKey = fc.constantFrom(...SENSITIVE).chain((key) =>
  fc.array(fc.boolean(), { minLength: key.length, maxLength: key.length }).map((flags) => {
    let out = ''
    for (let i = 0; i < key.length; i++) {
      out += flags[i] === true ? '%' + key.charCodeAt(i).toString(16).padStart(2, '0') : key[i]
    }
    return out
  }))

const secret = fc.string({ minLength: 1, maxLength: 20 }).map((s) => `S3CR3T${s.replaceAll('&', '').replaceAll('#', '')}`)
const otherKey = fc.string({ maxLength: 10 }).filter((k) => !k.includes('&') && !k.includes('='))
  .filter((k) => !isSensitive(k))
const otherValue = fc.string({ maxLength: 10 }).filter((v) => !v.includes('&'))

/** The key as URLSearchParams decodes it, when decodable. */
function isSensitive(rawKey: string): boolean {
  const decoded = [...new URLSearchParams(rawKey + '=')][0]?.[0]
  return DEFAULTS.has(rawKey) || (decoded !== undefined && DEFAULTS.has(decoded))
}

type Pair = { key: string; value: string | undefined; sensitive: boolean }
const pair: fc.Arbitrary<Pair> = fc.oneof(
  fc.record({ key: encodedKey, value: secret, sensitive: fc.constant(true) }),
  fc.record({ key: otherKey, value: fc.option(otherValue, { nil: undefined }), sensitive: fc.constant(false) }),
)

function serialize(pairs: readonly Pair[]): string {
  return pairs.map((p) => (p.value === undefined ? p.key : `${p.key}=${p.value}`)).join('&')
}

describe('redact: properties (fast-check)', () => {
  it('never throws', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => {
      redactQuery(s, DEFAULTS)
      redactUrl(s, DEFAULTS)
    }), { numRuns: 1000 })
  })

  it('redactQuery leaves no sensitive value, and changes nothing else', () => {
    fc.assert(fc.property(fc.array(pair, { maxLength: 8 }), (pairs) => {
      const query = serialize(pairs)
      const out = redactQuery(query, DEFAULTS)
      for (const p of pairs) if (p.sensitive) expect(out).not.toContain(p.value)
      const expected = serialize(pairs.map((p) => (p.sensitive ? { ...p, value: REDACTED } : p)))
      expect(out).toBe(expected)
      // What a server would read back: every sensitive key has REDACTED or nothing.
      for (const [key, value] of new URLSearchParams(out)) {
        if (DEFAULTS.has(key)) expect([REDACTED, '']).toContain(value)
      }
    }), { numRuns: 1000 })
  })

  it('redactQuery is the identity (same string) without sensitive keys', () => {
    const pairs = fc.array(fc.record({ key: otherKey, value: fc.option(otherValue, { nil: undefined }), sensitive: fc.constant(false) }))
    fc.assert(fc.property(pairs, (ps) => {
      const query = serialize(ps)
      expect(redactQuery(query, DEFAULTS)).toBe(query)
    }), { numRuns: 1000 })
  })

  it('redactUrl leaves no credentials or sensitive values a WHATWG parser would see', () => {
    const scheme = fc.constantFrom('http', 'https', 'HTTP', 'ws', 'wss', 'ftp', 'file', 'foo', 'h\tttp', '')
    const separator = fc.constantFrom(':', '://', ':/', ':\\\\', ':///', ':/\\', ':\t//', '//', '')
    const userinfo = fc.array(fc.constantFrom('user', 'pass', ':', '@', '%40', ' ', '\t', '\\', '/', '?', '#', '\u00e9', ''), { maxLength: 5 })
      .map((parts) => parts.join(''))
    const host = fc.constantFrom('example.com', '[::1]', '127.0.0.1', 'x:8080', '')
    const path = fc.constantFrom('', '/', '/a@b', '\\p@q', '/x/y', '/@')
    const query = fc.option(fc.array(fc.tuple(fc.oneof(encodedKey, fc.constantFrom('a', 'sig', '')), fc.option(secret, { nil: undefined })), { maxLength: 4 })
      .map((pairs) => '?' + pairs.map(([k, v]) => (v === undefined ? k : `${k}=${v}`)).join('&')), { nil: '' })
    const fragment = fc.constantFrom('', '#', '#f', '#?sig=1', '#u:p@h')
    const url = fc.tuple(scheme, separator, userinfo, fc.boolean(), host, path, query, fragment)
      .map(([a, b, u, at, h, p, q, f]) => a + b + u + (at ? '@' : '') + h + p + q + f)
    let withCredentials = 0
    fc.assert(fc.property(url, (input) => {
      const out = redactUrl(input, DEFAULTS)
      try {
        const original = new URL(input)
        if (original.username !== '' || original.password !== '') withCredentials++
      } catch { /* counted only when parseable */ }
      let parsed: URL
      try {
        parsed = new URL(out)
      } catch {
        return // not a URL: nothing a client would send
      }
      expect([REDACTED, '']).toContain(parsed.username)
      expect([REDACTED, '']).toContain(parsed.password)
      for (const [key, value] of parsed.searchParams) {
        if (DEFAULTS.has(key)) expect([REDACTED, '']).toContain(value)
      }
    }), { numRuns: 2000 })
    expect(withCredentials).toBeGreaterThan(50) // the generator does exercise credentials
  })

  it('redactUrl keeps a URL without credentials or sensitive keys unchanged', () => {
    fc.assert(fc.property(fc.webUrl({ withQueryParameters: true, withFragments: true }), (url) => {
      const parsed = new URL(url)
      const hasSensitive = [...parsed.searchParams.keys()].some((k) => DEFAULTS.has(k)) ||
        parsed.search.slice(1).split('&').some((p) => DEFAULTS.has(p.split('=')[0]!))
      if (parsed.username !== '' || parsed.password !== '' || hasSensitive) return
      expect(redactUrl(url, DEFAULTS)).toBe(url)
    }), { numRuns: 1000 })
  })
})
