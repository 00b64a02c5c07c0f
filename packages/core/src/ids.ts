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
 */
export function takeId(bytes: number): number {
  for (;;) {
    if (offset + bytes > POOL_SIZE) {
      pool = Buffer.allocUnsafe(POOL_SIZE)
      randomFill ??= process.getBuiltinModule('node:crypto').randomFillSync
      randomFill(pool)
      offset = 0
    }
    const start = offset
    offset += bytes
    // The chance is 2^-64 at worst; the check stops at the first non-zero byte.
    for (let i = start; i < offset; i++) if (pool[i] !== 0) return start
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
