// Medians: robust to the one slow run a shared machine always produces.

/**
 * The median of the finite numbers in a list (measurements a platform cannot
 * take, such as CPU time off Linux, are NaN or undefined and left out), or
 * undefined when there are none.
 */
export function median(values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (sorted.length === 0) return undefined
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/**
 * The first and third quartiles of the finite numbers in a list (linear
 * interpolation between the closest ranks), or undefined when there are
 * none: the middle half of the rounds, to show how far a median could move
 * from one run to the next.
 */
export function quartiles(values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (sorted.length === 0) return undefined
  const at = (q) => {
    const pos = (sorted.length - 1) * q
    const lo = Math.floor(pos)
    return sorted[lo] + (sorted[Math.min(lo + 1, sorted.length - 1)] - sorted[lo]) * (pos - lo)
  }
  return [at(0.25), at(0.75)]
}
