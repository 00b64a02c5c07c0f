import fc from 'fast-check'
import { ERR_INVALID_TRACESTATE, TracingError } from '../errors.ts'
import {
  isValidTraceStateKey,
  isValidTraceStateValue,
  TRACESTATE_MAX_MEMBERS,
  TraceState,
} from './tracestate.ts'

// Row comments name the test of the official W3C suite (w3c/trace-context,
// test/test.py, STRICT_LEVEL=2) that sends the value. Several field lines
// are passed as an array, as Node's headersDistinct or a raw header list
// gives them; the joined-string form is tested separately.

const bar = (from: number, to: number): string => {
  const members: string[] = []
  for (let i = from; i <= to; i++) {
    const n = String(i).padStart(2, '0')
    members.push(`bar${n}=${n}`)
  }
  return members.join(',')
}

// Every character the grammar allows (test_tracestate_all_allowed_characters).
const KEY_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789_-*/'
const VALUE_CHARS = (() => {
  let s = ''
  for (let c = 0x20; c <= 0x7e; c++) if (c !== 0x2c && c !== 0x3d) s += String.fromCharCode(c)
  return s
})()

function entries(state: TraceState | undefined): Array<[string, string]> {
  if (state === undefined) return []
  return state.keys().map((k) => [k, state.get(k)!])
}

describe('TraceState.parse: kept', () => {
  const kept: Array<[string, string | readonly string[], Array<[string, string]>]> = [
    // test_tracestate_included_traceparent_included
    ['two members', 'foo=1,bar=2', [['foo', '1'], ['bar', '2']]],
    // test_tracestate_header_name_valid_casing (the value side)
    ['one member', 'foo=1', [['foo', '1']]],
    // test_tracestate_empty_header
    ['a member then an empty line', ['foo=1', ''], [['foo', '1']]],
    ['an empty line then a member', ['', 'foo=1'], [['foo', '1']]],
    // test_tracestate_multiple_headers_different_keys: combined in order
    ['three lines', ['foo=1,bar=2', 'rojo=1,congo=2', 'baz=3'],
      [['foo', '1'], ['bar', '2'], ['rojo', '1'], ['congo', '2'], ['baz', '3']]],
    // test_tracestate_duplicated_keys: the list is inherited; the first entry is kept
    ['duplicated key, same value', 'foo=1,foo=1', [['foo', '1']]],
    ['duplicated key, other value', 'foo=1,foo=2', [['foo', '1']]],
    ['duplicated key across lines, same value', ['foo=1', 'foo=1'], [['foo', '1']]],
    ['duplicated key across lines, other value', ['foo=1', 'foo=2'], [['foo', '1']]],
    // test_tracestate_all_allowed_characters
    ['every key and value character', `${KEY_CHARS}=${VALUE_CHARS}`, [[KEY_CHARS, VALUE_CHARS]]],
    ['every key character, with "@"', `${KEY_CHARS}@a-z0-9_-*/=${VALUE_CHARS}`, [[`${KEY_CHARS}@a-z0-9_-*/`, VALUE_CHARS]]],
    // test_tracestate_ows_handling
    ['OWS around commas', 'foo=1 \t , \t bar=2, \t baz=3', [['foo', '1'], ['bar', '2'], ['baz', '3']]],
    ['tabs and spaces around commas', 'foo=1\t \t,\t \tbar=2,\t \tbaz=3', [['foo', '1'], ['bar', '2'], ['baz', '3']]],
    ['leading space', ' foo=1', [['foo', '1']]],
    ['leading tab', '\tfoo=1', [['foo', '1']]],
    ['trailing space', 'foo=1 ', [['foo', '1']]],
    ['trailing tab', 'foo=1\t', [['foo', '1']]],
    ['tab and space both sides', '\t foo=1 \t', [['foo', '1']]],
    // test_tracestate_key_illegal_vendor_format: valid under the Level 2 key grammar
    // ("@" is a keychar) since w3c/trace-context#584; only "@foo" stays invalid.
    ['key ending in "@"', 'foo@=1,bar=2', [['foo@', '1'], ['bar', '2']]],
    ['key with "@@"', 'foo@@bar=1,bar=2', [['foo@@bar', '1'], ['bar', '2']]],
    ['key with two "@"', 'foo@bar@baz=1,bar=2', [['foo@bar@baz', '1'], ['bar', '2']]],
    // test_tracestate_member_count_limit
    ['32 members', [bar(1, 10), bar(11, 20), bar(21, 30), bar(31, 32)],
      Array.from({ length: 32 }, (_, i) => {
        const n = String(i + 1).padStart(2, '0')
        return [`bar${n}`, n] as [string, string]
      })],
    // test_tracestate_key_length_limit
    ['256-character key', ['foo=1', 'z'.repeat(256) + '=1'], [['foo', '1'], ['z'.repeat(256), '1']]],
    ['241 + "@" + 14 characters', ['foo=1', 't'.repeat(241) + '@' + 'v'.repeat(14) + '=1'],
      [['foo', '1'], ['t'.repeat(241) + '@' + 'v'.repeat(14), '1']]],
    ['242 + "@v" (Level 2: only the total length counts)', ['foo=1', 't'.repeat(242) + '@v=1'],
      [['foo', '1'], ['t'.repeat(242) + '@v', '1']]],
    ['"t@" + 15 characters (Level 2)', ['foo=1', 't@' + 'v'.repeat(15) + '=1'], [['foo', '1'], ['t@' + 'v'.repeat(15), '1']]],
    // Not in the suite.
    ['spec example', 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE', [['rojo', '00f067aa0ba902b7'], ['congo', 't61rcWkgMzE']]],
    ['key starting with a digit', '1abc=1', [['1abc', '1']]],
    ['key of one character', 'a=1', [['a', '1']]],
    ['256-character value', 'foo=' + 'x'.repeat(256), [['foo', 'x'.repeat(256)]]],
    ['value with leading spaces (kept)', 'foo=  a b', [['foo', '  a b']]],
    ['value of one character "!"', 'foo=!', [['foo', '!']]],
    ['empty members', ',,foo=1,, ,\t,bar=2,', [['foo', '1'], ['bar', '2']]],
    ['joined by Node with ", "', 'foo=1,bar=2, rojo=1', [['foo', '1'], ['bar', '2'], ['rojo', '1']]],
    ['a duplicate counts once in the result', 'a=1,b=2,a=3,c=4', [['a', '1'], ['b', '2'], ['c', '4']]],
  ]

  it.each(kept)('%s', (_name, value, expected) => {
    expect(entries(TraceState.parse(value))).toEqual(expected)
  })

  it('ignores empty members when counting: 32 members and trailing commas are kept', () => {
    const state = TraceState.parse(bar(1, 32) + ',,, ,')
    expect(state?.size).toBe(32)
  })
})

describe('TraceState.parse: discarded', () => {
  const discarded: Array<[string, string | readonly string[] | undefined | null]> = [
    // test_both_traceparent_and_tracestate_missing, test_tracestate_header_name (absent)
    ['absent (undefined)', undefined],
    ['absent (null)', null],
    // test_tracestate_empty_header
    ['empty', ''],
    ['empty line', ['']],
    ['only OWS and commas', ' , ,\t'],
    // test_tracestate_key_illegal_characters
    ['space in the key', 'foo =1'],
    ['upper-case key', 'FOO=1'],
    ['"." in the key', 'foo.bar=1'],
    // test_tracestate_key_illegal_vendor_format (b)
    ['key starting with "@"', '@foo=1,bar=2'],
    // test_tracestate_member_count_limit
    ['33 members', [bar(1, 10), bar(11, 20), bar(21, 30), bar(31, 33)]],
    // test_tracestate_key_length_limit
    ['257-character key', ['foo=1', 'z'.repeat(257) + '=1']],
    // test_tracestate_value_illegal_characters
    ['"=" in the value', 'foo=bar=baz'],
    ['empty value', 'foo=,bar=3'],
    // Not in the suite.
    ['258-character key with "@"', ['foo=1', 't'.repeat(256) + '@v=1']],
    ['257-character value', 'foo=' + 'x'.repeat(257)],
    ['tab inside the value', 'foo=a\tb'],
    ['DEL in the value', 'foo=a\x7fb'],
    ['control character in the value', 'foo=a\x1fb'],
    ['non-ASCII value', 'foo=é'],
    ['upper case later in the key', 'fOO=1'],
    ['key starting with "_"', '_foo=1'],
    ['key starting with "*"', '*foo=1'],
    ['empty key', '=1'],
    ['no "="', 'foo'],
    ['a valid member then one without "="', 'foo=1,bar'],
    ['value of spaces only', 'foo=   ,bar=1'],
    ['33 members with a duplicate', bar(1, 32) + ',bar01=01'],
    ['invalid member after 32 valid ones', bar(1, 32) + ',BAD=1'],
    ['non-breaking space around a member', '\u00a0foo=1'],
    ['CR LF around a member', 'foo=1\r\n'],
  ]

  it.each(discarded)('%s', (_name, value) => {
    expect(TraceState.parse(value)).toBeUndefined()
  })

  it('returns undefined for carrier garbage instead of throwing', () => {
    for (const junk of [42, {}, [42], [undefined], Symbol('x'), true]) {
      expect(TraceState.parse(junk as unknown as string)).toBeUndefined()
    }
    expect(entries(TraceState.parse([42, 'foo=1'] as unknown as string[]))).toEqual([['foo', '1']])
  })
})

describe('TraceState: mutation', () => {
  const state = TraceState.parse('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE')!

  it('adds a new key on the left (spec "Mutating the tracestate Field")', () => {
    expect(state.set('spanline', 'abc').serialize()).toBe('spanline=abc,rojo=00f067aa0ba902b7,congo=t61rcWkgMzE')
  })

  it('moves an updated key to the left', () => {
    expect(state.set('congo', 'ucfJifl5GOE').serialize()).toBe('congo=ucfJifl5GOE,rojo=00f067aa0ba902b7')
  })

  it('never mutates the receiver', () => {
    state.set('x', '1')
    state.delete('rojo')
    expect(state.serialize()).toBe('rojo=00f067aa0ba902b7,congo=t61rcWkgMzE')
  })

  it('deletes a key', () => {
    expect(state.delete('rojo').serialize()).toBe('congo=t61rcWkgMzE')
    expect(state.delete('missing')).toBe(state)
    expect(state.delete('rojo').delete('congo').size).toBe(0)
  })

  it('starts from EMPTY', () => {
    expect(TraceState.EMPTY.size).toBe(0)
    expect(TraceState.EMPTY.serialize()).toBe('')
    expect(TraceState.EMPTY.set('a', '1').serialize()).toBe('a=1')
  })

  it('drops the rightmost member when a new key would make 33', () => {
    const full = TraceState.parse(bar(1, 32))!
    const next = full.set('new', 'x')
    expect(next.size).toBe(TRACESTATE_MAX_MEMBERS)
    expect(next.keys()[0]).toBe('new')
    expect(next.get('bar32')).toBeUndefined()
    expect(next.get('bar31')).toBe('31')
    // Updating an existing key of a full list drops nothing.
    expect(full.set('bar32', 'y').size).toBe(32)
    expect(full.set('bar32', 'y').get('bar01')).toBe('01')
  })

  it.each([
    ['FOO', '1'], ['', '1'], ['@foo', '1'], ['foo bar', '1'], ['z'.repeat(257), '1'],
  ])('rejects the key %j with ERR_INVALID_TRACESTATE', (key, value) => {
    expect(() => state.set(key, value)).toThrow(TracingError)
    try {
      state.set(key, value)
    } catch (err) {
      expect((err as TracingError).code).toBe(ERR_INVALID_TRACESTATE)
      expect((err as TracingError).message).toContain('key')
    }
  })

  it.each([
    ['foo', ''], ['foo', 'a,b'], ['foo', 'a=b'], ['foo', 'ends with space '], ['foo', 'x'.repeat(257)], ['foo', 'é'], ['foo', 'a\tb'],
  ])('rejects the value %#', (key, value) => {
    try {
      state.set(key, value)
      throw new Error('expected a TracingError')
    } catch (err) {
      expect(err).toBeInstanceOf(TracingError)
      expect((err as TracingError).code).toBe(ERR_INVALID_TRACESTATE)
      expect((err as TracingError).message).toContain('value')
    }
  })

  it('keeps the error message short for a huge value', () => {
    try {
      state.set('foo', 'x'.repeat(100_000))
    } catch (err) {
      expect((err as Error).message.length).toBeLessThan(200)
    }
  })
})

describe('TraceState.serialize: truncation (spec "tracestate Limits")', () => {
  const long = (key: string, n: number): string => `${key}=${'v'.repeat(n - key.length - 1)}`

  it('returns the whole list when it fits in 512 characters', () => {
    const value = [long('a', 200), long('b', 200), long('c', 100)].join(',')
    expect(value.length).toBe(502)
    expect(TraceState.parse(value)!.serialize()).toBe(value)
  })

  it('drops members longer than 128 characters first, from the right', () => {
    // 5 members: 200, 100, 200, 100, 129 characters + 4 commas = 733.
    const members = [long('a', 200), long('b', 100), long('c', 200), long('d', 100), long('e', 129)]
    const out = TraceState.parse(members.join(','))!.serialize()
    // Dropping e (129) and c (200) leaves 200 + 100 + 100 + 2 = 402.
    expect(out).toBe([members[0], members[1], members[3]].join(','))
  })

  it('then drops members from the right', () => {
    const members = Array.from({ length: 8 }, (_, i) => long(`k${i}`, 100))
    const out = TraceState.parse(members.join(','))!.serialize()
    // 5 x 100 + 4 commas = 504 fits; 6 would be 605.
    expect(out).toBe(members.slice(0, 5).join(','))
  })

  it('accepts another limit and never cuts a member', () => {
    const state = TraceState.parse('a=1,b=2,c=3')!
    expect(state.serialize(11)).toBe('a=1,b=2,c=3')
    expect(state.serialize(10)).toBe('a=1,b=2')
    expect(state.serialize(7)).toBe('a=1,b=2')
    expect(state.serialize(6)).toBe('a=1')
    expect(state.serialize(3)).toBe('a=1')
    expect(state.serialize(2)).toBe('')
    expect(state.serialize(0)).toBe('')
    expect(state.serialize(Number.POSITIVE_INFINITY)).toBe('a=1,b=2,c=3')
  })

  it('drops only as many long members as needed, keeping short ones', () => {
    // 129 + 3 + 250 + 200 + 3 commas = 585: dropping d (the rightmost long one) is enough.
    const members = [long('a', 129), 'b=1', long('c', 250), long('d', 200)]
    expect(TraceState.parse(members.join(','))!.serialize()).toBe(members.slice(0, 3).join(','))
    // With a 300 limit c goes too; with 100, a (long ones first), leaving the short b.
    expect(TraceState.parse(members.join(','))!.serialize(300)).toBe(members[0] + ',b=1')
    expect(TraceState.parse(members.join(','))!.serialize(100)).toBe('b=1')
  })

  it('serializes OWS away (the caller SHOULD NOT generate OWS)', () => {
    expect(TraceState.parse(' a=1 ,\tb=2 ')!.serialize()).toBe('a=1,b=2')
    expect(String(TraceState.parse('a=1')!)).toBe('a=1')
  })
})

describe('TraceState: key and value predicates', () => {
  it.each([
    ['a', true], ['1', true], ['a@b', true], ['a@', true], ['z'.repeat(256), true], ['z'.repeat(257), false],
    ['@a', false], ['A', false], ['', false], ['a b', false], ['a.b', false], ['_a', false],
  ])('key %j -> %s', (key, ok) => {
    expect(isValidTraceStateKey(key)).toBe(ok)
  })

  it.each([
    ['1', true], [' a', true], ['a b', true], ['x'.repeat(256), true], ['x'.repeat(257), false],
    ['', false], ['a ', false], [' ', false], ['a,b', false], ['a=b', false], ['\t', false],
  ])('value %j -> %s', (value, ok) => {
    expect(isValidTraceStateValue(value)).toBe(ok)
  })
})

describe('TraceState.parse: linear time', () => {
  it('parses a 64 KiB header of thousands of members quickly (stops at member 33)', () => {
    const many = Array.from({ length: 6000 }, (_, i) => `k${i}=v${i}`).join(',').slice(0, 65536)
    const start = performance.now()
    expect(TraceState.parse(many)).toBeUndefined()
    expect(performance.now() - start).toBeLessThan(200)
  })

  it('parses 64 KiB of commas and OWS quickly', () => {
    const empty = ', \t'.repeat(21845)
    const start = performance.now()
    expect(TraceState.parse(empty)).toBeUndefined()
    const valid = bar(1, 32) + ','.repeat(65536 - bar(1, 32).length)
    expect(TraceState.parse(valid)?.size).toBe(32)
    expect(performance.now() - start).toBeLessThan(200)
  })

  it('rejects one 64 KiB member quickly', () => {
    const start = performance.now()
    expect(TraceState.parse('a'.repeat(65536))).toBeUndefined()
    expect(TraceState.parse('a=' + 'b'.repeat(65534))).toBeUndefined()
    expect(TraceState.parse(['a=1', 'b='.repeat(32768)])).toBeUndefined()
    expect(performance.now() - start).toBeLessThan(200)
  })
})

// A reference parser written from the spec text with regexes (fine in a test).
const KEY_RE = /^[a-z0-9][a-z0-9_\-*/@]{0,255}$/
const VALUE_RE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/
function referenceParse(header: string): Array<[string, string]> | undefined {
  const members = header.split(',').map((m) => m.replace(/^[ \t]+|[ \t]+$/g, '')).filter((m) => m !== '')
  if (members.length === 0 || members.length > 32) return undefined
  const out: Array<[string, string]> = []
  for (const m of members) {
    const eq = m.indexOf('=')
    if (eq === -1) return undefined
    const key = m.slice(0, eq)
    const value = m.slice(eq + 1)
    if (!KEY_RE.test(key) || !VALUE_RE.test(value)) return undefined
    if (!out.some(([k]) => k === key)) out.push([key, value])
  }
  return out
}

const keyArb = fc.oneof(
  {
    weight: 40,
    arbitrary: fc.tuple(fc.constantFrom(...'abz09'), fc.string({ unit: fc.constantFrom(...'abcz019_-*/@'), maxLength: 5 }))
      .map(([first, rest]) => first + rest),
  },
  { weight: 4, arbitrary: fc.string({ unit: fc.constantFrom(...'abcz019_-*/@'), minLength: 1, maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'aZ. @=\t'), maxLength: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom('z'.repeat(256), 'z'.repeat(257), 'a@' + 'b'.repeat(254)) },
)
const valueArb = fc.oneof(
  { weight: 40, arbitrary: fc.string({ unit: fc.constantFrom(...VALUE_CHARS), minLength: 1, maxLength: 8 }) },
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 8 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 4 }) },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(256), 'x'.repeat(257), ' x', 'x ') },
)
const owsArb = fc.string({ unit: fc.constantFrom(' ', '\t'), maxLength: 2 })
const memberArb = fc.oneof(
  { weight: 40, arbitrary: fc.tuple(owsArb, keyArb, valueArb, owsArb).map(([a, k, v, b]) => `${a}${k}=${v}${b}`) },
  { weight: 1, arbitrary: owsArb },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
)
const headerArb = fc.array(memberArb, { maxLength: 36 }).map((m) => m.join(','))

describe('TraceState: properties', () => {
  it('never throws on arbitrary strings and arrays of strings', () => {
    const input = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 60 }),
      fc.array(fc.oneof(fc.string(), headerArb), { maxLength: 4 }),
      fc.constant(undefined),
      fc.constant(null),
    )
    fc.assert(fc.property(input, (v) => {
      TraceState.parse(v)
    }), { numRuns: 2000 })
  })

  it('agrees with a reference implementation of the spec', () => {
    let accepted = 0
    fc.assert(fc.property(headerArb, (header) => {
      const parsed = TraceState.parse(header)
      if (parsed !== undefined) accepted++
      expect(entries(parsed)).toEqual(referenceParse(header) ?? [])
    }), { numRuns: 4000 })
    // The generator must produce valid lists often enough for this to mean something.
    expect(accepted).toBeGreaterThan(1000)
  })

  it('accepts only valid lists, and what it serializes parses back to the same list', () => {
    fc.assert(fc.property(fc.oneof(headerArb, fc.string()), (header) => {
      const state = TraceState.parse(header)
      if (state === undefined) return
      expect(state.size).toBeGreaterThan(0)
      expect(state.size).toBeLessThanOrEqual(32)
      for (const key of state.keys()) {
        expect(isValidTraceStateKey(key)).toBe(true)
        expect(isValidTraceStateValue(state.get(key)!)).toBe(true)
      }
      const out = state.serialize(Number.POSITIVE_INFINITY)
      expect(entries(TraceState.parse(out))).toEqual(entries(state))
      const truncated = state.serialize()
      expect(truncated.length).toBeLessThanOrEqual(512)
      if (truncated !== '') {
        // Whole members only: every member sent is one of the list's members.
        for (const [k, v] of entries(TraceState.parse(truncated))) expect(state.get(k)).toBe(v)
      }
    }), { numRuns: 3000 })
  })

  it('set() keeps the list valid, puts the key first and never exceeds 32 members', () => {
    const validKey = fc.string({ unit: fc.constantFrom(...'abc0_-*/@'), minLength: 1, maxLength: 5 })
      .filter((k) => isValidTraceStateKey(k))
    const validValue = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 6 }).filter((v) => isValidTraceStateValue(v))
    fc.assert(fc.property(fc.array(fc.tuple(validKey, validValue), { maxLength: 40 }), (ops) => {
      let state = TraceState.EMPTY
      for (const [k, v] of ops) {
        state = state.set(k, v)
        // Plain checks: expect() per operation would dominate the run time.
        if (state.keys()[0] !== k || state.get(k) !== v || state.size > 32) return false
      }
      const reparsed = TraceState.parse(state.serialize(Number.POSITIVE_INFINITY))
      expect(entries(reparsed)).toEqual(entries(state))
      return true
    }), { numRuns: 2000 })
  })
})
