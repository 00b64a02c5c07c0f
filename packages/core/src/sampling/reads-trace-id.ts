import type { SpanContext } from '../types.ts'
import { AlwaysOffSampler, AlwaysOnSampler } from './always.ts'
import { ParentBasedSampler } from './parent-based.ts'
import type { Sampler } from './sampler.ts'

/**
 * Whether `sampler` may read the trace id when deciding for a span with this
 * parent. The built-in always-on/off samplers (alone or as the delegate that
 * ParentBased picks) never do, so a new root span's trace id need not be
 * formatted as hex just to be ignored: the tracer passes '' to them. Any
 * other sampler, subclasses included, gets the real id.
 */
export function samplerReadsTraceId(sampler: Sampler, parent: SpanContext | undefined): boolean {
  let s = sampler
  if (s.constructor === ParentBasedSampler) s = (s as ParentBasedSampler).delegateFor(parent)
  return s.constructor !== AlwaysOnSampler && s.constructor !== AlwaysOffSampler
}
