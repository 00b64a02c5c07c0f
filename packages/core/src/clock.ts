import { performance } from 'node:perf_hooks'

/**
 * Span times are plain numbers: milliseconds from performance.now(), which is
 * monotonic within the process (a wall-clock step from NTP cannot make a span
 * negative). They become Unix nanoseconds only at export, by adding the
 * process's time origin. No [seconds, nanos] tuples are allocated per span.
 */
export const now: () => number = performance.now.bind(performance)

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

/** Monotonic ms → Unix epoch milliseconds (for display). */
export function toEpochMillis(t: number): number {
  return timeOrigin + t
}
