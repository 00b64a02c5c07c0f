import { AlwaysOffSampler, AlwaysOnSampler } from './always.ts'
import { ParentBasedSampler } from './parent-based.ts'
import type { Sampler } from './sampler.ts'

/**
 * Samplers whose decision the tracer can make without calling them. The two
 * most tracers run with, AlwaysOn and the spec's default ParentBased with an
 * always-on root (`parentbased_always_on`), decide from the parent's sampled
 * flag alone. Calling them per span is cheap but not free: the calls, and
 * ParentBased's choice of delegate, take room in the optimising compiler's
 * inlining budget for Tracer#startSpan that the span's own constructor needs.
 */
export const Shortcut = {
  /** Call the sampler. */
  NONE: 0,
  /** Every span is sampled. */
  ALWAYS: 1,
  /** A root span is sampled; a child is sampled if its parent is. */
  LIKE_PARENT: 2,
} as const
export type Shortcut = (typeof Shortcut)[keyof typeof Shortcut]

// The built-in methods, as loaded: a sampler whose shouldSample() was
// replaced (on it or on its class) before the tracer is made is called.
const onShouldSample = AlwaysOnSampler.prototype.shouldSample
const offShouldSample = AlwaysOffSampler.prototype.shouldSample
const parentBasedShouldSample = ParentBasedSampler.prototype.shouldSample
const parentBasedDelegateFor = ParentBasedSampler.prototype.delegateFor

/**
 * The shortcut for `sampler`, decided once when a tracer is made (a method
 * replaced after that is not seen). Only the built-in classes themselves
 * qualify (not subclasses, not instances or prototypes whose methods were
 * replaced): anything else is called.
 */
export function samplingShortcut(sampler: Sampler): Shortcut {
  if (isExactly(sampler, AlwaysOnSampler, onShouldSample)) return Shortcut.ALWAYS
  if (!isExactly(sampler, ParentBasedSampler, parentBasedShouldSample) || (sampler as ParentBasedSampler).delegateFor !== parentBasedDelegateFor) {
    return Shortcut.NONE
  }
  const [root, remoteSampled, remoteNotSampled, localSampled, localNotSampled] = (sampler as ParentBasedSampler).delegates()
  const on = (s: Sampler | undefined): boolean => s !== undefined && isExactly(s, AlwaysOnSampler, onShouldSample)
  const off = (s: Sampler | undefined): boolean => s !== undefined && isExactly(s, AlwaysOffSampler, offShouldSample)
  return on(root) && on(remoteSampled) && off(remoteNotSampled) && on(localSampled) && off(localNotSampled)
    ? Shortcut.LIKE_PARENT
    : Shortcut.NONE
}

function isExactly(sampler: Sampler, type: abstract new (...args: never[]) => Sampler, method: Sampler['shouldSample']): boolean {
  return Object.getPrototypeOf(sampler) === type.prototype && sampler.shouldSample === method
}
