import { warnOnce } from '../diag.ts'
import { envString, WARN_INVALID_ENV, type Env } from '../env.ts'
import { AlwaysOffSampler, AlwaysOnSampler } from './always.ts'
import { ParentBasedSampler } from './parent-based.ts'
import { TraceIdRatioSampler } from './ratio.ts'
import type { Sampler } from './sampler.ts'

/** The default sampler: parentbased_always_on. */
export function defaultSampler(): Sampler {
  return new ParentBasedSampler({ root: new AlwaysOnSampler() })
}

const SAMPLER_NAMES = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio']

/**
 * OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
 * (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/#general-sdk-configuration).
 * An unknown sampler name, or a ratio that is not a number from 0 to 1, is
 * reported once and replaced by the default (for a bad ratio: 1.0, as the
 * spec says).
 */
export function samplerFromEnv(env: Env): Sampler {
  const name = envString(env, 'OTEL_TRACES_SAMPLER')?.toLowerCase()
  if (name === undefined) return defaultSampler()
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler()
    case 'always_off':
      return new AlwaysOffSampler()
    case 'traceidratio':
      return new TraceIdRatioSampler(ratioFromEnv(env))
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() })
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() })
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioSampler(ratioFromEnv(env)) })
    default:
      warnOnce(WARN_INVALID_ENV,
        `OTEL_TRACES_SAMPLER=${JSON.stringify(env.OTEL_TRACES_SAMPLER)} is not one of ${SAMPLER_NAMES.join(', ')}; using parentbased_always_on`)
      return defaultSampler()
  }
}

function ratioFromEnv(env: Env): number {
  const arg = envString(env, 'OTEL_TRACES_SAMPLER_ARG')
  if (arg === undefined) return 1
  const ratio = Number(arg)
  if (!(ratio >= 0 && ratio <= 1)) {
    warnOnce(WARN_INVALID_ENV,
      `OTEL_TRACES_SAMPLER_ARG=${JSON.stringify(env.OTEL_TRACES_SAMPLER_ARG)} is not a ratio from 0 to 1; using 1.0`)
    return 1
  }
  return ratio
}
