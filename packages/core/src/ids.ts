/**
 * Random trace and span ids, cryptographically random but amortised: one
 * randomFillSync() call fills a 64 KiB pool that serves ~2,700 spans, instead
 * of a randomBytes() call (and a Buffer) per id. The size is measured: a call
 * costs ~8 us whatever the size, so a 4 KiB pool spent 2 ns per byte (50 ns
 * a span) and a 64 KiB one spends 0.25.
 *
 * The pool is one buffer, refilled in place when used up: bytes handed out
 * are valid until the next takeId(), so a caller reads them at once (a
 * recording span copies its ids into its own fields as 32-bit words, see
 * idWords). Why not a fresh pool each time, with spans pointing into it:
 * measured in the micro benchmark, a new 64 KiB ArrayBuffer every ~2,700
 * spans cost 90-100 ns a span (fresh pages to fault in, and V8's scavenges
 * sweeping young array buffers took four times as long), a fifth of the whole
 * span; and any span kept alive pinned its 64 KiB.
 */
const POOL_SIZE = 65536
/**
 * node:crypto is taken when the first id is needed, not imported: loading it
 * costs 2-4 ms of a zero-code preload's start-up, before any request.
 */
let randomFill: ((buf: Buffer) => Buffer) | undefined
/**
 * Allocated with the module (64 KiB), so that idWords never changes; filled
 * when the first id is taken. Memory of its own (not a slice of Node's shared
 * pool): aligned, as idWords and nonZeroIds' view of it need.
 */
const pool = Buffer.allocUnsafeSlow(POOL_SIZE)
/**
 * The pool as 32-bit words (native byte order: a span's id words go back
 * out little-endian, which on a big-endian machine swaps each word's bytes,
 * still random ones), for spans to copy their ids out of: the word at byte
 * offset `at` is `idWords[at >> 2]`.
 */
export const idWords: Int32Array = new Int32Array(pool.buffer, pool.byteOffset, POOL_SIZE >>> 2)
let offset = POOL_SIZE

/**
 * Reserves `bytes` random bytes (8 for a span id, 16 for a trace id, 24 for
 * both), never an all-zero 8-byte word (an all-zero id is invalid on the
 * wire), and returns where they start in idPool(). Read them (idPool(),
 * idWords) before the next takeId(): a call may refill the pool.
 *
 * Nothing is read here. The pool is filled long before its last ids are
 * taken, so on a busy server reading each id (to rule out zeros) missed the
 * CPU caches on most spans: in a CPU profile of a Fastify server, the
 * costliest line of starting a span. A new fill is checked as a whole
 * instead, while it is still in the cache (nonZeroIds).
 */
export function takeId(bytes: 8 | 16 | 24): number {
  if (offset + bytes > POOL_SIZE) refill()
  const start = offset
  offset += bytes
  return start
}

function refill(): void {
  randomFill ??= process.getBuiltinModule('node:crypto').randomFillSync
  nonZeroIds(randomFill(pool))
  offset = 0
}

/**
 * Makes every 8-byte word of `buf` (8-byte aligned, a multiple of 8 long)
 * non-zero, so that every id taken at a multiple of 8 (takeId's offsets: ids
 * are 8 or 16 bytes) is valid: an all-zero word (a chance of 2^-64 each)
 * gets a last byte of 1. The words are searched as doubles by the native
 * TypedArray#indexOf (~4 us for a 64 KiB pool, under 2 ns a span): a
 * JavaScript loop over them ran too rarely for V8 to optimise it. Zero as a
 * double also matches -0, whose last byte is 0x80: not an all-zero word.
 */
export function nonZeroIds(buf: Buffer): void {
  const words = new Float64Array(buf.buffer, buf.byteOffset, buf.length >>> 3)
  for (let i = words.indexOf(0); i !== -1; i = words.indexOf(0, i + 1)) {
    if (buf[8 * i + 7] === 0) buf[8 * i + 7] = 1
  }
}

/** The pool that takeId() carves from. */
export function idPool(): Buffer {
  return pool
}

/** The lowercase hex digits as character codes, by value. */
const DIGITS = new Uint8Array([48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 97, 98, 99, 100, 101, 102])
const fromCharCode = String.fromCharCode

/**
 * The hex of an id kept as 32-bit words (from idWords, in order): a span id
 * from two (`w2`, `w3` unused), a trace id from four. Each word's bytes are
 * written low byte first, as they lie in the pool on a little-endian machine.
 *
 * One String.fromCharCode() call with every digit, not Buffer#toString('hex'):
 * the native call (an API callback, a temporary allocation, a new string)
 * took 115 ns for a span id on Node 20 and 131 on Node 24 against 42 and 48
 * here, and under callgrind ~1,800 instructions per request went to the two
 * ids of every unsampled server span. Digits by table, written out rather
 * than by a helper called 32 times: see HttpServerTracing#fill for what many
 * inlined calls to a small helper did to a function's inlining budget.
 */
export function hexOfWords(length: 8 | 16, w0: number, w1: number, w2: number, w3: number): string {
  const d = DIGITS
  if (length === 8) {
    return fromCharCode(
      d[(w0 >>> 4) & 15]!, d[w0 & 15]!, d[(w0 >>> 12) & 15]!, d[(w0 >>> 8) & 15]!, d[(w0 >>> 20) & 15]!, d[(w0 >>> 16) & 15]!, d[w0 >>> 28]!, d[(w0 >>> 24) & 15]!,
      d[(w1 >>> 4) & 15]!, d[w1 & 15]!, d[(w1 >>> 12) & 15]!, d[(w1 >>> 8) & 15]!, d[(w1 >>> 20) & 15]!, d[(w1 >>> 16) & 15]!, d[w1 >>> 28]!, d[(w1 >>> 24) & 15]!,
    )
  }
  return fromCharCode(
    d[(w0 >>> 4) & 15]!, d[w0 & 15]!, d[(w0 >>> 12) & 15]!, d[(w0 >>> 8) & 15]!, d[(w0 >>> 20) & 15]!, d[(w0 >>> 16) & 15]!, d[w0 >>> 28]!, d[(w0 >>> 24) & 15]!,
    d[(w1 >>> 4) & 15]!, d[w1 & 15]!, d[(w1 >>> 12) & 15]!, d[(w1 >>> 8) & 15]!, d[(w1 >>> 20) & 15]!, d[(w1 >>> 16) & 15]!, d[w1 >>> 28]!, d[(w1 >>> 24) & 15]!,
    d[(w2 >>> 4) & 15]!, d[w2 & 15]!, d[(w2 >>> 12) & 15]!, d[(w2 >>> 8) & 15]!, d[(w2 >>> 20) & 15]!, d[(w2 >>> 16) & 15]!, d[w2 >>> 28]!, d[(w2 >>> 24) & 15]!,
    d[(w3 >>> 4) & 15]!, d[w3 & 15]!, d[(w3 >>> 12) & 15]!, d[(w3 >>> 8) & 15]!, d[(w3 >>> 20) & 15]!, d[(w3 >>> 16) & 15]!, d[w3 >>> 28]!, d[(w3 >>> 24) & 15]!,
  )
}

/** Each character code below 128 as a lower-case hex digit's value; -1 for any other character. */
const NIBBLES = new Int8Array(128).fill(-1)
for (let c = 48; c <= 57; c++) NIBBLES[c] = c - 48
for (let c = 97; c <= 102; c++) NIBBLES[c] = c - 87

/**
 * Where readHexWords() and idWordsOfHex() write ids read from hex: a trace
 * id's four words, then a span id's two. Read them at once: the next call
 * overwrites them.
 */
export const hexWords: Int32Array = new Int32Array(6)

/**
 * The inverse of hexOfWords, for ids from headers: reads `count` words of
 * lower-case hex digits from `hex` at `from` into hexWords from index `at`,
 * and returns false if any of those characters is not one (the caller
 * checks the length, and that an id is not all zeros: see idsInHexWords).
 * So a span made from a header's ids keeps them as words, as a span made
 * here does, and nothing downstream reads the hex again: the tracer's check
 * of a parent's ids, a child's copy of them, the protobuf encoder's trace
 * and parent ids. Checking while reading costs what checking alone did.
 */
export function readHexWords(hex: string, from: number, count: 2 | 4, at: number): boolean {
  const nibbles = NIBBLES
  let invalid = 0
  let p = from
  for (let w = 0; w < count; w++) {
    let word = 0
    // A byte's two digits (high nibble first) at a time; the word's low byte first.
    for (let shift = 0; shift < 32; shift += 8) {
      const c1 = hex.charCodeAt(p)
      const c2 = hex.charCodeAt(p + 1)
      p += 2
      const high = nibbles[c1 & 127]!
      const low = nibbles[c2 & 127]!
      // Negative when either is not a digit, or not ASCII (the mask would
      // alias it to one). Past the string's end charCodeAt gives NaN: entry 0, not a digit.
      invalid |= high | low | -((c1 | c2) >> 7)
      word |= ((high << 4) | low) << shift
    }
    hexWords[at + w] = word
  }
  return invalid >= 0
}

/** True when neither id in hexWords is all zeros (an all-zero id is invalid). */
export function idsInHexWords(): boolean {
  const w = hexWords
  return (w[0]! | w[1]! | w[2]! | w[3]!) !== 0 && (w[4]! | w[5]!) !== 0
}

/**
 * For ids given as strings (hand-made spans, B3 headers): when `traceId` is
 * a valid trace id (32 lower-case hex digits, not all zero) and `spanId` a
 * valid span id (16, not all zero), writes their words into hexWords and
 * returns true; otherwise writes six zeros and returns false.
 */
export function idWordsOfHex(traceId: string, spanId: string): boolean {
  if (typeof traceId === 'string' && traceId.length === 32 && typeof spanId === 'string' && spanId.length === 16 &&
    readHexWords(traceId, 0, 4, 0) && readHexWords(spanId, 0, 2, 4) && idsInHexWords()) {
    return true
  }
  hexWords.fill(0)
  return false
}

/** A 16-byte trace id as 32 lowercase hex characters, never all zeros. */
export function generateTraceId(): string {
  const at = takeId(16) >>> 2
  const w = idWords
  return hexOfWords(16, w[at]!, w[at + 1]!, w[at + 2]!, w[at + 3]!)
}

/** An 8-byte span id as 16 lowercase hex characters, never all zeros. */
export function generateSpanId(): string {
  const at = takeId(8) >>> 2
  return hexOfWords(8, idWords[at]!, idWords[at + 1]!, 0, 0)
}
