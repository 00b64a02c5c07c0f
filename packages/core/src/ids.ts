import { randomFillSync } from 'node:crypto'

/**
 * Random trace and span ids, cryptographically random but amortised: one
 * randomFillSync() call fills a 4 KiB pool that serves ~340 span ids or ~250
 * trace ids, instead of a randomBytes() call (and a Buffer) per id.
 * The hex conversion is Buffer#toString('hex', start, end), which writes the
 * string straight from the pool without an intermediate Buffer.
 */
const POOL_SIZE = 4096
const pool = Buffer.allocUnsafe(POOL_SIZE)
let offset = POOL_SIZE

function take(bytes: number): number {
  if (offset + bytes > POOL_SIZE) {
    randomFillSync(pool)
    offset = 0
  }
  const start = offset
  offset += bytes
  return start
}

function allZero(start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (pool[i] !== 0) return false
  return true
}

/** A 16-byte trace id as 32 lowercase hex characters, never all zeros. */
export function generateTraceId(): string {
  let start = take(16)
  // An all-zero id is invalid on the wire; the chance is 2^-128, but the
  // check is a handful of byte compares that stop at the first non-zero byte.
  while (allZero(start, start + 16)) start = take(16)
  return pool.toString('hex', start, start + 16)
}

/** An 8-byte span id as 16 lowercase hex characters, never all zeros. */
export function generateSpanId(): string {
  let start = take(8)
  while (allZero(start, start + 8)) start = take(8)
  return pool.toString('hex', start, start + 8)
}
