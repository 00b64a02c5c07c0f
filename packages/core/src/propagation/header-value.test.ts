import fc from 'fast-check'
import {
  combineFieldValues,
  firstFieldValue,
  isLowerHexId,
  isOws,
  lowerHexDigit,
  singletonFieldValue,
  trimOws,
} from './header-value.ts'

describe('header-value helpers', () => {
  it('isOws is space and tab only (RFC 9110 section 5.6.3)', () => {
    expect([' ', '\t', '\n', '\r', '\u00a0', 'a'].map((c) => isOws(c.charCodeAt(0)))).toEqual([true, true, false, false, false, false])
  })

  it.each([
    ['', ''], ['a', 'a'], [' a ', 'a'], ['\t a b \t', 'a b'], [' \t ', ''], ['\na\n', '\na\n'],
  ])('trimOws(%j) = %j', (input, output) => {
    expect(trimOws(input)).toBe(output)
  })

  it('combineFieldValues joins lines in order with ","', () => {
    expect(combineFieldValues('a=1')).toBe('a=1')
    expect(combineFieldValues(['a=1', '', 'b=2'])).toBe('a=1,,b=2')
    expect(combineFieldValues([])).toBeUndefined()
    expect(combineFieldValues(undefined)).toBeUndefined()
    expect(combineFieldValues(null)).toBeUndefined()
    expect(combineFieldValues([1, 'a', undefined] as unknown as string[])).toBe('a')
  })

  it('singletonFieldValue accepts one line only', () => {
    expect(singletonFieldValue('x')).toBe('x')
    expect(singletonFieldValue(['x'])).toBe('x')
    expect(singletonFieldValue(['x', 'y'])).toBeUndefined()
    expect(singletonFieldValue([])).toBeUndefined()
    expect(singletonFieldValue([5] as unknown as string[])).toBeUndefined()
    expect(singletonFieldValue(undefined)).toBeUndefined()
  })

  it('firstFieldValue takes the first line, and the part before a comma', () => {
    expect(firstFieldValue('a, b')).toBe('a')
    expect(firstFieldValue(['a,b', 'c'])).toBe('a')
    expect(firstFieldValue(['', 'c'])).toBe('')
    expect(firstFieldValue([])).toBeUndefined()
    expect(firstFieldValue(null)).toBeUndefined()
  })

  it('isLowerHexId rejects upper case, non-hex and all zeros', () => {
    expect(isLowerHexId('x0a1x', 1, 3)).toBe(true)
    expect(isLowerHexId('000', 0, 3)).toBe(false)
    expect(isLowerHexId('0A0', 0, 3)).toBe(false)
    expect(isLowerHexId('0g0', 0, 3)).toBe(false)
  })

  it('lowerHexDigit', () => {
    expect([...'09afAFg/:`'].map((c) => lowerHexDigit(c.charCodeAt(0)))).toEqual([0, 9, 10, 15, -1, -1, -1, -1, -1, -1])
  })

  it('never throw', () => {
    const input = fc.oneof(fc.string(), fc.array(fc.anything(), { maxLength: 3 }), fc.constant(undefined), fc.constant(null))
    fc.assert(fc.property(input, (v) => {
      const value = v as string
      combineFieldValues(value)
      singletonFieldValue(value)
      firstFieldValue(value)
      if (typeof v === 'string') expect(trimOws(v)).toBe(v.replace(/^[ \t]+|[ \t]+$/g, ''))
    }), { numRuns: 2000 })
  })
})
