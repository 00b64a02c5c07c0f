import fc from 'fast-check'
import { ERR_INVALID_BAGGAGE, TracingError } from '../errors.ts'
import {
  Baggage,
  BAGGAGE_MAX_BYTES,
  BAGGAGE_MAX_MEMBERS,
  isValidBaggageKey,
  isValidBaggageMetadata,
  type BaggageEntry,
} from './baggage.ts'

// Section numbers refer to W3C Baggage, Candidate Recommendation 30 May 2024
// (https://www.w3.org/TR/baggage/).

type Row = [string, BaggageEntry]

function rows(baggage: Baggage): Row[] {
  return [...baggage.entries()].map(([k, e]) => [k, { ...e }])
}

describe('Baggage.parse: the spec examples', () => {
  it('section 3.3.2 example: properties and OWS', () => {
    const b = Baggage.parse('key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue')
    expect(rows(b)).toEqual([
      ['key1', { value: 'value1', metadata: 'property1;property2' }],
      ['key2', { value: 'value2' }],
      ['key3', { value: 'value3', metadata: 'propertyKey=propertyValue' }],
    ])
  })

  it('section 3.4: single header, percent-encoded space', () => {
    const b = Baggage.parse('userId=alice,serverNode=DF%2028,isProduction=false')
    expect(rows(b)).toEqual([
      ['userId', { value: 'alice' }],
      ['serverNode', { value: 'DF 28' }],
      ['isProduction', { value: 'false' }],
    ])
  })

  it('section 3.4: percent-encoded UTF-8', () => {
    expect(Baggage.parse('userId=Am%C3%A9lie,serverNode=DF%2028,isProduction=false').getValue('userId')).toBe('Amélie')
  })

  it('section 3.4: split into several headers (combined in order)', () => {
    const b = Baggage.parse(['userId=alice', 'serverNode=DF%2028,isProduction=false'])
    expect([...b.entries()].map(([k]) => k)).toEqual(['userId', 'serverNode', 'isProduction'])
  })

  it('section 3.4: names and values with spaces around them', () => {
    const b = Baggage.parse(['userId =   alice', 'serverNode = DF%2028, isProduction = false'])
    expect(rows(b)).toEqual([
      ['userId', { value: 'alice' }],
      ['serverNode', { value: 'DF 28' }],
      ['isProduction', { value: 'false' }],
    ])
  })
})

describe('Baggage.parse: members', () => {
  const cases: Array<[string, string | readonly string[], Row[]]> = [
    ['"=" inside a value (section 3.3.1.3: parsers MUST NOT assume one "=")', 'k=a=b==', [['k', { value: 'a=b==' }]]],
    ['empty value (value = *baggage-octet)', 'k=', [['k', { value: '' }]]],
    ['empty value with OWS and a property', 'k = ;p', [['k', { value: '', metadata: 'p' }]]],
    ['every tchar in a key', "!#$%&'*+-.^_`|~09AZaz=1", [["!#$%&'*+-.^_`|~09AZaz", { value: '1' }]]],
    ['keys are case-sensitive', 'K=1,k=2', [['K', { value: '1' }], ['k', { value: '2' }]]],
    ['property with a value containing "="', 'k=v;p=a=b', [['k', { value: 'v', metadata: 'p=a=b' }]]],
    ['properties keep their inner OWS', 'k=v ; p1 = x ;\tp2 ', [['k', { value: 'v', metadata: 'p1 = x ;\tp2' }]]],
    ['property with an empty value', 'k=v;p=', [['k', { value: 'v', metadata: 'p=' }]]],
    ['empty members are skipped', ',,a=1, ,\t,b=2,', [['a', { value: '1' }], ['b', { value: '2' }]]],
    ['"+" is not a space', 'k=a+b', [['k', { value: 'a+b' }]]],
    ['a repeated key keeps its first position and its last value', 'a=1,b=2,a=3', [['a', { value: '3' }], ['b', { value: '2' }]]],
    ['a repeated key across headers', ['a=1;p', 'a=2'], [['a', { value: '2' }]]],
    // Section 3.5: an entry "not in the format defined in this specification" MAY be removed;
    // the other members are kept.
    ['no "=" drops the member', 'a=1,nokey,b=2', [['a', { value: '1' }], ['b', { value: '2' }]]],
    ['empty key', '=v,b=2', [['b', { value: '2' }]]],
    ['space inside a key', 'a b=1,b=2', [['b', { value: '2' }]]],
    ['"@" is not a tchar', 'k@x=1,b=2', [['b', { value: '2' }]]],
    ['"(" is not a tchar', '(k)=1,b=2', [['b', { value: '2' }]]],
    ['non-ASCII key', 'ké=1,b=2', [['b', { value: '2' }]]],
    ['space inside a value', 'k=a b,b=2', [['b', { value: '2' }]]],
    ['DQUOTE in a value', 'k="v",b=2', [['b', { value: '2' }]]],
    ['backslash in a value', 'k=a\\b,b=2', [['b', { value: '2' }]]],
    ['raw non-ASCII in a value', 'k=é,b=2', [['b', { value: '2' }]]],
    ['control character in a value', 'k=a\x01,b=2', [['b', { value: '2' }]]],
    ['DEL in a value', 'k=a\x7f,b=2', [['b', { value: '2' }]]],
    ['tab inside a value', 'k=a\tb,b=2', [['b', { value: '2' }]]],
    ['empty property (trailing ";")', 'k=v;,b=2', [['b', { value: '2' }]]],
    ['empty property (";;")', 'k=v;;p,b=2', [['b', { value: '2' }]]],
    ['property key that is not a token', 'k=v;p q,b=2', [['b', { value: '2' }]]],
    ['property value outside baggage-octet', 'k=v;p=a b,b=2', [['b', { value: '2' }]]],
    ['property without a key', 'k=v;=x,b=2', [['b', { value: '2' }]]],
    ['CR LF is not OWS', 'k=v\r\n,b=2', [['b', { value: '2' }]]],
  ]

  it.each(cases)('%s', (_name, value, expected) => {
    expect(rows(Baggage.parse(value))).toEqual(expected)
  })

  it.each([undefined, null, '', [], [''], ' , \t,', 'garbage', ';;;'])('is empty for %j', (value) => {
    const b = Baggage.parse(value as string | undefined)
    expect(b.size).toBe(0)
    expect(b).toBe(Baggage.EMPTY)
  })

  it('returns EMPTY for carrier garbage instead of throwing', () => {
    for (const junk of [42, {}, [42], [undefined], Symbol('x'), true]) {
      expect(Baggage.parse(junk as unknown as string)).toBe(Baggage.EMPTY)
    }
  })
})

describe('Baggage.parse: percent-decoding (section 3.3.1.3)', () => {
  it.each([
    ['%20', ' '],
    ['%25', '%'],
    ['%c3%a9', 'é'],
    ['%C3%A9', 'é'],
    ['%E2%82%AC', '€'],
    ['%F0%9F%98%80', '😀'],
    ['%2C%3B%22%5C', ',;"\\'],
    // Invalid UTF-8 becomes U+FFFD ("MUST be replaced with the replacement code point").
    ['%FF', '\uFFFD'],
    ['%C3', '\uFFFD'],
    ['a%C3(', 'a\uFFFD('],
    ['%C3%28', '\uFFFD('],
    ['%C0%AF', '\uFFFD\uFFFD'],
    ['%ED%A0%80', '\uFFFD\uFFFD\uFFFD'],
    ['%F0%9F%98', '\uFFFD'],
    // A "%" that starts no escape is a literal "%" (WHATWG URL percent-decode).
    ['100%', '100%'],
    ['%', '%'],
    ['%4', '%4'],
    ['%zz', '%zz'],
    ['%%41', '%A'],
    ['%G1', '%G1'],
    // A leading byte-order mark is data, not a signature.
    ['%EF%BB%BFx', '\uFEFFx'],
  ])('%s -> %j', (raw, decoded) => {
    expect(Baggage.parse(`k=${raw}`).getValue('k')).toBe(decoded)
  })
})

describe('Baggage.parse: limits (section 3.3.2)', () => {
  const members = (n: number, width = 1): string[] =>
    Array.from({ length: n }, (_, i) => `k${i}=${'v'.repeat(width)}`)

  it('keeps 64 members', () => {
    const header = members(64).join(',')
    const b = Baggage.parse(header)
    expect(b.size).toBe(64)
    expect(b.serialize()).toBe(header)
  })

  it('drops members after the 64th', () => {
    const b = Baggage.parse(members(100).join(','))
    expect(b.size).toBe(BAGGAGE_MAX_MEMBERS)
    expect(b.getValue('k63')).toBe('v')
    expect(b.getValue('k64')).toBeUndefined()
  })

  it('keeps 64 members of exactly 8192 bytes in total', () => {
    // 64 members of 127 bytes + 63 commas = 8191; one more byte in the last member = 8192.
    const list = Array.from({ length: 64 }, (_, i) => {
      const key = `k${String(i).padStart(2, '0')}`
      return `${key}=${'v'.repeat(127 - key.length - 1 + (i === 63 ? 1 : 0))}`
    })
    const header = list.join(',')
    expect(header.length).toBe(BAGGAGE_MAX_BYTES)
    const b = Baggage.parse(header)
    expect(b.size).toBe(64)
    expect(b.serialize()).toBe(header)
  })

  it('skips a member that would pass 8192 bytes and keeps later ones that fit', () => {
    const big = `big=${'x'.repeat(8000)}`
    const b = Baggage.parse(['a=1', big, `big2=${'x'.repeat(300)}`, 'c=3'])
    expect([...b.entries()].map(([k]) => k)).toEqual(['a', 'big', 'c'])
    expect(b.serialize().length).toBeLessThanOrEqual(BAGGAGE_MAX_BYTES)
  })

  it('drops a single member larger than 8192 bytes', () => {
    const b = Baggage.parse(`huge=${'x'.repeat(BAGGAGE_MAX_BYTES)},a=1`)
    expect([...b.entries()].map(([k]) => k)).toEqual(['a'])
  })

  it('measures the limit on what is sent (re-encoded), never a partial member', () => {
    // 2100 stray "%" each grow to "%25" when sent: 6302 bytes + "b=..." 2000 does not fit.
    const b = Baggage.parse(`a=${'%'.repeat(2100)},b=${'y'.repeat(2000)},c=1`)
    expect(b.getValue('a')).toBe('%'.repeat(2100))
    expect(b.getValue('b')).toBeUndefined()
    expect(b.getValue('c')).toBe('1')
    expect(b.serialize().length).toBeLessThanOrEqual(BAGGAGE_MAX_BYTES)
  })

  it('counts a repeated key once', () => {
    const header = [...members(64), 'k0=updated', 'k1=again'].join(',')
    const b = Baggage.parse(header)
    expect(b.size).toBe(64)
    expect(b.getValue('k0')).toBe('updated')
  })

  it('parses a 64 KiB header of thousands of members in linear time', () => {
    const header = Array.from({ length: 7000 }, (_, i) => `key${i}=value${i};p`).join(',').slice(0, 65536)
    const start = performance.now()
    const b = Baggage.parse(header)
    expect(performance.now() - start).toBeLessThan(200)
    expect(b.size).toBe(64)
  })

  it('parses pathological 64 KiB headers in linear time', () => {
    const start = performance.now()
    // No ";" or "=" until the very end: searches must stay inside each member.
    Baggage.parse('a,'.repeat(32767) + 'k=v;p')
    Baggage.parse('k=' + '%'.repeat(65534))
    Baggage.parse('k=v' + ';p'.repeat(32766))
    Baggage.parse('x'.repeat(65535) + '=')
    Baggage.parse(Array.from({ length: 8000 }, () => 'dup=1').join(','))
    Baggage.parse(Array.from({ length: 4000 }, () => 'a=1').concat(Array.from({ length: 4000 }, (_, i) => `z${i}=1`)))
    expect(performance.now() - start).toBeLessThan(200)
  })
})

describe('Baggage: set, delete, serialize', () => {
  it('starts from EMPTY and never mutates the receiver', () => {
    const a = Baggage.EMPTY.set('a', '1')
    const b = a.set('b', '2', 'ttl=60')
    expect(Baggage.EMPTY.size).toBe(0)
    expect(a.serialize()).toBe('a=1')
    expect(b.serialize()).toBe('a=1,b=2;ttl=60')
    expect(b.get('b')).toEqual({ value: '2', metadata: 'ttl=60' })
    expect(b.get('a')).toEqual({ value: '1' })
    expect('metadata' in b.get('a')!).toBe(false)
    expect(b.delete('a').serialize()).toBe('b=2;ttl=60')
    expect(b.delete('missing')).toBe(b)
  })

  it('keeps the position of an updated key (section 3.3.1.1)', () => {
    const b = Baggage.parse('a=1,b=2,c=3').set('b', 'x')
    expect(b.serialize()).toBe('a=1,b=x,c=3')
  })

  it.each([
    ['space', 'DF 28', 'DF%2028'],
    ['percent', '100%', '100%25'],
    ['comma, semicolon, DQUOTE, backslash', ',;"\\', '%2C%3B%22%5C'],
    ['non-ASCII', 'Amélie', 'Am%C3%A9lie'],
    ['emoji', '😀', '%F0%9F%98%80'],
    ['control characters', '\t\n\x00\x7f', '%09%0A%00%7F'],
    ['a lone surrogate (not encodable in UTF-8)', 'a\uD800b', 'a%EF%BF%BDb'],
    ['baggage-octets stay as they are', "!#$&'()*+-./09:<=>?@AZ[]^_`az{|}~", "!#$&'()*+-./09:<=>?@AZ[]^_`az{|}~"],
    ['empty', '', ''],
  ])('percent-encodes values as needed: %s', (_name, value, wire) => {
    const b = Baggage.EMPTY.set('k', value)
    expect(b.serialize()).toBe(`k=${wire}`)
    expect(b.getValue('k')).toBe(value)
  })

  it('normalizes metadata OWS and treats "" as none', () => {
    expect(Baggage.EMPTY.set('k', 'v', '  p1 ; p2=x \t').serialize()).toBe('k=v;p1 ; p2=x')
    expect(Baggage.EMPTY.set('k', 'v', '').get('k')).toEqual({ value: 'v' })
    expect(Baggage.EMPTY.set('k', 'v', ' ').serialize()).toBe('k=v')
  })

  it.each(['', 'a b', 'a,b', 'a;b', 'a=b', 'ké', '(a)', 'a@b', 'a"'])('rejects the key %j with ERR_INVALID_BAGGAGE', (key) => {
    expect(() => Baggage.EMPTY.set(key, 'v')).toThrow(TracingError)
    try {
      Baggage.EMPTY.set(key, 'v')
    } catch (err) {
      expect((err as TracingError).code).toBe(ERR_INVALID_BAGGAGE)
      expect((err as TracingError).message).toContain('key')
    }
  })

  it.each([';', 'p;', 'p;;q', 'p=a b', 'p q', '=v', 'p="x"', 'p=a,b'])('rejects the metadata %j', (metadata) => {
    try {
      Baggage.EMPTY.set('k', 'v', metadata)
      throw new Error('expected a TracingError')
    } catch (err) {
      expect(err).toBeInstanceOf(TracingError)
      expect((err as TracingError).code).toBe(ERR_INVALID_BAGGAGE)
    }
  })

  it('rejects a value that is not a string', () => {
    expect(() => Baggage.EMPTY.set('k', 42 as unknown as string)).toThrow(TracingError)
  })

  it('keeps the error message short for a huge key', () => {
    try {
      Baggage.EMPTY.set(' '.repeat(100_000), 'v')
    } catch (err) {
      expect((err as Error).message.length).toBeLessThan(200)
    }
  })

  it('sends at most 64 members: members added beyond the limit are left out', () => {
    let b = Baggage.EMPTY
    for (let i = 0; i < 70; i++) b = b.set(`k${i}`, 'v')
    expect(b.size).toBe(70)
    const sent = Baggage.parse(b.serialize())
    expect(sent.size).toBe(64)
    expect(sent.getValue('k63')).toBe('v')
    expect(sent.getValue('k64')).toBeUndefined()
  })

  it('sends at most 8192 bytes, whole members only', () => {
    const b = Baggage.EMPTY
      .set('a', 'x'.repeat(5000))
      .set('b', 'y'.repeat(5000))
      .set('c', 'z'.repeat(3000))
    const out = b.serialize()
    expect(out).toBe(`a=${'x'.repeat(5000)},c=${'z'.repeat(3000)}`)
    expect(out.length).toBeLessThanOrEqual(BAGGAGE_MAX_BYTES)
    // Non-ASCII values count with their encoded size.
    expect(Baggage.EMPTY.set('e', 'é'.repeat(1365)).serialize().length).toBe(2 + 1365 * 6)
    expect(Baggage.EMPTY.set('e', 'é'.repeat(1366)).serialize()).toBe('')
  })

  it('round-trips through the header', () => {
    const b = Baggage.EMPTY.set('user', 'Amélie D.', 'ttl=60;secret').set('n', '1,2;3')
    const again = Baggage.parse(b.serialize())
    expect(rows(again)).toEqual(rows(b))
    expect(String(again)).toBe(b.serialize())
  })
})

describe('Baggage: key and metadata predicates', () => {
  it.each([['a', true], ["!#$%&'*+-.^_`|~", true], ['', false], ['a b', false], ['a=b', false], ['é', false]])(
    'key %j -> %s', (key, ok) => {
      expect(isValidBaggageKey(key)).toBe(ok)
    })

  it.each([['p', true], ['p=v', true], ['p ; q = v', true], ['p=', true], ['', false], ['p;', false], [';p', false], ['p=a b', false]])(
    'metadata %j -> %s', (metadata, ok) => {
      expect(isValidBaggageMetadata(metadata)).toBe(ok)
    })
})

// A reference parser written from the grammar with regexes (fine in a test).
const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+"
const OCTETS = '[\\x21\\x23-\\x2b\\x2d-\\x3a\\x3c-\\x5b\\x5d-\\x7e]*'
const PROPERTY = `${TOKEN}(?:[ \\t]*=[ \\t]*${OCTETS})?`
const MEMBER_RE = new RegExp(`^(${TOKEN})[ \\t]*=[ \\t]*(${OCTETS})(?:[ \\t]*;[ \\t]*(${PROPERTY}(?:[ \\t]*;[ \\t]*${PROPERTY})*))?$`)

function referenceDecode(raw: string): string {
  const bytes: number[] = []
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === '%' && /^[0-9a-fA-F]{2}$/.test(raw.slice(i + 1, i + 3))) {
      bytes.push(parseInt(raw.slice(i + 1, i + 3), 16))
      i += 2
    } else {
      bytes.push(raw.charCodeAt(i))
    }
  }
  return Buffer.from(bytes).toString('utf8')
}

function referenceParse(header: string): Row[] {
  const out = new Map<string, BaggageEntry>()
  for (const raw of header.split(',')) {
    const member = raw.replace(/^[ \t]+|[ \t]+$/g, '')
    const m = MEMBER_RE.exec(member)
    if (m === null) continue
    const [, key, value, metadata] = m as unknown as [string, string, string, string | undefined]
    out.set(key, metadata === undefined ? { value: referenceDecode(value) } : { value: referenceDecode(value), metadata })
  }
  return [...out]
}

const tokenArb = fc.string({ unit: fc.constantFrom(...'abAZ09-_.!~%'), minLength: 1, maxLength: 5 })
const octetsArb = fc.oneof(
  { weight: 8, arbitrary: fc.string({ unit: fc.constantFrom(...'aZ09%=!~/:?@[]'), maxLength: 8 }) },
  { weight: 2, arbitrary: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 4 })
    .map((bytes) => bytes.map((b) => '%' + b.toString(16).padStart(2, '0')).join('')) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 6 }) },
)
const owsArb = fc.string({ unit: fc.constantFrom(' ', '\t'), maxLength: 2 })
const propertyArb = fc.oneof(
  tokenArb,
  fc.tuple(tokenArb, owsArb, octetsArb).map(([k, o, v]) => `${k}${o}=${o}${v}`),
  fc.constantFrom('', ' '),
)
const memberArb = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.tuple(owsArb, tokenArb, owsArb, octetsArb, fc.array(propertyArb, { maxLength: 3 }), owsArb)
      .map(([a, k, o, v, props, b]) => `${a}${k}${o}=${o}${v}${props.map((p) => `${o};${o}${p}`).join('')}${b}`),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
)
const headerArb = fc.array(memberArb, { maxLength: 10 }).map((m) => m.join(','))

describe('Baggage: properties', () => {
  it('never throws on arbitrary strings and arrays of strings', () => {
    const input = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.array(fc.oneof(fc.string(), headerArb), { maxLength: 4 }),
      fc.constant(undefined),
      fc.constant(null),
    )
    fc.assert(fc.property(input, (v) => {
      Baggage.parse(v)
    }), { numRuns: 2000 })
  })

  it('agrees with a reference implementation of the grammar', () => {
    let nonEmpty = 0
    fc.assert(fc.property(headerArb, (header) => {
      const parsed = rows(Baggage.parse(header))
      if (parsed.length > 0) nonEmpty++
      expect(parsed).toEqual(referenceParse(header))
    }), { numRuns: 4000 })
    expect(nonEmpty).toBeGreaterThan(1000)
  })

  it('serializes only valid, in-limit headers that parse back to the same entries', () => {
    fc.assert(fc.property(fc.oneof(headerArb, fc.string()), (header) => {
      const b = Baggage.parse(header)
      const out = b.serialize()
      expect(out.length).toBeLessThanOrEqual(BAGGAGE_MAX_BYTES)
      if (out !== '') {
        for (const member of out.split(',')) expect(member).toMatch(MEMBER_RE)
      }
      expect(rows(Baggage.parse(out))).toEqual(rows(b))
    }), { numRuns: 3000 })
  })

  it('round-trips any string value set through the header', () => {
    fc.assert(fc.property(tokenArb, fc.string({ unit: 'binary', maxLength: 20 }), (key, value) => {
      const b = Baggage.EMPTY.set(key, value)
      expect(Baggage.parse(b.serialize()).getValue(key)).toBe(value)
    }), { numRuns: 3000 })
  })
})
