/**
 * A minimal protobuf writer (https://protobuf.dev/programming-guides/encoding/)
 * for the OTLP span encoder: one growable buffer, written once, front to back.
 *
 * A length-delimited field needs its length before its body. Instead of
 * sizing every message in a first pass (walking all attributes twice) or
 * collecting ops and sub-buffers as protobufjs does, fork() reserves the
 * number of length bytes the caller expects and ldelim() writes the real
 * length there once the body is written; in the rare case the varint needs a
 * different number of bytes, the body is moved (one memmove).
 */

const MIN_SIZE = 256
const EMPTY = Buffer.allocUnsafe(0)
const EMPTY_VIEW: DataView = new DataView(new ArrayBuffer(0))
const TWO_32 = 4294967296

/**
 * A DataView of `buf`'s bytes, to move them four at a time: a 32-bit load
 * and store cost about what a byte's do, so a known string costs a
 * quarter of the bounds-checked byte moves. (Little-endian both ways: the
 * bytes keep their order on any machine.)
 */
function viewOf(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
}

/**
 * The value of a hex digit's char code, by arithmetic rather than a table:
 * '0'-'9' (0x30-0x39) keep their low nibble, 'a'-'f' and 'A'-'F' (0x41-0x46,
 * 0x61-0x66) have bit 6 set and add 9 to theirs. Ids are validated upstream;
 * other characters give garbage, never an exception.
 */
function hexValue(c: number): number {
  return ((c & 0xf) + (c >> 6) * 9) & 0xf
}

/** Bytes of the varint encoding of `n` (an unsigned 32-bit value). */
function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5
}

/**
 * Strings up to this many UTF-16 units take at most 127 UTF-8 bytes (3 per
 * unit; a surrogate pair is 2 units for 4 bytes), so a one-byte length can be
 * reserved without measuring them first. They are encoded in JS: a native
 * call costs about as much as encoding some 30 characters here.
 */
export const SHORT_STRING = 42
/**
 * Buffer's undocumented but long-standing (and used by protobufjs) direct
 * UTF-8 write, returning the bytes written: buf.write() adds argument
 * normalisation that costs as much as encoding a short string.
 */
interface NativeUtf8 {
  utf8Write(s: string, offset: number, maxLength: number): number
}

export class ProtoWriter {
  #buf: Buffer = EMPTY
  /** #buf's bytes, for 32-bit moves (see viewOf). */
  #view: DataView = EMPTY_VIEW
  #pos: number = 0
  /**
   * Counts the times bytes already written were dropped or moved (reset,
   * rewind, shift, finish, a body slid by ldelim): an offset taken in one
   * generation still points at the same bytes while the generation is
   * unchanged (growing keeps offsets).
   */
  #generation: number = 0

  /**
   * Starts a new message in a fresh buffer of `expectedSize` bytes (it grows
   * if needed). finish() hands that buffer out without a copy, so it cannot be
   * reused: copying a large batch out of a reused buffer measured slower than
   * writing it into fresh memory once.
   */
  reset(expectedSize: number): void {
    this.#generation++
    this.#setBuffer(Buffer.allocUnsafe(expectedSize))
    this.#pos = 0
  }

  #setBuffer(buf: Buffer): void {
    this.#buf = buf
    this.#view = buf.length === 0 ? EMPTY_VIEW : viewOf(buf)
  }

  /**
   * Starts a new message in `buffer`, a buffer an earlier finish() handed out
   * whose bytes nobody reads any more (see ProtobufSpanQueue#recycle).
   */
  resetInto(buffer: Buffer): void {
    this.#generation++
    this.#setBuffer(buffer)
    this.#pos = 0
  }

  /** The whole buffer being written (finish() hands out a view of its start). */
  get buffer(): Buffer {
    return this.#buf
  }

  /** The bytes written since reset(), as a view of the writer's buffer. */
  finish(): Buffer {
    this.#generation++
    const out = this.#buf.subarray(0, this.#pos)
    this.#setBuffer(EMPTY)
    return out
  }

  /**
   * Makes room for `n` more bytes and returns the buffer, for a caller that
   * writes several fields itself from `position` (one bounds check instead of
   * one per field), then calls commit() with where it stopped.
   */
  reserve(n: number): Buffer {
    this.#ensure(n)
    return this.#buf
  }

  /** reserve()'s buffer as a DataView, for putSpanId(), putTraceId(), putFixed64() and writeKnownUtf8(). */
  get dataView(): DataView {
    return this.#view
  }

  /** Moves the position to `pos`, the end of bytes written into reserve()'s buffer. */
  commit(pos: number): void {
    this.#pos = pos
  }

  /** See #generation. */
  get generation(): number {
    return this.#generation
  }

  /**
   * Appends a copy of bytes written earlier, `from` to `to` (offsets of the
   * current generation): natively, without a view object per copy.
   */
  repeat(from: number, to: number): void {
    const n = to - from
    this.#ensure(n)
    this.#buf.copyWithin(this.#pos, from, to)
    this.#pos += n
  }

  /** Makes room for `n` more bytes. */
  #ensure(n: number): void {
    if (this.#pos + n > this.#buf.length) this.#grow(n)
  }

  #grow(n: number): void {
    const bigger = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#pos + n, MIN_SIZE))
    this.#buf.copy(bigger, 0, 0, this.#pos)
    this.#setBuffer(bigger)
  }

  /** A varint of an unsigned 32-bit value; also writes tags. */
  uint32(v: number): void {
    this.#ensure(5)
    const buf = this.#buf
    let pos = this.#pos
    while (v > 0x7f) {
      buf[pos++] = (v & 0x7f) | 0x80
      v >>>= 7
    }
    buf[pos++] = v
    this.#pos = pos
  }

  /**
   * An int64 varint of a safe integer. Negative values take ten bytes, the
   * two's complement sign-extended (int64, not zigzag sint64).
   */
  int64(v: number): void {
    if (v >= 0 && v < TWO_32) {
      this.uint32(v)
      return
    }
    // Both halves are exact: v is an integer below 2^53 in magnitude.
    const hi = Math.floor(v / TWO_32)
    this.varint64(v - hi * TWO_32, hi >>> 0)
  }

  /** A varint of the 64-bit value hi * 2^32 + lo (both unsigned 32-bit). */
  varint64(lo: number, hi: number): void {
    this.#ensure(10)
    const buf = this.#buf
    let pos = this.#pos
    while (hi !== 0) {
      buf[pos++] = (lo & 0x7f) | 0x80
      lo = ((lo >>> 7) | (hi << 25)) >>> 0
      hi >>>= 7
    }
    while (lo > 0x7f) {
      buf[pos++] = (lo & 0x7f) | 0x80
      lo >>>= 7
    }
    buf[pos++] = lo
    this.#pos = pos
  }

  fixed32(v: number): void {
    this.#ensure(4)
    const buf = this.#buf
    const pos = this.#pos
    buf[pos] = v
    buf[pos + 1] = v >>> 8
    buf[pos + 2] = v >>> 16
    buf[pos + 3] = v >>> 24
    this.#pos = pos + 4
  }

  /** A fixed64 given as its two unsigned 32-bit halves. */
  fixed64(lo: number, hi: number): void {
    this.#ensure(8)
    this.#pos = putFixed64(this.#view, this.#pos, lo, hi)
  }

  /** An IEEE 754 double, little-endian; NaN, ±Infinity and -0 included. */
  double(v: number): void {
    this.#ensure(8)
    this.#pos = this.#buf.writeDoubleLE(v, this.#pos)
  }

  /**
   * A length-delimited UTF-8 string field (lone surrogates become U+FFFD, as
   * with Buffer). `tag` is a one-byte tag (field number 1 to 15), as are all
   * the tags given to string(), hexBytes() and fork(). `known`: a string
   * likely to be written again (an attribute key), see writeKnownUtf8().
   */
  string(tag: number, s: string, known: boolean = false): void {
    const length = s.length
    if (length <= SHORT_STRING) {
      // (3 more than the string may take: writeKnownUtf8 writes whole words.)
      this.#ensure(5 + 3 * length)
      const buf = this.#buf
      const start = this.#pos
      buf[start] = tag
      const end = known ? writeKnownUtf8(buf, this.#view, s, start + 2) : writeUtf8(buf, s, start + 2)
      buf[start + 1] = end - start - 2
      this.#pos = end
      return
    }
    // Longer strings: Node's native encoder, without measuring them first.
    // The length is reserved for ASCII (one byte per unit); text whose
    // multi-byte characters need a longer varint is moved by ldelim().
    const reserve = varintSize(length)
    this.#ensure(6 + 3 * length)
    const buf = this.#buf
    buf[this.#pos] = tag
    const start = this.#pos + 1 + reserve
    this.#pos = start + (buf as unknown as NativeUtf8).utf8Write(s, start, 3 * length)
    this.ldelim(start, reserve)
  }

  /**
   * A length-delimited bytes field from an id's hex string, decoded straight
   * into the buffer (no Buffer per id). Ids are short: a one-byte length.
   */
  hexBytes(tag: number, hex: string): void {
    const n = (hex.length >>> 1) & 0x7f
    this.#ensure(2 + n)
    const buf = this.#buf
    let pos = this.#pos
    buf[pos++] = tag
    buf[pos++] = n
    for (let i = 0; i < n; i++) {
      buf[pos++] = (hexValue(hex.charCodeAt(2 * i)) << 4) | hexValue(hex.charCodeAt(2 * i + 1))
    }
    this.#pos = pos
  }

  /** The size of the buffer being written. */
  get capacity(): number {
    return this.#buf.length
  }

  /** Bytes written so far since reset(). */
  get position(): number {
    return this.#pos
  }

  /**
   * Forgets what was written from `pos` on (a span whose encoding failed
   * halfway, or an emptied queue): the buffer is kept for what comes next.
   */
  rewind(pos: number): void {
    this.#generation++
    this.#pos = pos
  }

  /** Drops the first `n` bytes written, moving the rest to the front (a queue handing out its oldest entries). */
  shift(n: number): void {
    this.#generation++
    this.#buf.copyWithin(0, n, this.#pos)
    this.#pos -= n
  }

  /** A view (not a copy) of the bytes from `start` to `end`; valid until the next write. */
  view(start: number, end: number): Buffer {
    return this.#buf.subarray(start, end)
  }

  /** Bytes encoded earlier, copied as they are (natively: for more than a few bytes, faster than a loop here). */
  raw(src: Uint8Array): void {
    const n = src.length
    this.#ensure(n)
    this.#buf.set(src, this.#pos)
    this.#pos += n
  }

  /**
   * A KeyValue whose value is a short string, the most common attribute:
   * `tag` {1: key, 2: AnyValue {1: value}}, written in one go with one bounds
   * check. Both strings must be at most SHORT_STRING units; the caller checks.
   */
  stringKeyValue(tag: number, key: string, value: string): void {
    this.#ensure(8 + 3 * (key.length + value.length))
    const buf = this.#buf
    const start = this.#pos
    // Lengths: 1 byte each for key and string (<= 126 bytes), the AnyValue
    // (<= 128) and the KeyValue (<= 258) may need 2: reserve 1, fix below.
    const keyEnd = this.#keyValueKey(buf, start, tag, key)
    buf[keyEnd] = 0x12
    buf[keyEnd + 2] = 0x0a
    const end = writeUtf8(buf, value, keyEnd + 4)
    buf[keyEnd + 3] = end - keyEnd - 4
    this.#pos = end
    this.ldelim(keyEnd + 2, 1)
    this.ldelim(start + 2, 1)
  }

  /**
   * A KeyValue whose value is an integer from 0 to 2^31 - 1 (a port, a
   * status code): `tag` {1: key, 2: AnyValue {3: value}}, in one go, as
   * stringKeyValue() does for strings. The key must be at most SHORT_STRING
   * units; the caller checks the value.
   */
  uintKeyValue(tag: number, key: string, value: number): void {
    // tag, length, key's tag and length, its bytes (+3: see writeKnownUtf8), AnyValue's tag, length and int tag, a 5-byte varint
    this.#ensure(16 + 3 * key.length)
    const buf = this.#buf
    const start = this.#pos
    const keyEnd = this.#keyValueKey(buf, start, tag, key)
    buf[keyEnd] = 0x12
    buf[keyEnd + 2] = 0x18
    let p = keyEnd + 3
    let v = value
    while (v > 0x7f) {
      buf[p++] = (v & 0x7f) | 0x80
      v >>>= 7
    }
    buf[p++] = v
    buf[keyEnd + 1] = p - keyEnd - 2
    this.#pos = p
    // The KeyValue passes 127 bytes only with a key of more than 116 bytes.
    this.ldelim(start + 2, 1)
  }

  /**
   * The head of a short KeyValue at `start`: `tag`, a byte left for its
   * length (ldelim(start + 2, 1) fills it), and the key field, the key a
   * known string. Returns where the key ends. The caller has ensured room
   * for 3 bytes per key unit and 3 more (writeKnownUtf8 writes whole words).
   */
  #keyValueKey(buf: Buffer, start: number, tag: number, key: string): number {
    buf[start] = tag
    buf[start + 2] = 0x0a
    const keyEnd = writeKnownUtf8(buf, this.#view, key, start + 4)
    buf[start + 3] = keyEnd - start - 4
    return keyEnd
  }

  /** A length-delimited bytes field of a span id kept as two 32-bit words (see putSpanId). */
  spanId(tag: number, w0: number, w1: number): void {
    this.#ensure(10)
    this.#pos = putSpanId(this.#buf, this.#view, this.#pos, tag, w0, w1)
  }

  /**
   * Starts a length-delimited field: writes the tag and reserves `reserve`
   * bytes for the length (the varint size the caller expects). Returns where
   * the body starts, for ldelim().
   */
  fork(tag: number, reserve: number): number {
    this.#ensure(1 + reserve)
    this.#buf[this.#pos] = tag
    this.#pos += 1 + reserve
    return this.#pos
  }

  /**
   * Ends the field that fork() started at `start` with the same `reserve`.
   * Returns where its body now starts (moved if the length needed a
   * different number of bytes).
   */
  ldelim(start: number, reserve: number): number {
    const length = this.#pos - start
    const size = varintSize(length)
    if (size !== reserve) {
      // The guess was off: slide the body so the length fits exactly.
      this.#generation++
      this.#ensure(size - reserve)
      this.#buf.copyWithin(start - reserve + size, start, this.#pos)
      this.#pos += size - reserve
    }
    const buf = this.#buf
    let pos = start - reserve
    let v = length
    while (v > 0x7f) {
      buf[pos++] = (v & 0x7f) | 0x80
      v >>>= 7
    }
    buf[pos] = v
    return pos + 1
  }
}

/**
 * A fixed64 from its unsigned 32-bit halves at `p`, little-endian; returns
 * the end. For callers writing several fields after one reserve().
 */
export function putFixed64(view: DataView, p: number, lo: number, hi: number): number {
  view.setUint32(p, lo, true)
  view.setUint32(p + 4, hi, true)
  return p + 8
}

/**
 * A bytes field (tag, length 8, the id) at `p` of a span id kept as two
 * 32-bit words (see ids.ts's idWords), written little-endian as hexOfWords()
 * writes them, so the wire and the hex agree; returns the end. Two stores,
 * where a native copy of 8 bytes costs more than its call.
 */
export function putSpanId(buf: Buffer, view: DataView, p: number, tag: number, w0: number, w1: number): number {
  buf[p] = tag
  buf[p + 1] = 8
  view.setInt32(p + 2, w0, true)
  view.setInt32(p + 6, w1, true)
  return p + 10
}

/** putSpanId() for a trace id: 16 bytes from four words. */
export function putTraceId(buf: Buffer, view: DataView, p: number, tag: number, w0: number, w1: number, w2: number, w3: number): number {
  buf[p] = tag
  buf[p + 1] = 16
  view.setInt32(p + 2, w0, true)
  view.setInt32(p + 6, w1, true)
  view.setInt32(p + 10, w2, true)
  view.setInt32(p + 14, w3, true)
  return p + 18
}

/**
 * The UTF-8 of strings written again and again: attribute keys and span
 * names (a service has a few dozen of each). Copying the bytes back costs a
 * fraction of encoding the string again (a charCodeAt and a range check per
 * unit); the lookup hashes the string once in its life (V8 keeps the hash
 * in it), and keys are constants. Bounded: once full, strings not in it are
 * encoded each time, so an app that puts ids in its span names grows no
 * memory here.
 */
class KnownBytes {
  /** The bytes, zero-padded to whole 32-bit words. */
  readonly words: DataView
  readonly length: number

  constructor(words: DataView, length: number) {
    this.words = words
    this.length = length
  }
}
const known = new Map<string, KnownBytes>()
const MAX_KNOWN = 512
/**
 * The last string looked up of each length (mod 32), and its bytes: a
 * compare, where the map hashes and probes. By length rather than the last
 * few looked up: a server span writes its name and then, after the run of
 * attributes it copies, two keys (url.path, network.peer.port) when its
 * connection is not the previous span's; three strings in turn never hit a
 * cache of the two most recent, and strings of one length rarely alternate.
 */
const SLOTS = 32
const slotStrings: string[] = new Array<string>(SLOTS).fill('')
const slotBytes: KnownBytes[] = new Array<KnownBytes>(SLOTS).fill(new KnownBytes(EMPTY_VIEW, 0))

/**
 * writeUtf8() for a string that is likely to be written again (a key, a
 * span name); at most SHORT_STRING units: longer ones are not worth keeping.
 * `view` is `buf`'s; up to 3 bytes past the string's end are overwritten
 * (whole words are copied), so the caller must have room for them.
 */
export function writeKnownUtf8(buf: Buffer, view: DataView, s: string, pos: number): number {
  const slot = s.length & (SLOTS - 1)
  let bytes: KnownBytes | undefined
  if (slotStrings[slot] === s) bytes = slotBytes[slot]!
  else {
    bytes = known.get(s)
    if (bytes === undefined) {
      const end = writeUtf8(buf, s, pos)
      // A copy: the writer's buffer is reused.
      if (known.size < MAX_KNOWN) {
        const padded = new Uint8Array((end - pos + 3) & ~3)
        padded.set(buf.subarray(pos, end))
        known.set(s, new KnownBytes(new DataView(padded.buffer), end - pos))
      }
      return end
    }
    slotStrings[slot] = s
    slotBytes[slot] = bytes
  }
  // Words, not set(): a native call costs more than a few dozen byte moves.
  const words = bytes.words
  const n = bytes.length
  for (let i = 0; i < n; i += 4) view.setUint32(pos + i, words.getUint32(i, true), true)
  return pos + n
}

/**
 * Writes `s` as UTF-8 at `pos` and returns the end. The caller has made room
 * (3 bytes per UTF-16 unit). Same output as Buffer's encoder, lone surrogates
 * included, but without a native call, which dominates for short strings.
 */
export function writeUtf8(buf: Buffer, s: string, pos: number): number {
  const length = s.length
  for (let i = 0; i < length; i++) {
    let c = s.charCodeAt(i)
    if (c < 0x80) {
      buf[pos++] = c
    } else if (c < 0x800) {
      buf[pos++] = 0xc0 | (c >> 6)
      buf[pos++] = 0x80 | (c & 0x3f)
    } else if ((c & 0xfc00) === 0xd800 && i + 1 < length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      c = 0x10000 + ((c & 0x3ff) << 10) + (s.charCodeAt(++i) & 0x3ff)
      buf[pos++] = 0xf0 | (c >> 18)
      buf[pos++] = 0x80 | ((c >> 12) & 0x3f)
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f)
      buf[pos++] = 0x80 | (c & 0x3f)
    } else {
      if ((c & 0xf800) === 0xd800) c = 0xfffd
      buf[pos++] = 0xe0 | (c >> 12)
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f)
      buf[pos++] = 0x80 | (c & 0x3f)
    }
  }
  return pos
}
