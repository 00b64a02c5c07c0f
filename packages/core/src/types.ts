import type { TraceState } from './propagation/tracestate.ts'

/**
 * Span kinds, numbered as in OTLP's `Span.SpanKind` so that export needs no
 * mapping (0 is "unspecified" there and is never produced here).
 */
export const SpanKind = {
  INTERNAL: 1,
  SERVER: 2,
  CLIENT: 3,
  PRODUCER: 4,
  CONSUMER: 5,
} as const
export type SpanKind = (typeof SpanKind)[keyof typeof SpanKind]

/** Status codes, numbered as in OTLP's `Status.StatusCode`. */
export const SpanStatusCode = {
  UNSET: 0,
  OK: 1,
  ERROR: 2,
} as const
export type SpanStatusCode = (typeof SpanStatusCode)[keyof typeof SpanStatusCode]

/** W3C trace-flags bits (Trace Context Level 2). */
export const TraceFlags = {
  NONE: 0x00,
  SAMPLED: 0x01,
  /** The trace id's rightmost 7 bytes are random (Level 2 "random-trace-id" flag). */
  RANDOM: 0x02,
} as const

/** Attribute values as OTLP can carry them: primitives or homogeneous arrays. */
export type AttributeValue =
  | string
  | number
  | boolean
  | readonly string[]
  | readonly number[]
  | readonly boolean[]

export type Attributes = Record<string, AttributeValue | undefined>

/**
 * The identity of a span as it crosses process boundaries: what traceparent
 * and tracestate carry.
 */
export interface SpanContext {
  readonly traceId: string
  readonly spanId: string
  readonly traceFlags: number
  readonly traceState: TraceState | undefined
  /** True when the context was extracted from an incoming request. */
  readonly isRemote: boolean
}

export interface SpanStatus {
  readonly code: SpanStatusCode
  readonly message?: string
}

export interface Link {
  readonly context: SpanContext
  readonly attributes?: Attributes
}

/** A recorded link, as exporters see it. */
export interface SpanLink {
  readonly context: SpanContext
  readonly attributes: Attributes | null
  readonly droppedAttributesCount: number
}

export interface SpanEvent {
  readonly name: string
  /** Monotonic milliseconds (see clock.ts). */
  readonly time: number
  readonly attributes: Attributes | null
  readonly droppedAttributesCount: number
}

export interface InstrumentationScope {
  readonly name: string
  readonly version?: string
}

/**
 * Time given by callers: Unix epoch milliseconds (as from `Date.now()`,
 * fractions allowed) or a Date. Stored monotonic, see clock.ts.
 */
export type TimeInput = number | Date
