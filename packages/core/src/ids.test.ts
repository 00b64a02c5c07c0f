import fc from 'fast-check'
import { generateSpanId, generateTraceId, hexOfWords, hexWords, idPool, idWordsOfHex, nonZeroIds, takeId } from './ids.ts'

describe('id pool', () => {
  it('makes every all-zero 8-byte word of a pool non-zero, changing only its last byte', () => {
    const pool = Buffer.alloc(64)
    pool.writeUInt32LE(5, 8) // word 1 is already non-zero: kept as it is
    pool[63] = 0x80 // so is word 7, by its last byte
    nonZeroIds(pool)
    for (let at = 0; at < 64; at += 8) expect(pool.subarray(at, at + 8).equals(Buffer.alloc(8))).toBe(false)
    const expected = Buffer.alloc(64)
    for (const at of [0, 16, 24, 32, 40, 48]) expected[at + 7] = 1
    expected.writeUInt32LE(5, 8)
    expected[63] = 0x80
    expect(pool).toEqual(expected)
  })

  it('tells an all-zero word from -0 as a double (its last byte 0x80)', () => {
    const pool = Buffer.alloc(16)
    pool[7] = 0x80
    nonZeroIds(pool)
    const expected = Buffer.alloc(16)
    expected[7] = 0x80
    expected[15] = 1
    expect(pool).toEqual(expected)
  })

  it('leaves random bytes as they are', () => {
    const pool = Buffer.alloc(4096)
    for (let i = 0; i < pool.length; i++) pool[i] = (i * 7919 + 13) & 0xff || 1
    const copy = Buffer.from(pool)
    nonZeroIds(pool)
    expect(pool.equals(copy)).toBe(true)
  })

  it('hands out ids at multiples of 8 bytes, across refills of the pool, none of them all zero', () => {
    const seen = new Set<string>()
    // A 64 KiB pool serves 2,730 trace + span id pairs: this crosses two.
    for (let i = 0; i < 6000; i++) {
      const traceAt = takeId(16)
      const traceId = idPool().toString('hex', traceAt, traceAt + 16)
      const spanAt = takeId(8)
      const spanId = idPool().toString('hex', spanAt, spanAt + 8)
      expect(traceAt % 8).toBe(0)
      expect(spanAt % 8).toBe(0)
      expect(traceId).not.toBe('0'.repeat(32))
      expect(spanId).not.toBe('0'.repeat(16))
      seen.add(traceId)
    }
    expect(seen.size).toBe(6000)
    expect(generateTraceId()).toMatch(/^[0-9a-f]{32}$/)
    expect(generateSpanId()).toMatch(/^[0-9a-f]{16}$/)
  })

  it('formats words as the hex of their bytes, low byte first, as Buffer#toString("hex") does', () => {
    const word = fc.integer({ min: -0x80000000, max: 0x7fffffff })
    fc.assert(fc.property(word, word, word, word, (w0, w1, w2, w3) => {
      const bytes = Buffer.alloc(16)
      bytes.writeInt32LE(w0, 0)
      bytes.writeInt32LE(w1, 4)
      bytes.writeInt32LE(w2, 8)
      bytes.writeInt32LE(w3, 12)
      expect(hexOfWords(16, w0, w1, w2, w3)).toBe(bytes.toString('hex'))
      expect(hexOfWords(8, w0, w1, w2, w3)).toBe(bytes.toString('hex', 0, 8))
    }), { numRuns: 2000 })
    // Every digit in every position.
    expect(hexOfWords(16, 0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476)).toBe('0123456789abcdeffedcba9876543210')
  })

  it('reads valid hex ids back into the words they are the hex of', () => {
    const word = fc.integer({ min: -0x80000000, max: 0x7fffffff })
    fc.assert(fc.property(word, word, word, word, word, word, (w0, w1, w2, w3, s0, s1) => {
      fc.pre((w0 | w1 | w2 | w3) !== 0 && (s0 | s1) !== 0)
      expect(idWordsOfHex(hexOfWords(16, w0, w1, w2, w3), hexOfWords(8, s0, s1, 0, 0))).toBe(true)
      expect(Array.from(hexWords)).toEqual([w0, w1, w2, w3, s0, s1])
    }), { numRuns: 2000 })
    expect(idWordsOfHex('0123456789abcdeffedcba9876543210', '00f067aa0ba902b7')).toBe(true)
    expect(Array.from(hexWords)).toEqual([0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476, 0xaa67f000 | 0, 0xb702a90b | 0])
    // A half of zeros is valid: only a whole id of zeros is not.
    expect(idWordsOfHex('0000000000000000000000000000000a', '000000000000000b')).toBe(true)
    expect(Array.from(hexWords)).toEqual([0, 0, 0, 0x0a000000, 0, 0x0b000000])
  })

  it('refuses ids that are not valid lower-case hex ids, leaving every word 0', () => {
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736'
    const span = '00f067aa0ba902b7'
    const invalid: Array<[unknown, unknown]> = [
      ['00000000000000000000000000000000', span], [trace, '0000000000000000'],
      [trace.toUpperCase(), span], [trace, span.replace('f', 'F')], [trace.slice(1), span], [trace + '0', span],
      [trace, span.slice(0, 15)], [trace, span + '1'], [trace.replace('4', 'g'), span], [trace, span.replace('0', '/')],
      [trace.replace('b', ':'), span], [trace.replace('b', '`'), span], [trace.replace('b', '\u0162'), span],
      [trace.replace('b', '\u0130'), span], [undefined, span], [trace, null], [42, span],
    ]
    for (const [t, s] of invalid) {
      hexWords.fill(7)
      expect(idWordsOfHex(t as string, s as string)).toBe(false)
      expect(Array.from(hexWords)).toEqual([0, 0, 0, 0, 0, 0])
    }
  })

  it('generates ids from the pool\'s bytes (on this little-endian machine, the same hex)', () => {
    const spanId = generateSpanId()
    const pool = idPool()
    // The bytes just taken are the 8 before the pool's next id, wherever that is: find them.
    let found = false
    for (let at = 0; at + 8 <= pool.length && !found; at += 8) found = pool.toString('hex', at, at + 8) === spanId
    expect(found).toBe(true)
    expect(generateTraceId()).toMatch(/^[0-9a-f]{32}$/)
  })
})

