import { ProtoWriter } from './writer.ts'

// Known strings (keys, span names) are copied four bytes at a time, so up to
// three bytes past one are overwritten: each write below goes into a dirty
// buffer of every size, from too small (the writer grows it) to roomy,
// followed by one more field that must come out intact. (A file of its
// own: the known-string map is module-wide and bounded, and other tests
// fill it, so that the word copies would not be reached.)
const TRAILER = [0x50, 1]

function atEveryBufferSize(maxSize: number, write: (w: ProtoWriter) => void, expected: Buffer): void {
  const whole = Buffer.concat([expected, Buffer.from(TRAILER)])
  for (let size = 0; size <= maxSize; size++) {
    const w = new ProtoWriter()
    w.resetInto(Buffer.alloc(size, 0xee))
    write(w)
    for (const byte of TRAILER) w.uint32(byte)
    expect(w.finish().equals(whole)).toBe(true)
  }
}

function varint(n: number): number[] {
  const out: number[] = []
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return out
}

describe('ProtoWriter known strings', () => {
  it('copies known strings in whole words without writing past the buffer or over what follows', () => {
    const strings = ['a', 'ab', 'abc', 'abcd', 'abcde', 'é', '€', '😀', 'GET /users/:id', 'http.response.status_code']
    // The first round encodes and keeps each string; the others copy it.
    for (let round = 0; round < 3; round++) {
      for (const s of strings) {
        const utf8 = Buffer.from(s, 'utf8')
        for (let at = 0; at < 8; at++) {
          const write = (w: ProtoWriter): void => {
            for (let i = 0; i < at; i++) w.uint32(0x7f)
            w.string(0x0a, s, true)
          }
          atEveryBufferSize(at + 3 * s.length + 8, write, Buffer.concat([Buffer.alloc(at, 0x7f), Buffer.from([0x0a, utf8.length]), utf8]))
        }
      }
    }
  })

  it('writes a short KeyValue (its key a known string) right at every buffer size, key and value any length', () => {
    const keys = ['k', 'ke', 'key', 'key4', 'http.route', 'é€😀']
    const values = ['', 'v', 'value', 'ü😀']
    for (let round = 0; round < 2; round++) {
      for (const key of keys) {
        for (const value of values) {
          const k = Buffer.from(key)
          const v = Buffer.from(value)
          const expected = Buffer.concat([Buffer.from([0x4a, 6 + k.length + v.length, 0x0a, k.length]), k, Buffer.from([0x12, 2 + v.length, 0x0a, v.length]), v])
          atEveryBufferSize(8 + 3 * (key.length + value.length), (w) => w.stringKeyValue(0x4a, key, value), expected)
        }
      }
    }
  })

  it('writes an integer KeyValue right at every varint length and buffer size', () => {
    const keys = ['k', 'key4', 'network.peer.port', 'é€😀']
    const values = [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455, 268_435_456, 2 ** 31 - 1]
    for (let round = 0; round < 2; round++) {
      for (const key of keys) {
        for (const value of values) {
          const k = Buffer.from(key)
          const any = [0x18, ...varint(value)]
          const expected = Buffer.concat([Buffer.from([0x4a, 2 + k.length + 2 + any.length, 0x0a, k.length]), k, Buffer.from([0x12, any.length, ...any])])
          atEveryBufferSize(16 + 3 * key.length, (w) => w.uintKeyValue(0x4a, key, value), expected)
        }
      }
    }
  })
})
