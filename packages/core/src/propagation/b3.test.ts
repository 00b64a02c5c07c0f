import fc from 'fast-check'
import { formatB3Single, parseB3Multi, parseB3Single, type ParsedB3 } from './b3.ts'

// Cases follow https://github.com/openzipkin/b3-propagation (README).

const T128 = '80f198ee56343ba864fe8b2a57d3eff7'
const T64 = '64fe8b2a57d3eff7'
const SPAN = 'e457b5a2e4d86bd1'
const PARENT = '05e3ac9a4f6e3b90'

const ctx = (over: Partial<ParsedB3> = {}): ParsedB3 => ({
  traceId: T128,
  spanId: SPAN,
  sampled: undefined,
  debug: false,
  parentSpanId: undefined,
  ...over,
})

describe('parseB3Single', () => {
  const valid: Array<[string, string | readonly string[], ParsedB3]> = [
    ['ids only (sampling deferred)', `${T128}-${SPAN}`, ctx()],
    ['accept', `${T128}-${SPAN}-1`, ctx({ sampled: true })],
    ['deny', `${T128}-${SPAN}-0`, ctx({ sampled: false })],
    ['debug implies accept', `${T128}-${SPAN}-d`, ctx({ sampled: true, debug: true })],
    ['with a parent span id', `${T128}-${SPAN}-1-${PARENT}`, ctx({ sampled: true, parentSpanId: PARENT })],
    ['debug with a parent span id', `${T128}-${SPAN}-d-${PARENT}`, ctx({ sampled: true, debug: true, parentSpanId: PARENT })],
    ['64-bit trace id is left-padded to 32 digits', `${T64}-${SPAN}-1`, ctx({ traceId: '0000000000000000' + T64, sampled: true })],
    ['upper-case hex is returned lower-case', `${T128.toUpperCase()}-${SPAN.toUpperCase()}-1-${PARENT.toUpperCase()}`,
      ctx({ sampled: true, parentSpanId: PARENT })],
    ['128-bit trace id with a zero high half', `0000000000000000${T64}-${SPAN}`, ctx({ traceId: '0000000000000000' + T64 })],
    ['OWS around the value', ` \t${T128}-${SPAN}-1\t `, ctx({ sampled: true })],
    ['one-element array', [`${T128}-${SPAN}-0`], ctx({ sampled: false })],
    ['repeated lines: the first wins (Node ", " join)', `${T128}-${SPAN}-0, ${T64}-${PARENT}-1`, ctx({ sampled: false })],
    ['repeated lines: the first wins (array)', [`${T128}-${SPAN}-1`, `${T64}-${PARENT}-0`], ctx({ sampled: true })],
  ]

  it.each(valid)('%s', (_name, value, expected) => {
    expect(parseB3Single(value)).toEqual(expected)
  })

  const invalid: Array<[string, string | readonly string[] | undefined | null]> = [
    ['absent', undefined],
    ['null', null],
    ['empty', ''],
    ['empty array', []],
    // A sampling state alone carries no ids to continue.
    ['sampling only: deny', '0'],
    ['sampling only: accept', '1'],
    ['sampling only: debug', 'd'],
    ['trace id only', T128],
    ['trace id and a dash', `${T128}-`],
    ['all-zero 128-bit trace id', `${'0'.repeat(32)}-${SPAN}-1`],
    ['all-zero 64-bit trace id', `${'0'.repeat(16)}-${SPAN}-1`],
    ['all-zero span id', `${T128}-${'0'.repeat(16)}-1`],
    ['all-zero parent id', `${T128}-${SPAN}-1-${'0'.repeat(16)}`],
    ['trace id of 15 digits', `${T64.slice(1)}-${SPAN}`],
    ['trace id of 17 digits', `${T64}0-${SPAN}`],
    ['trace id of 31 digits', `${T128.slice(1)}-${SPAN}`],
    ['trace id of 33 digits', `${T128}0-${SPAN}`],
    ['span id of 15 digits', `${T128}-${SPAN.slice(1)}`],
    ['span id of 17 digits', `${T128}-${SPAN}0`],
    ['32-digit span id', `${T128}-${T128}`],
    ['non-hex in the trace id', `${T128.slice(0, 31)}g-${SPAN}`],
    ['non-hex in the span id', `${T128}-${SPAN.slice(0, 15)}x`],
    ['unknown sampling state', `${T128}-${SPAN}-2`],
    ['upper-case debug', `${T128}-${SPAN}-D`],
    ['"true" is not a single-header state', `${T128}-${SPAN}-true`],
    ['empty sampling state', `${T128}-${SPAN}--${PARENT}`],
    ['sampling state and a trailing dash', `${T128}-${SPAN}-1-`],
    ['parent id of 15 digits', `${T128}-${SPAN}-1-${PARENT.slice(1)}`],
    ['parent id of 17 digits', `${T128}-${SPAN}-1-${PARENT}0`],
    ['a fifth field', `${T128}-${SPAN}-1-${PARENT}-x`],
    ['parent id without a sampling state', `${T128}-${SPAN}-${PARENT}`],
    ['OWS inside', `${T128} -${SPAN}`],
    ['CR LF after', `${T128}-${SPAN}\r\n`],
  ]

  it.each(invalid)('%s is null', (_name, value) => {
    expect(parseB3Single(value)).toBeNull()
  })

  it('returns null for carrier garbage instead of throwing', () => {
    for (const junk of [42, {}, [42], [undefined], Symbol('x'), true]) {
      expect(parseB3Single(junk as unknown as string)).toBeNull()
    }
  })
})

describe('parseB3Multi', () => {
  const from = (headers: Record<string, string | readonly string[]>) => (name: string) => headers[name]

  const valid: Array<[string, Record<string, string | readonly string[]>, ParsedB3]> = [
    ['ids only', { 'x-b3-traceid': T128, 'x-b3-spanid': SPAN }, ctx()],
    ['accept', { 'x-b3-traceid': T128, 'x-b3-spanid': SPAN, 'x-b3-sampled': '1' }, ctx({ sampled: true })],
    ['deny', { 'x-b3-traceid': T128, 'x-b3-spanid': SPAN, 'x-b3-sampled': '0' }, ctx({ sampled: false })],
    ['legacy "true"', { 'x-b3-traceid': T128, 'x-b3-spanid': SPAN, 'x-b3-sampled': 'true' }, ctx({ sampled: true })],
    ['legacy "false"', { 'x-b3-traceid': T128, 'x-b3-spanid': SPAN, 'x-b3-sampled': 'false' }, ctx({ sampled: false })],
    ['unknown sampled value is deferred', { 'x-b3-traceid': T128, 'x-b3-spanid': SPAN, 'x-b3-sampled': 'yes' }, ctx()],
    ['debug flag implies sampled', { 'x-b3-traceid': T128, 'x-b3-spanid': SPAN, 'x-b3-flags': '1' },
      ctx({ sampled: true, debug: true })],
    ['debug wins over a deny', { 'x-b3-traceid': T128, 'x-b3-spanid': SPAN, 'x-b3-sampled': '0', 'x-b3-flags': '1' },
      ctx({ sampled: true, debug: true })],
    ['flags other than 1 are ignored', { 'x-b3-traceid': T128, 'x-b3-spanid': SPAN, 'x-b3-flags': '0' }, ctx()],
    ['parent span id', { 'x-b3-traceid': T128, 'x-b3-spanid': SPAN, 'x-b3-parentspanid': PARENT, 'x-b3-sampled': '1' },
      ctx({ sampled: true, parentSpanId: PARENT })],
    ['empty parent span id is absent', { 'x-b3-traceid': T128, 'x-b3-spanid': SPAN, 'x-b3-parentspanid': '' }, ctx()],
    ['64-bit trace id is padded', { 'x-b3-traceid': T64, 'x-b3-spanid': SPAN }, ctx({ traceId: '0000000000000000' + T64 })],
    ['upper case is lowered', { 'x-b3-traceid': T128.toUpperCase(), 'x-b3-spanid': SPAN.toUpperCase() }, ctx()],
    ['OWS is trimmed', { 'x-b3-traceid': ` ${T128}\t`, 'x-b3-spanid': `\t${SPAN} `, 'x-b3-sampled': ' 1 ' }, ctx({ sampled: true })],
    ['the first value wins (array)', { 'x-b3-traceid': [T128, T64], 'x-b3-spanid': [SPAN], 'x-b3-sampled': ['1', '0'] },
      ctx({ sampled: true })],
    ['the first value wins (Node ", " join)', { 'x-b3-traceid': `${T128}, ${T64}`, 'x-b3-spanid': SPAN, 'x-b3-sampled': '0, 1' },
      ctx({ sampled: false })],
  ]

  it.each(valid)('%s', (_name, headers, expected) => {
    expect(parseB3Multi(from(headers))).toEqual(expected)
  })

  const invalid: Array<[string, Record<string, string | readonly string[]>]> = [
    ['nothing', {}],
    ['no span id', { 'x-b3-traceid': T128 }],
    ['no trace id', { 'x-b3-spanid': SPAN }],
    ['sampled only', { 'x-b3-sampled': '0' }],
    ['all-zero trace id', { 'x-b3-traceid': '0'.repeat(32), 'x-b3-spanid': SPAN }],
    ['all-zero span id', { 'x-b3-traceid': T128, 'x-b3-spanid': '0'.repeat(16) }],
    ['bad trace id length', { 'x-b3-traceid': T128 + '0', 'x-b3-spanid': SPAN }],
    ['bad span id', { 'x-b3-traceid': T128, 'x-b3-spanid': 'xyz' }],
    ['bad parent span id', { 'x-b3-traceid': T128, 'x-b3-spanid': SPAN, 'x-b3-parentspanid': 'nope' }],
    ['all-zero parent span id', { 'x-b3-traceid': T128, 'x-b3-spanid': SPAN, 'x-b3-parentspanid': '0'.repeat(16) }],
    ['empty arrays', { 'x-b3-traceid': [], 'x-b3-spanid': [] }],
  ]

  it.each(invalid)('%s is null', (_name, headers) => {
    expect(parseB3Multi(from(headers))).toBeNull()
  })

  it('asks only for lower-case names', () => {
    const asked: string[] = []
    parseB3Multi((name) => {
      asked.push(name)
      return { 'x-b3-traceid': T128, 'x-b3-spanid': SPAN }[name]
    })
    expect(asked.every((n) => n === n.toLowerCase())).toBe(true)
    expect(asked).toEqual(expect.arrayContaining(['x-b3-traceid', 'x-b3-spanid', 'x-b3-sampled', 'x-b3-flags']))
  })
})

describe('formatB3Single', () => {
  it('writes {traceId}-{spanId}-{1|0}', () => {
    expect(formatB3Single(T128, SPAN, true)).toBe(`${T128}-${SPAN}-1`)
    expect(formatB3Single(T128, SPAN, false)).toBe(`${T128}-${SPAN}-0`)
  })

  it('round-trips', () => {
    expect(parseB3Single(formatB3Single(T128, SPAN, true))).toEqual(ctx({ sampled: true }))
    expect(parseB3Single(formatB3Single(T128, SPAN, false))).toEqual(ctx({ sampled: false }))
  })
})

const hexChar = fc.constantFrom(...'0123456789abcdefABCDEF')
const hexish = fc.oneof({ weight: 60, arbitrary: hexChar }, { weight: 1, arbitrary: fc.constantFrom('g', '-', ' ', '.') })
const idArb = (n: number) => fc.oneof(
  { weight: 10, arbitrary: fc.string({ unit: hexish, minLength: n, maxLength: n }) },
  { weight: 1, arbitrary: fc.string({ unit: hexish, minLength: n - 1, maxLength: n + 1 }) },
  { weight: 1, arbitrary: fc.constant('0'.repeat(n)) },
)
const b3Like = fc.tuple(
  fc.oneof(idArb(32), idArb(16)),
  idArb(16),
  fc.option(fc.constantFrom('0', '1', 'd', 'D', '2', '')),
  fc.option(idArb(16)),
).map(([t, s, state, parent]) => [t, s, ...(state === null ? [] : [state]), ...(parent === null ? [] : [parent])].join('-'))

// The single-header grammar written as a regex (fine in a test).
const SINGLE_RE = /^([0-9a-fA-F]{32}|[0-9a-fA-F]{16})-([0-9a-fA-F]{16})(?:-([01d])(?:-([0-9a-fA-F]{16}))?)?$/

describe('B3: properties', () => {
  it('never throws on arbitrary strings and arrays of strings', () => {
    const input = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 70 }),
      fc.array(fc.oneof(fc.string(), b3Like), { maxLength: 3 }),
      fc.constant(undefined),
      fc.constant(null),
    )
    fc.assert(fc.property(input, (v) => {
      parseB3Single(v)
      parseB3Multi(() => v)
    }), { numRuns: 2000 })
  })

  it('accepts exactly the single-header grammar, with non-zero ids, and returns lower-case ids', () => {
    let accepted = 0
    fc.assert(fc.property(b3Like, (s) => {
      const parsed = parseB3Single(s)
      // Spaces and tabs around the whole value are OWS.
      const m = SINGLE_RE.exec(s.replace(/^[ \t]+|[ \t]+$/g, ''))
      const zero = (x: string | undefined) => x !== undefined && /^0+$/.test(x)
      const expectValid = m !== null && !zero(m[1]) && !zero(m[2]) && !zero(m[4])
      expect(parsed !== null).toBe(expectValid)
      if (parsed === null || m === null) return
      accepted++
      expect(parsed.traceId).toMatch(/^[0-9a-f]{32}$/)
      expect(parsed.traceId.endsWith(m[1]!.toLowerCase())).toBe(true)
      expect(parsed.spanId).toBe(m[2]!.toLowerCase())
      expect(parsed.sampled).toBe(m[3] === undefined ? undefined : m[3] !== '0')
      expect(parsed.debug).toBe(m[3] === 'd')
      expect(parsed.parentSpanId).toBe(m[4]?.toLowerCase())
      // Re-formatting gives a value that parses to the same ids.
      if (parsed.sampled !== undefined) {
        const again = parseB3Single(formatB3Single(parsed.traceId, parsed.spanId, parsed.sampled))
        expect(again).toEqual({ ...parsed, debug: false, parentSpanId: undefined })
      }
    }), { numRuns: 4000 })
    expect(accepted).toBeGreaterThan(250)
  })

  it('multi-header extraction agrees with single-header extraction', () => {
    fc.assert(fc.property(idArb(32), idArb(16), fc.constantFrom('0', '1'), (t, s, state) => {
      // Each X-B3 header is trimmed of OWS on its own; the single header only at its ends.
      const trim = (x: string) => x.replace(/^[ \t]+|[ \t]+$/g, '')
      const single = parseB3Single(`${trim(t)}-${trim(s)}-${state}`)
      const multi = parseB3Multi((name) => ({ 'x-b3-traceid': t, 'x-b3-spanid': s, 'x-b3-sampled': state } as Record<string, string>)[name])
      expect(multi).toEqual(single)
    }), { numRuns: 2000 })
  })
})
