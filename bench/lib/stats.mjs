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
