import { now, toEpochMillis, toUnixNanos } from './clock.ts'

describe('clock', () => {
  it('counts milliseconds from the same zero as performance.now()', () => {
    for (let i = 0; i < 100; i++) {
      const before = performance.now()
      const t = now()
      const after = performance.now()
      // The calibration is exact to well under a microsecond; 0.25 ms leaves room for a loaded machine.
      expect(t).toBeGreaterThanOrEqual(before - 0.25)
      expect(t).toBeLessThanOrEqual(after + 0.25)
    }
  })

  it('never goes back, and resolves well below a millisecond', () => {
    let last = now()
    const distinct = new Set<number>()
    for (let i = 0; i < 10_000; i++) {
      const t = now()
      expect(t).toBeGreaterThanOrEqual(last)
      distinct.add(t)
      last = t
    }
    expect(distinct.size).toBeGreaterThan(100)
  })

  it('turns into wall-clock time through the time origin', () => {
    const wall = Date.now()
    expect(Math.abs(toEpochMillis(now()) - wall)).toBeLessThan(50)
    expect(Math.abs(Number(toUnixNanos(now()) / 1_000_000n) - wall)).toBeLessThan(50)
  })
})
