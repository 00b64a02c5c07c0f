import fc from 'fast-check'
import {
  formatTraceparent,
  isValidSpanId,
  isValidTraceId,
  parseTraceparent,
  TRACE_FLAG_RANDOM,
  TRACE_FLAG_SAMPLED,
  TRACEPARENT_LENGTH,
  type ParsedTraceparent,
} from './traceparent.ts'

// Row comments name the test of the official W3C suite (w3c/trace-context,
// test/test.py, STRICT_LEVEL=2, SPEC_LEVEL=2) that sends the value. The
// HTTP-level side of those tests (header names, several requests) is in
// trace-context-suite.test.ts.

const TRACE_ID = '12345678901234567890123456789012'
const SPAN_ID = '1234567890123456'
const V00 = `00-${TRACE_ID}-${SPAN_ID}-01`

describe('parseTraceparent: valid values', () => {
  const valid: Array<[string, string | readonly string[], ParsedTraceparent]> = [
    // test_traceparent_included_tracestate_missing, test_traceparent_header_name_valid_casing,
    // test_multiple_requests_with_valid_traceparent
    ['version 00, sampled', V00, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 }],
    // test_tracestate_included_traceparent_included (and every tracestate test)
    ['version 00, not sampled', `00-${TRACE_ID}-${SPAN_ID}-00`, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 0 }],
    // test_propagates_random_flag (TraceContext2Test)
    ['random flag', `00-${TRACE_ID}-${SPAN_ID}-02`, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: TRACE_FLAG_RANDOM }],
    ['sampled and random', `00-${TRACE_ID}-${SPAN_ID}-03`, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 3 }],
    // test_traceparent_ows_handling (all five values)
    ['leading space', ' ' + V00, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 }],
    ['leading tab', '\t' + V00, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 }],
    ['trailing space', V00 + ' ', { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 }],
    ['trailing tab', V00 + '\t', { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 }],
    ['tab and space both sides', '\t ' + V00 + ' \t', { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 }],
    // test_traceparent_version_0xcc
    ['future version cc, 55 characters', `cc-${TRACE_ID}-${SPAN_ID}-01`, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 }],
    ['future version cc with more fields', `cc-${TRACE_ID}-${SPAN_ID}-01-what-the-future-will-be-like`,
      { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 }],
    // Not in the suite.
    ['spec example', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 }],
    ['version 01', `01-${TRACE_ID}-${SPAN_ID}-01`, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 }],
    ['version fe (highest allowed)', `fe-${TRACE_ID}-${SPAN_ID}-00-x`, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 0 }],
    ['future version, lone trailing dash', `cc-${TRACE_ID}-${SPAN_ID}-01-`, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 }],
    ['unknown flag bits are zeroed (09)', `00-${TRACE_ID}-${SPAN_ID}-09`, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 }],
    ['unknown flag bits are zeroed (ff)', `00-${TRACE_ID}-${SPAN_ID}-ff`, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 3 }],
    ['unknown flag bits are zeroed (fc)', `00-${TRACE_ID}-${SPAN_ID}-fc`, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 0 }],
    ['future version flags are masked too', `cc-${TRACE_ID}-${SPAN_ID}-f6-x`, { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 2 }],
    ['trace id with only the last digit set', `00-${'0'.repeat(31)}1-${SPAN_ID}-01`,
      { traceId: '0'.repeat(31) + '1', spanId: SPAN_ID, traceFlags: 1 }],
    ['span id with only the first digit set', `00-${TRACE_ID}-f${'0'.repeat(15)}-01`,
      { traceId: TRACE_ID, spanId: 'f' + '0'.repeat(15), traceFlags: 1 }],
    ['one-element array (Node headersDistinct)', [V00], { traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 }],
  ]

  it.each(valid)('%s', (_name, value, expected) => {
    expect(parseTraceparent(value)).toEqual(expected)
  })

  it('returns ids that are slices of the header, not the whole header', () => {
    const parsed = parseTraceparent('  ' + V00)
    expect(parsed?.traceId).toHaveLength(32)
    expect(parsed?.spanId).toHaveLength(16)
  })
})

describe('parseTraceparent: invalid values', () => {
  const invalid: Array<[string, string | readonly string[] | undefined | null]> = [
    // test_both_traceparent_and_tracestate_missing, test_traceparent_header_name
    // (a wrongly named header is simply absent)
    ['absent (undefined)', undefined],
    ['absent (null)', null],
    // test_traceparent_duplicated: two field lines, as the carrier may give them
    ['two field lines (array)', [`00-${TRACE_ID.slice(0, 31)}1-${SPAN_ID}-01`, V00]],
    ['two field lines joined by Node (", ")', `00-12345678901234567890123456789011-${SPAN_ID}-01, ${V00}`],
    ['two field lines joined with ","', `00-12345678901234567890123456789011-${SPAN_ID}-01,${V00}`],
    ['the same line twice', [V00, V00]],
    ['two future-version lines joined by Node', `cc-${TRACE_ID}-${SPAN_ID}-01-x, cc-${TRACE_ID}-${SPAN_ID}-01`],
    // test_traceparent_version_0x00
    ['version 00 with a trailing "."', V00 + '.'],
    ['version 00 with extra fields', V00 + '-what-the-future-will-be-like'],
    // test_traceparent_version_0xcc
    ['future version, "." after the flags', `cc-${TRACE_ID}-${SPAN_ID}-01.what-the-future-will-be-like`],
    // test_traceparent_version_0xff
    ['version ff', `ff-${TRACE_ID}-${SPAN_ID}-01`],
    // test_traceparent_version_illegal_characters
    ['version ".0"', `.0-${TRACE_ID}-${SPAN_ID}-01`],
    ['version "0."', `0.-${TRACE_ID}-${SPAN_ID}-01`],
    // test_traceparent_version_too_long
    ['version 000', `000-${TRACE_ID}-${SPAN_ID}-01`],
    ['version 0000', `0000-${TRACE_ID}-${SPAN_ID}-01`],
    // test_traceparent_version_too_short
    ['version 0', `0-${TRACE_ID}-${SPAN_ID}-01`],
    // test_traceparent_trace_id_all_zero, test_multiple_requests_with_illegal_traceparent
    ['all-zero trace id', `00-${'0'.repeat(32)}-${SPAN_ID}-01`],
    // test_traceparent_trace_id_illegal_characters
    ['trace id starting with "."', `00-.2345678901234567890123456789012-${SPAN_ID}-01`],
    ['trace id ending with "."', `00-1234567890123456789012345678901.-${SPAN_ID}-01`],
    // test_traceparent_trace_id_too_long
    ['33-digit trace id', `00-123456789012345678901234567890123-${SPAN_ID}-01`],
    // test_traceparent_trace_id_too_short
    ['31-digit trace id', `00-1234567890123456789012345678901-${SPAN_ID}-01`],
    // test_traceparent_parent_id_all_zero
    ['all-zero parent id', `00-${TRACE_ID}-0000000000000000-01`],
    // test_traceparent_parent_id_illegal_characters
    ['parent id starting with "."', `00-${TRACE_ID}-.234567890123456-01`],
    ['parent id ending with "."', `00-${TRACE_ID}-123456789012345.-01`],
    // test_traceparent_parent_id_too_long
    ['17-digit parent id', `00-${TRACE_ID}-12345678901234567-01`],
    // test_traceparent_parent_id_too_short
    ['15-digit parent id', `00-${TRACE_ID}-123456789012345-01`],
    // test_traceparent_trace_flags_illegal_characters
    ['flags ".0"', `00-${TRACE_ID}-${SPAN_ID}-.0`],
    ['flags "0."', `00-${TRACE_ID}-${SPAN_ID}-0.`],
    // test_traceparent_trace_flags_too_long
    ['flags 001', `00-${TRACE_ID}-${SPAN_ID}-001`],
    // test_traceparent_trace_flags_too_short
    ['flags 1', `00-${TRACE_ID}-${SPAN_ID}-1`],
    // Not in the suite: upper case is not HEXDIGLC.
    ['upper-case trace id', '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01'],
    ['upper-case parent id', '00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01'],
    ['upper-case flags', `00-${TRACE_ID}-${SPAN_ID}-0A`],
    ['upper-case version', `CC-${TRACE_ID}-${SPAN_ID}-01`],
    ['upper case in a future version', `cc-${TRACE_ID.slice(0, 31)}A-${SPAN_ID}-01`],
    // Not in the suite: lengths, separators, zero ids in future versions.
    ['empty', ''],
    ['only whitespace', ' \t '],
    ['54 characters', V00.slice(0, 54)],
    ['future version shorter than 55', `cc-${TRACE_ID}-${SPAN_ID}-1`],
    ['version 00 with a lone trailing dash', V00 + '-'],
    ['"_" after the version', `00_${TRACE_ID}-${SPAN_ID}-01`],
    ['"_" after the trace id', `00-${TRACE_ID}_${SPAN_ID}-01`],
    ['"_" after the parent id', `00-${TRACE_ID}-${SPAN_ID}_01`],
    ['future version, "_" after the parent id', `cc-${TRACE_ID}-${SPAN_ID}_01-x`],
    ['future version, all-zero trace id', `cc-${'0'.repeat(32)}-${SPAN_ID}-01`],
    ['future version, all-zero parent id', `cc-${TRACE_ID}-${'0'.repeat(16)}-01-x`],
    ['future version ff with more fields', `ff-${TRACE_ID}-${SPAN_ID}-01-x`],
    ['non-hex "g" in the trace id', `00-${TRACE_ID.slice(0, 31)}g-${SPAN_ID}-01`],
    ['non-hex in the flags', `00-${TRACE_ID}-${SPAN_ID}-0g`],
    ['CR LF is not OWS', V00 + '\r\n'],
    ['leading LF is not OWS', '\n' + V00],
    ['NUL after the value', V00 + '\0'],
    ['non-breaking space is not OWS', '\u00a0' + V00],
    ['OWS inside the value', `00- ${TRACE_ID}-${SPAN_ID}-01`],
    ['empty array', []],
  ]

  it.each(invalid)('%s', (_name, value) => {
    expect(parseTraceparent(value)).toBeNull()
  })

  it('returns null for carrier garbage instead of throwing', () => {
    for (const junk of [42, {}, [42], [undefined], [null, V00], Symbol('x'), () => V00, true]) {
      expect(parseTraceparent(junk as unknown as string)).toBeNull()
    }
  })
})

describe('formatTraceparent', () => {
  it('writes version 00 with two lower-case flag digits', () => {
    expect(formatTraceparent(TRACE_ID, SPAN_ID, 0)).toBe(`00-${TRACE_ID}-${SPAN_ID}-00`)
    expect(formatTraceparent(TRACE_ID, SPAN_ID, TRACE_FLAG_SAMPLED)).toBe(`00-${TRACE_ID}-${SPAN_ID}-01`)
    expect(formatTraceparent(TRACE_ID, SPAN_ID, TRACE_FLAG_RANDOM)).toBe(`00-${TRACE_ID}-${SPAN_ID}-02`)
    expect(formatTraceparent(TRACE_ID, SPAN_ID, 3)).toBe(`00-${TRACE_ID}-${SPAN_ID}-03`)
  })

  it('zeroes unknown flags (spec "Other Flags": vendors MUST set those to zero)', () => {
    expect(formatTraceparent(TRACE_ID, SPAN_ID, 0xff)).toBe(`00-${TRACE_ID}-${SPAN_ID}-03`)
    expect(formatTraceparent(TRACE_ID, SPAN_ID, 0x05)).toBe(`00-${TRACE_ID}-${SPAN_ID}-01`)
    expect(formatTraceparent(TRACE_ID, SPAN_ID, 0x100)).toBe(`00-${TRACE_ID}-${SPAN_ID}-00`)
    expect(formatTraceparent(TRACE_ID, SPAN_ID, Number.NaN)).toBe(`00-${TRACE_ID}-${SPAN_ID}-00`)
  })

  it('round-trips every canonical version-00 value', () => {
    for (const flags of ['00', '01', '02', '03']) {
      const value = `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-${flags}`
      const parsed = parseTraceparent(value)!
      expect(formatTraceparent(parsed.traceId, parsed.spanId, parsed.traceFlags)).toBe(value)
    }
  })

  it('downgrades a future version to 00 and drops its extra fields (spec: "Downgrade the version")', () => {
    // test_traceparent_version_0xcc: the service answers with the same trace id, at version 00.
    const parsed = parseTraceparent(`cc-${TRACE_ID}-${SPAN_ID}-01-what-the-future-will-be-like`)!
    expect(formatTraceparent(parsed.traceId, parsed.spanId, parsed.traceFlags)).toBe(V00)
  })

  it('normalizes OWS and unknown flags on the way out', () => {
    const parsed = parseTraceparent(`\t00-${TRACE_ID}-${SPAN_ID}-ff `)!
    expect(formatTraceparent(parsed.traceId, parsed.spanId, parsed.traceFlags)).toBe(`00-${TRACE_ID}-${SPAN_ID}-03`)
  })
})

describe('isValidTraceId / isValidSpanId', () => {
  it.each([
    [TRACE_ID, true],
    ['4bf92f3577b34da6a3ce929d0e0e4736', true],
    ['0'.repeat(32), false],
    ['4BF92F3577B34DA6A3CE929D0E0E4736', false],
    [TRACE_ID + '0', false],
    [TRACE_ID.slice(1), false],
    ['', false],
  ])('trace id %j -> %s', (id, ok) => {
    expect(isValidTraceId(id)).toBe(ok)
  })

  it.each([
    [SPAN_ID, true],
    ['0'.repeat(16), false],
    ['00F067AA0BA902B7', false],
    [SPAN_ID + '0', false],
    ['', false],
  ])('span id %j -> %s', (id, ok) => {
    expect(isValidSpanId(id)).toBe(ok)
  })
})

// A second implementation written straight from the spec text (with a regex,
// which is fine in a test) that the parser must agree with on every input.
function referenceParse(value: string): ParsedTraceparent | null {
  const trimmed = value.replace(/^[ \t]+/, '').replace(/[ \t]+$/, '')
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})([\s\S]*)$/.exec(trimmed)
  if (m === null) return null
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string]
  if (version === 'ff') return null
  if (version === '00' && rest !== '') return null
  if (rest !== '' && (!rest.startsWith('-') || rest.includes(','))) return null
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return null
  return { traceId, spanId, traceFlags: parseInt(flags, 16) & 3 }
}

const hexLower = fc.constantFrom(...'0123456789abcdef')
// Mostly lower-case hex, sometimes a character that must be rejected.
const hexish = fc.oneof(
  { weight: 400, arbitrary: hexLower },
  { weight: 1, arbitrary: fc.constantFrom('A', 'F', 'g', '.', ' ', '-', '\t', ',', 'é') },
)
function field(length: number): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 30, arbitrary: fc.string({ unit: hexish, minLength: length, maxLength: length }) },
    { weight: 1, arbitrary: fc.string({ unit: hexish, minLength: Math.max(0, length - 1), maxLength: length + 1 }) },
    { weight: 1, arbitrary: fc.constant('0'.repeat(length)) },
  )
}
const sep = fc.oneof({ weight: 100, arbitrary: fc.constant('-') }, { weight: 1, arbitrary: fc.constantFrom('_', '', '--', '.') })
const ows = fc.oneof(
  { weight: 10, arbitrary: fc.string({ unit: fc.constantFrom(' ', '\t'), maxLength: 2 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(' ', '\t', '\n', '\r', '\u00a0'), maxLength: 2 }) },
)
const tail = fc.oneof(
  { weight: 8, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }).map((s) => '-' + s) },
)
const version = fc.oneof(
  { weight: 5, arbitrary: fc.constant('00') },
  { weight: 2, arbitrary: fc.constantFrom('cc', 'ff', '01', 'fe') },
  { weight: 1, arbitrary: field(2) },
)
const traceparentLike = fc
  .tuple(ows, version, sep, field(32), sep, field(16), sep, field(2), tail, ows)
  .map((parts) => parts.join(''))

describe('parseTraceparent: properties', () => {
  it('never throws on arbitrary strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (s) => {
      parseTraceparent(s)
    }), { numRuns: 2000 })
  })

  it('never throws on arbitrary arrays of strings, null or undefined', () => {
    const input = fc.oneof(
      fc.array(fc.oneof(fc.string(), traceparentLike), { maxLength: 3 }),
      fc.constant(undefined),
      fc.constant(null),
    )
    fc.assert(fc.property(input, (v) => {
      const parsed = parseTraceparent(v)
      if (Array.isArray(v) && v.length !== 1) expect(parsed).toBeNull()
    }), { numRuns: 2000 })
  })

  it('agrees with a reference implementation of the spec', () => {
    let accepted = 0
    fc.assert(fc.property(traceparentLike, (s) => {
      const parsed = parseTraceparent(s)
      if (parsed !== null) accepted++
      expect(parsed).toEqual(referenceParse(s))
    }), { numRuns: 5000 })
    // The generator must produce valid values often enough for this to mean something.
    expect(accepted).toBeGreaterThan(1500)
  })

  it('accepts only values that re-format to a valid 55-character value with the same result', () => {
    fc.assert(fc.property(fc.oneof(traceparentLike, fc.string({ maxLength: 70 })), (s) => {
      const parsed = parseTraceparent(s)
      if (parsed === null) return
      expect(isValidTraceId(parsed.traceId)).toBe(true)
      expect(isValidSpanId(parsed.spanId)).toBe(true)
      expect(parsed.traceFlags & ~3).toBe(0)
      const out = formatTraceparent(parsed.traceId, parsed.spanId, parsed.traceFlags)
      expect(out).toHaveLength(TRACEPARENT_LENGTH)
      expect(out.startsWith('00-')).toBe(true)
      expect(parseTraceparent(out)).toEqual(parsed)
    }), { numRuns: 5000 })
  })

  it('parses every formatted value back to the same ids and masked flags', () => {
    const id = (n: number) => fc.string({ unit: hexLower, minLength: n, maxLength: n }).filter((s) => /[^0]/.test(s))
    fc.assert(fc.property(id(32), id(16), fc.integer({ min: 0, max: 255 }), (traceId, spanId, flags) => {
      expect(parseTraceparent(formatTraceparent(traceId, spanId, flags))).toEqual({ traceId, spanId, traceFlags: flags & 3 })
    }), { numRuns: 2000 })
  })
})
