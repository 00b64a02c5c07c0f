import { RESULT_DROP, RESULT_SAMPLED, type Sampler, type SamplingResult } from './sampler.ts'

/** Samples every span. */
export class AlwaysOnSampler implements Sampler {
  shouldSample(): SamplingResult {
    return RESULT_SAMPLED
  }
  toString(): string {
    return 'AlwaysOnSampler'
  }
}

/** Samples no span; ids still propagate with sampled=0. */
export class AlwaysOffSampler implements Sampler {
  shouldSample(): SamplingResult {
    return RESULT_DROP
  }
  toString(): string {
    return 'AlwaysOffSampler'
  }
}
