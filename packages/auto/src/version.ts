/**
 * The framework versions the preload knows how to enrich, as `^` ranges
 * (one per major): the same ranges as the adapters' peerDependencies.
 * A version outside them is left alone, so a future major that changed its
 * internals costs a route name, never a broken app.
 */
export interface SupportedRange {
  readonly label: string
  /** Per supported major, the lowest [minor, patch]. */
  readonly majors: Readonly<Record<number, readonly [number, number]>>
}

export const EXPRESS_RANGE: SupportedRange = { label: '^4.17.0 || ^5.0.0', majors: { 4: [17, 0], 5: [0, 0] } }
export const KOA_RANGE: SupportedRange = { label: '^2.13.0 || ^3.0.0', majors: { 2: [13, 0], 3: [0, 0] } }
export const FASTIFY_RANGE: SupportedRange = { label: '^4.10.0 || ^5.0.0', majors: { 4: [10, 0], 5: [0, 0] } }

/** Whether `version` (`5.1.0`, `5.0.0-rc.1` counts as below 5.0.0) is in `range`. */
export function inRange(version: unknown, range: SupportedRange): boolean {
  if (typeof version !== 'string') return false
  const m = /^(\d+)\.(\d+)\.(\d+)(-)?/.exec(version)
  if (m === null) return false
  const lowest = range.majors[Number(m[1])]
  if (lowest === undefined) return false
  const minor = Number(m[2])
  const patch = Number(m[3])
  const [minMinor, minPatch] = lowest
  if (minor !== minMinor) return minor > minMinor
  if (patch !== minPatch) return patch > minPatch
  // A prerelease of the lowest version precedes it.
  return m[4] === undefined
}
