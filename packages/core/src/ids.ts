/**
 * Random trace and span ids, cryptographically random but amortised: one
 * randomFillSync() call fills a 64 KiB pool that serves ~2,700 spans, instead
 * of a randomBytes() call (and a Buffer) per id. The size is measured: a call
 * costs ~8 us whatever the size, so a 4 KiB pool spent 2 ns per byte (50 ns
 * a span) and a 64 KiB one spends 0.25.
 *
 * A recording span keeps its ids as bytes in the pool (takeId() + idPool())
 * and turns them into hex only if something reads them: the OTLP protobuf
 * encoder copies the bytes, so a span that is only exported never pays the
 * ~100 ns per id of hex formatting nor the hex parsing back. For that, a
 * used-up pool is replaced, never refilled: bytes handed out stay as they are
 * while spans point at them (a pool lives as long as any span that does).
 */
const POOL_SIZE = 65536
/**
 * node:crypto is taken when the first id is needed, not imported: loading it
 * costs 2-4 ms of a zero-code preload's start-up, before any request.
 */
let randomFill: ((buf: Buffer) => Buffer) | undefined
let pool = Buffer.alloc(0)
let offset = POOL_SIZE

/**
 * Reserves `bytes` random bytes (16 for a trace id, 8 for a span id), never
 * all zero (an all-zero id is invalid on the wire), and returns where they
 * start in idPool(). Read idPool() after takeId(): a call may switch pools.
 *
 * The bytes are not read here. The pool is filled long before its last ids
 * are taken, so on a busy server reading each id (to rule out zeros) missed
 * the CPU caches on most spans, a load the span's start then waited for: in
 * a CPU profile of a Fastify server, the costliest line of starting a span.
 * A new pool is checked as a whole instead, while it is still in the cache
 * (nonZeroIds).
 */
export function takeId(bytes: 8 | 16): number {
  if (offset + bytes > POOL_SIZE) newPool()
  const start = offset
  offset += bytes
  return start
}

function newPool(): void {
  // A buffer of its own (not a slice of Node's shared pool), so it is 8-byte aligned for nonZeroIds.
  pool = Buffer.allocUnsafeSlow(POOL_SIZE)
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

/** The pool that the last takeId() carved from. */
export function idPool(): Buffer {
  return pool
}

/** A 16-byte trace id as 32 lowercase hex characters, never all zeros. */
export function generateTraceId(): string {
  const start = takeId(16)
  return pool.toString('hex', start, start + 16)
}

/** An 8-byte span id as 16 lowercase hex characters, never all zeros. */
export function generateSpanId(): string {
  const start = takeId(8)
  return pool.toString('hex', start, start + 8)
}
