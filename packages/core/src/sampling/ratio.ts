import { ERR_INVALID_SAMPLER, TracingError } from '../errors.ts'
import { RESULT_DROP, RESULT_SAMPLED, type Sampler, type SamplingResult } from './sampler.ts'

/**
 * Samples a fixed fraction of traces, decided from the trace id alone so that
 * every service in a trace, in any language that follows the same rule,
 * reaches the same decision without talking to each other.
 *
 * The rule is OpenTelemetry's consistent-probability one
 * (https://opentelemetry.io/docs/specs/otel/trace/tracestate-probability-sampling/):
 * the rightmost 56 bits of the trace id are the randomness R (W3C Trace
 * Context Level 2 makes those bits random when the random flag is set, and we
 * set it on every id we generate); the span is sampled when R >= T, with the
 * threshold T = (1 - ratio) * 2^56. Both are compared as 14-character
 * lowercase hex strings, which order exactly like the numbers, so no BigInt
 * work happens per span.
 */
export class TraceIdRatioSampler implements Sampler {
  readonly ratio: number
  readonly #threshold: string

  constructor(ratio: number) {
    if (typeof ratio !== 'number' || !(ratio >= 0 && ratio <= 1)) {
      throw new TracingError(ERR_INVALID_SAMPLER, `TraceIdRatioSampler ratio must be a number from 0 to 1, got ${String(ratio)}`)
    }
    this.ratio = ratio
    this.#threshold = thresholdHex(ratio)
  }

  shouldSample(_parent: unknown, traceId: string): SamplingResult {
    if (this.ratio === 0) return RESULT_DROP
    return traceId.slice(18) >= this.#threshold ? RESULT_SAMPLED : RESULT_DROP
  }

  toString(): string {
    return `TraceIdRatioBased{${this.ratio}}`
  }
}

const TWO_56 = 2n ** 56n

/** (1 - ratio) * 2^56 as 14 hex digits, computed once. */
export function thresholdHex(ratio: number): string {
  // Scale the ratio to 2^56 exactly enough: doubles carry 53 bits, so go
  // through an integer numerator over 2^53 before widening to 56 bits.
  const sampledOf2p53 = BigInt(Math.round(ratio * 2 ** 53))
  const threshold = TWO_56 - sampledOf2p53 * 8n
  // A ratio too small to express in 56 bits samples nothing: '~' sorts after
  // every hex digit, so no trace id reaches it.
  if (threshold >= TWO_56) return '~'
  return threshold.toString(16).padStart(14, '0')
}
