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
export { NonRecordingSpan, RecordingSpan, exceptionAttributes, exceptionType, isSampled, type ReadableSpan, type Span } from './span.ts'
export {
  Tracer,
  createTracer,
  ensureGlobalTracer,
  extract,
  getGlobalTracer,
  inject,
  setGlobalTracer,
  tracerOf,
  type SpanOptions,
  type TracerOptions,
  type TracerStats,
} from './tracer.ts'
export { generateSpanId, generateTraceId } from './ids.ts'
export { toEpochMillis, toUnixNanos } from './clock.ts'
export { diagnosticChannel, warnOnce, type Diagnostic } from './diag.ts'
export { envBoolean, envInteger, envList, envString, WARN_INVALID_ENV, type Env } from './env.ts'
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
export { formatTraceparent, isValidSpanId, isValidTraceId, parseTraceparent, type ParsedTraceparent } from './propagation/traceparent.ts'
export { defaultGetter, defaultSetter, incomingHeadersGetter, type Getter, type Setter } from './propagation/carrier.ts'
export type { TextMapPropagator } from './propagation/propagator.ts'
export { W3CTraceContextPropagator } from './propagation/trace-context.ts'
export { W3CBaggagePropagator } from './propagation/baggage-propagator.ts'
export { B3MultiPropagator, B3SinglePropagator } from './propagation/b3-propagator.ts'
export { CompositePropagator } from './propagation/composite.ts'
export { createPropagator, propagatorFromEnv } from './propagation/from-config.ts'

export { SimpleSpanProcessor, type ExportResult, type SpanExporter, type SpanProcessor } from './export/processor.ts'
export { BatchSpanProcessor, type BatchOptions, type ProcessorStats } from './export/batch.ts'
export { OtlpHttpExporter } from './export/otlp/http-exporter.ts'
export { resolveOtlpConfig, type OtlpConfig, type OtlpExporterOptions, type OtlpProtocol, type OtlpCompression } from './export/otlp/config.ts'
export { encodeJson } from './export/otlp/json.ts'
export { encodeProtobuf } from './export/otlp/protobuf.ts'
export { ConsoleSpanExporter, renderWaterfall, type ConsoleExporterOptions, type WaterfallOptions } from './export/console.ts'
export { exportersFromEnv, processorsFor } from './export/from-env.ts'

export { HttpServerTracing, getServerSpan, recordServerError, setServerRoute, traceRequests, type HttpServerOptions } from './http/server.ts'
export type { IgnoreRule } from './http/ignore.ts'
export {
  ATTR_URL_TEMPLATE,
  CALL_ABORTED,
  HttpClientCall,
  HttpClientTracing,
  withUrlTemplate,
  type ClientIgnoreRule,
  type HttpClientOptions,
} from './http/client.ts'
export * from './semconv.ts'
