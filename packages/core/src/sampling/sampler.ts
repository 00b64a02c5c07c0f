import type { TraceState } from '../propagation/tracestate.ts'
import type { Attributes, Link, SpanContext, SpanKind } from '../types.ts'

/** https://opentelemetry.io/docs/specs/otel/trace/sdk/#shouldsample */
export const SamplingDecision = {
  /** No span is recorded; the context still propagates with sampled=0. */
  DROP: 0,
  /** Recorded (visible to processors) but not exported, sampled=0. */
  RECORD_ONLY: 1,
  /** Recorded and exported, sampled=1. */
  RECORD_AND_SAMPLED: 2,
} as const
export type SamplingDecision = (typeof SamplingDecision)[keyof typeof SamplingDecision]

export interface SamplingResult {
  readonly decision: SamplingDecision
  /** Extra attributes for the span (rare; most samplers return a shared constant). */
  readonly attributes?: Attributes
  /** Replaces the tracestate the span will propagate. */
  readonly traceState?: TraceState
}

export interface Sampler {
  /**
   * Called once per span before anything is allocated for it. `parent` is
   * undefined for a root span. Return one of the shared RESULT_* constants
   * when nothing else is needed, so sampling allocates nothing.
   */
  shouldSample(
    parent: SpanContext | undefined,
    traceId: string,
    name: string,
    kind: SpanKind,
    attributes: Attributes | undefined,
    links: readonly Link[] | undefined,
  ): SamplingResult
  /** A description such as `ParentBased{root=AlwaysOn}`. */
  toString(): string
}

export const RESULT_DROP: SamplingResult = Object.freeze({ decision: SamplingDecision.DROP })
export const RESULT_RECORD_ONLY: SamplingResult = Object.freeze({ decision: SamplingDecision.RECORD_ONLY })
export const RESULT_SAMPLED: SamplingResult = Object.freeze({ decision: SamplingDecision.RECORD_AND_SAMPLED })
