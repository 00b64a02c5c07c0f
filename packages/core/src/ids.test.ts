import { generateSpanId, generateTraceId, idPool, nonZeroIds, takeId } from './ids.ts'

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
})
