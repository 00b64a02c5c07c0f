import { envInteger, type Env } from './env.ts'
import { ERR_INVALID_LIMIT, TracingError } from './errors.ts'

/**
 * Span limits, with OpenTelemetry's defaults
 * (https://opentelemetry.io/docs/specs/otel/common/#attribute-limits and
 * .../trace/sdk/#span-limits). What goes over a limit is dropped and counted
 * in the span's dropped*Count fields, which OTLP carries to the backend.
 */
export interface SpanLimits {
  /** Attributes per span (default 128). */
  readonly attributeCountLimit: number
  /** Characters kept of each string attribute value (default: no limit). */
  readonly attributeValueLengthLimit: number
  /** Events per span (default 128). */
  readonly eventCountLimit: number
  /** Links per span (default 128). */
  readonly linkCountLimit: number
  /** Attributes per event (default 128). */
  readonly attributePerEventCountLimit: number
  /** Attributes per link (default 128). */
  readonly attributePerLinkCountLimit: number
}

export const DEFAULT_SPAN_LIMITS: SpanLimits = Object.freeze({
  attributeCountLimit: 128,
  attributeValueLengthLimit: Infinity,
  eventCountLimit: 128,
  linkCountLimit: 128,
  attributePerEventCountLimit: 128,
  attributePerLinkCountLimit: 128,
})

const LIMIT_NAMES = Object.keys(DEFAULT_SPAN_LIMITS) as (keyof SpanLimits)[]

/**
 * Options in code win over the environment, which wins over the defaults.
 * The span-specific variables win over the general OTEL_ATTRIBUTE_* ones.
 */
export function resolveSpanLimits(options: Partial<SpanLimits> | undefined, env: Env): SpanLimits {
  if (options !== undefined) {
    for (const key of Object.keys(options)) {
      if (!LIMIT_NAMES.includes(key as keyof SpanLimits)) {
        throw new TracingError(ERR_INVALID_LIMIT, `unknown span limit "${key}"; known limits: ${LIMIT_NAMES.join(', ')}`)
      }
      const v = options[key as keyof SpanLimits]
      if (v === undefined) continue
      if (typeof v !== 'number' || Number.isNaN(v) || v < 0 || (!Number.isInteger(v) && v !== Infinity)) {
        throw new TracingError(ERR_INVALID_LIMIT, `span limit ${key} must be a non-negative integer or Infinity, got ${String(v)}`)
      }
    }
  }
  const attrCount = envInteger(env, 'OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT') ?? envInteger(env, 'OTEL_ATTRIBUTE_COUNT_LIMIT')
  const attrLength = envInteger(env, 'OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT') ?? envInteger(env, 'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT')
  return {
    attributeCountLimit: options?.attributeCountLimit ?? attrCount ?? DEFAULT_SPAN_LIMITS.attributeCountLimit,
    attributeValueLengthLimit: options?.attributeValueLengthLimit ?? attrLength ?? DEFAULT_SPAN_LIMITS.attributeValueLengthLimit,
    eventCountLimit: options?.eventCountLimit ?? envInteger(env, 'OTEL_SPAN_EVENT_COUNT_LIMIT') ?? DEFAULT_SPAN_LIMITS.eventCountLimit,
    linkCountLimit: options?.linkCountLimit ?? envInteger(env, 'OTEL_SPAN_LINK_COUNT_LIMIT') ?? DEFAULT_SPAN_LIMITS.linkCountLimit,
    attributePerEventCountLimit: options?.attributePerEventCountLimit ?? envInteger(env, 'OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT') ?? DEFAULT_SPAN_LIMITS.attributePerEventCountLimit,
    attributePerLinkCountLimit: options?.attributePerLinkCountLimit ?? envInteger(env, 'OTEL_LINK_ATTRIBUTE_COUNT_LIMIT') ?? DEFAULT_SPAN_LIMITS.attributePerLinkCountLimit,
  }
}
