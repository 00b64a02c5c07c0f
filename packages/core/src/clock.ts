// The global `performance`, not node:perf_hooks: the same object, but the
// module's import also builds its histograms and observers (measured 1.5 ms
// on Node 24, up to 6 on Node 20, of a preload's start-up).

/**
 * Span times are plain numbers: milliseconds since the process's time origin
 * (performance.timeOrigin), as performance.now() counts them, monotonic (a
 * wall-clock step from NTP cannot make a span negative). They become Unix
 * nanoseconds only at export, by adding the time origin. No [seconds, nanos]
 * tuples are allocated per span.
 *
 * Read from process.hrtime() (the same monotonic clock), not
 * performance.now(): since Node 22 every performance.now() call first checks
 * that `this` is the real Performance object (a hasOwnProperty lookup on it),
 * whose memory is out of the CPU caches by the time a request comes: in CPU
 * profiles of a traced Fastify server that check cost twice the clock read
 * itself, and callgrind's cache simulation counts 14 fewer L1 misses per
 * request without it. hrtime()'s [seconds, nanos] array does not survive
 * where V8 inlines hrtime (measured: the bytes allocated per span did not
 * change). Not hrtime.bigint(): turning its BigInt into a number is a
 * runtime call (measured: 140 instructions a read).
 */
const hrtime = process.hrtime
/** hrtime's time, in ms, at performance.now()'s zero. */
const HRTIME_AT_ORIGIN = calibrate()

export function now(): number {
  return hrtimeMs() - HRTIME_AT_ORIGIN
}

/**
 * Where performance.now()'s zero is on hrtime's scale: performance.now()
 * read between two hrtime reads, from the closest of a few tries (the first
 * calls of each can take a while: lazy loading; and a busy machine may
 * preempt any one of them).
 */
function calibrate(): number {
  let best = Infinity
  let origin = 0
  for (let i = 0; i < 10; i++) {
    const before = hrtimeMs()
    const ms = performance.now()
    const after = hrtimeMs()
    if (after - before < best) {
      best = after - before
      origin = (before + after) / 2 - ms
    }
  }
  return origin
}

/** hrtime() in milliseconds (from an arbitrary zero: the machine's boot, on Linux). */
function hrtimeMs(): number {
  const t = hrtime()
  return t[0]! * 1e3 + t[1]! * 1e-6
}

const timeOrigin = performance.timeOrigin
/** timeOrigin in whole microseconds as a BigInt, so export stays exact. */
const originMicros = BigInt(Math.round(timeOrigin * 1000))

/** Convert a Unix epoch time in ms (or a Date) given by a caller to monotonic ms. */
export function fromEpochMillis(time: number | Date): number {
  const ms = typeof time === 'number' ? time : time.getTime()
  return ms - timeOrigin
}

/** Monotonic ms → Unix epoch nanoseconds, exact to the nanosecond of `t`. */
export function toUnixNanos(t: number): bigint {
  // Split so the float never has to hold 1.7e18 (beyond 2^53): whole
  // microseconds of the origin plus the offset rounded to nanoseconds.
  return originMicros * 1000n + BigInt(Math.round(t * 1e6))
}

// The exporters need toUnixNanos(t) = originMicros * 1000 + n, with
// n = Math.round(t * 1e6), for every span and event, and a BigInt per field
// costs about as much as the rest of a span's protobuf encoding. The two
// functions below compute the same value exactly with doubles, keeping every
// intermediate an integer below 2^53. n may itself exceed 2^53 once a process
// has run for 104 days (2^53 ns); it is still an integer double then, and
// splitting it at 2^32 (a power of two) stays exact.
const TWO_32 = 4294967296
const INV_TWO_32 = 1 / TWO_32
const originNanos = originMicros * 1000n
const ORIGIN_NANOS_LO = Number(originNanos & 0xffffffffn)
const ORIGIN_NANOS_HI = Number(originNanos >> 32n)
const ORIGIN_MICROS = Number(originMicros)
/** 2^32 = 4294967 * 1000 + 296: how n's high half divides by 1000. */
const TWO_32_DIV_1000 = 4294967
const TWO_32_MOD_1000 = 296

/**
 * toUnixNanos(t) as a decimal string (OTLP/JSON carries 64-bit integers as
 * strings), without BigInt. Exactly `toUnixNanos(t).toString()` for finite
 * t; a non-finite t (a NaN end time from user code) gives "0" rather than
 * throwing, so one bad span cannot fail a whole export batch.
 */
export function toUnixNanosString(t: number): string {
  const n = Math.round(t * 1e6)
  if (!Number.isFinite(n)) return '0'
  // The value is micros * 1000 + rest with 0 <= rest < 1000: divide n by
  // 1000 in halves so that m stays below 2^42.
  const nHi = Math.floor(n * INV_TWO_32)
  const m = nHi * TWO_32_MOD_1000 + (n - nHi * TWO_32)
  // m * 0.001 is off by far less than one, so one correction step suffices.
  let q = Math.floor(m * 0.001)
  let rest = m - q * 1000
  if (rest < 0) {
    q--
    rest += 1000
  } else if (rest >= 1000) {
    q++
    rest -= 1000
  }
  const micros = ORIGIN_MICROS + nHi * TWO_32_DIV_1000 + q
  // Before 1970 (only from odd caller-given times) the digits would need a
  // sign and a borrow; after 2255 micros passes 2^53: the exact slow path.
  if (micros <= 0 || micros > Number.MAX_SAFE_INTEGER) return toUnixNanos(t).toString()
  return micros + (rest >= 100 ? '' : rest >= 10 ? '0' : '00') + rest
}

/**
 * toUnixNanos(t) as the two 32-bit halves of its 64-bit two's-complement
 * value, for protobuf fixed64, without BigInt: `out[0]` gets the low half and
 * `out[1]` the high half. The caller owns `out`, so nothing is allocated.
 * Exact for finite t; a non-finite t gives 0 (see toUnixNanosString).
 */
export function toUnixNanosHalves(t: number, out: Uint32Array): void {
  const n = Math.round(t * 1e6)
  if (!Number.isFinite(n)) {
    out[0] = 0
    out[1] = 0
    return
  }
  const nHi = Math.floor(n * INV_TWO_32)
  const lo = ORIGIN_NANOS_LO + (n - nHi * TWO_32)
  // A Uint32Array stores modulo 2^32: that drops the carry from the low
  // half, and gives the two's complement of a negative (pre-1970) value.
  out[0] = lo
  out[1] = ORIGIN_NANOS_HI + nHi + (lo >= TWO_32 ? 1 : 0)
}

/** Monotonic ms → Unix epoch milliseconds (for display). */
export function toEpochMillis(t: number): number {
  return timeOrigin + t
}
