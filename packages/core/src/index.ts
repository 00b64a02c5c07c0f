// The public API of @spanline/core: this file only re-exports.
export { TracingError } from './errors.ts'
export {
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  type Attributes,
  type AttributeValue,
  type InstrumentationScope,
  type Link,
  type SpanContext,
  type SpanEvent,
  type SpanLink,
  type SpanStatus,
  type TimeInput,
} from './types.ts'
export {
  Context,
  ROOT_CONTEXT,
  bindEmitter,
  bindToContext,
  getActiveBaggage,
  getActiveContext,
  getActiveSpan,
  isSuppressed,
  runSuppressed,
  runWithBaggage,
  runWithContext,
  runWithSpan,
} from './context.ts'
export { NonRecordingSpan, RecordingSpan, exceptionAttributes, isSampled, type ReadableSpan, type Span } from './span.ts'
export {
  Tracer,
  createTracer,
  extract,
  getGlobalTracer,
  inject,
  setGlobalTracer,
  type SpanOptions,
  type TracerOptions,
} from './tracer.ts'
export { generateSpanId, generateTraceId, isValidSpanId, isValidTraceId } from './ids.ts'
export { toEpochMillis, toUnixNanos } from './clock.ts'
export { DEFAULT_SPAN_LIMITS, type SpanLimits } from './limits.ts'
export { createResource, type Resource, type ResourceOptions } from './resource.ts'
export { VERSION } from './version.ts'

export { AlwaysOffSampler, AlwaysOnSampler } from './sampling/always.ts'
export { TraceIdRatioSampler } from './sampling/ratio.ts'
export { ParentBasedSampler, type ParentBasedOptions } from './sampling/parent-based.ts'
export { SamplingDecision, type Sampler, type SamplingResult } from './sampling/sampler.ts'
export { samplerFromEnv } from './sampling/from-env.ts'

export { TraceState } from './propagation/tracestate.ts'
export { Baggage, type BaggageEntry } from './propagation/baggage.ts'
export { formatTraceparent, parseTraceparent, type ParsedTraceparent } from './propagation/traceparent.ts'
export { defaultGetter, defaultSetter, incomingHeadersGetter, type Getter, type Setter } from './propagation/carrier.ts'
export type { TextMapPropagator } from './propagation/propagator.ts'
export { W3CTraceContextPropagator } from './propagation/trace-context.ts'
export { W3CBaggagePropagator } from './propagation/baggage-propagator.ts'
export { B3MultiPropagator, B3SinglePropagator } from './propagation/b3-propagator.ts'
export { CompositePropagator } from './propagation/composite.ts'
export { createPropagator, propagatorFromEnv } from './propagation/from-config.ts'

export { SimpleSpanProcessor, type ExportResult, type SpanExporter, type SpanProcessor } from './export/processor.ts'
