import { fromEpochMillis, now } from './clock.ts'
import { Context, getActiveContext, ROOT_CONTEXT, runWithSpan } from './context.ts'
import { containedErrorCounts, containError, debug, type ContainedErrorKind } from './diag.ts'
import type { Env } from './env.ts'
import { ERR_INVALID_ARGUMENT, TracingError } from './errors.ts'
import { BatchSpanProcessor, type ProcessorStats } from './export/batch.ts'
import { exportersFromEnv, processorsFor } from './export/from-env.ts'
import { SimpleSpanProcessor, type SpanExporter, type SpanProcessor } from './export/processor.ts'
import { registry } from './global.ts'
import { generateTraceId } from './ids.ts'
import { isValidSpanId, isValidTraceId } from './propagation/traceparent.ts'
import { resolveSpanLimits, type SpanLimits } from './limits.ts'
import { defaultGetter, defaultSetter, type Getter, type Setter } from './propagation/carrier.ts'
import { createPropagator, propagatorFromEnv } from './propagation/from-config.ts'
import type { TextMapPropagator } from './propagation/propagator.ts'
import { createResource, type Resource } from './resource.ts'
import { samplerFromEnv } from './sampling/from-env.ts'
import { samplerReadsTraceId } from './sampling/reads-trace-id.ts'
import { RESULT_DROP, RESULT_SAMPLED, SamplingDecision, type Sampler, type SamplingResult } from './sampling/sampler.ts'
import { Shortcut, samplingShortcut } from './sampling/shortcut.ts'
import { localNonRecordingSpan, NonRecordingSpan, RecordingSpan, type Span, type SpanPipeline } from './span.ts'
import {
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  type Attributes,
  type InstrumentationScope,
  type Link,
  type SpanContext,
  type TimeInput,
} from './types.ts'
import { VERSION } from './version.ts'

export interface TracerOptions {
  /** service.name (else OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, the app's package.json name). */
  readonly serviceName?: string
  /** Extra resource attributes (deployment.environment.name, service.version, ...). */
  readonly resource?: Attributes
  /** Default: OTEL_TRACES_SAMPLER[_ARG], else parentbased_always_on. */
  readonly sampler?: Sampler
  /** Default: OTEL_SPAN_*_LIMIT variables, else OpenTelemetry's defaults. */
  readonly spanLimits?: Partial<SpanLimits>
  /**
   * Where finished spans go, in full control. An empty list records nothing
   * (ids still propagate).
   */
  readonly processors?: readonly SpanProcessor[]
  /**
   * Exporters to send spans to, each behind a batch processor (the console
   * exporter behind a simple one), after any `processors`. When neither this
   * nor `processors` is given: OTEL_TRACES_EXPORTER (default `otlp`, to
   * http://localhost:4318).
   */
  readonly exporters?: readonly SpanExporter[]
  /** A propagator, or format names (`tracecontext`, `baggage`, `b3`, `b3multi`, `none`). Default: OTEL_PROPAGATORS, else tracecontext,baggage. */
  readonly propagator?: TextMapPropagator | readonly string[]
  /** The instrumentation scope of spans from this tracer (default @spanline/core). */
  readonly scope?: InstrumentationScope
  /** Environment to read OTEL_* variables from (default process.env). */
  readonly env?: Env
}

export interface SpanOptions {
  /** Default INTERNAL. */
  readonly kind?: SpanKind
  readonly attributes?: Attributes
  readonly links?: readonly Link[]
  /**
   * The parent: a Context, a Span or SpanContext; `null` starts a new trace.
   * Default: the active span.
   */
  readonly parent?: Context | SpanContext | null
  /** Unix epoch ms (Date.now() style) or a Date. Default: now. */
  readonly startTime?: TimeInput
}

/** Counters of a tracer's spans; see Tracer#stats(). */
export interface TracerStats extends ProcessorStats {
  started: number
  unsampled: number
  /** User-supplied code that threw and was contained, in this process, by kind. */
  errors: Record<ContainedErrorKind, number>
}

const OPTION_NAMES = ['serviceName', 'resource', 'sampler', 'spanLimits', 'processors', 'exporters', 'propagator', 'scope', 'env']
const DEFAULT_SCOPE: InstrumentationScope = Object.freeze({ name: '@spanline/core', version: VERSION })

/** State shared by a tracer and the tracers derived from it with getTracer(). */
class Pipeline implements SpanPipeline {
  readonly limits: SpanLimits
  readonly resource: Resource
  readonly sampler: Sampler
  /** Whether startSpan may decide without calling the sampler (see shortcut.ts). */
  readonly shortcut: Shortcut
  readonly processors: readonly SpanProcessor[]
  /**
   * Those of them whose onStart() does something: the batch and simple
   * processors' does nothing, and a loop calling it, with its try/catch,
   * was a line of its own in the request's profile. Decided when the tracer
   * is made.
   */
  readonly starting: readonly SpanProcessor[]
  readonly propagator: TextMapPropagator
  shutDown: boolean = false
  /** Recording spans started; unsampled (non-recording) ones. Plain counters: a cheap increment each. */
  started: number = 0
  unsampled: number = 0
  #shutdown: Promise<void> | undefined = undefined

  constructor(options: TracerOptions) {
    const env = options.env ?? process.env
    this.limits = resolveSpanLimits(options.spanLimits, env)
    this.resource = createResource({
      env,
      ...(options.serviceName !== undefined && { serviceName: options.serviceName }),
      ...(options.resource !== undefined && { attributes: options.resource }),
    })
    this.sampler = options.sampler ?? samplerFromEnv(env)
    this.shortcut = samplingShortcut(this.sampler)
    // Both given: the processors, then the exporters behind theirs (neither is ignored).
    this.processors = options.processors !== undefined
      ? [...options.processors, ...(options.exporters !== undefined ? processorsFor(options.exporters, env) : [])]
      : processorsFor(options.exporters ?? exportersFromEnv(env), env)
    this.starting = this.processors.filter((p) => typeof p.onStart === 'function' &&
      p.onStart !== BatchSpanProcessor.prototype.onStart && p.onStart !== SimpleSpanProcessor.prototype.onStart)
    const p = options.propagator
    this.propagator = p === undefined ? propagatorFromEnv(env) : isPropagator(p) ? p : createPropagator(p as readonly string[])
  }

  onEnd(span: RecordingSpan): void {
    const processors = this.processors
    for (let i = 0; i < processors.length; i++) {
      try {
        processors[i]!.onEnd(span)
      } catch (err) {
        containError('processor', 'a span processor\'s onEnd()', err)
      }
    }
  }

  shutdown(): Promise<void> {
    this.shutDown = true
    this.#shutdown ??= Promise.allSettled(this.processors.map((p) => p.shutdown())).then(reportRejections)
    return this.#shutdown
  }
}

function reportRejections(results: PromiseSettledResult<unknown>[]): void {
  for (const r of results) if (r.status === 'rejected') debug('span processor failed: %o', r.reason)
}

function isPropagator(p: unknown): p is TextMapPropagator {
  return p !== null && typeof p === 'object' && typeof (p as TextMapPropagator).inject === 'function'
}

function validate(options: TracerOptions): void {
  if (options === null || typeof options !== 'object') {
    throw new TracingError(ERR_INVALID_ARGUMENT, `tracer options must be an object, got ${String(options)}`)
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_NAMES.includes(key)) {
      throw new TracingError(ERR_INVALID_ARGUMENT, `unknown tracer option "${key}"; known options: ${OPTION_NAMES.join(', ')}`)
    }
  }
  if (options.serviceName !== undefined && (typeof options.serviceName !== 'string' || options.serviceName === '')) {
    throw new TracingError(ERR_INVALID_ARGUMENT, 'serviceName must be a non-empty string')
  }
  if (options.sampler !== undefined && typeof options.sampler?.shouldSample !== 'function') {
    throw new TracingError(ERR_INVALID_ARGUMENT, 'sampler must have a shouldSample() method')
  }
  if (options.exporters !== undefined) {
    if (!Array.isArray(options.exporters)) throw new TracingError(ERR_INVALID_ARGUMENT, 'exporters must be an array')
    for (const e of options.exporters) {
      if (e === null || typeof e !== 'object' || typeof e.export !== 'function') {
        throw new TracingError(ERR_INVALID_ARGUMENT, 'each exporter must have export() and shutdown()')
      }
    }
  }
  if (options.processors !== undefined) {
    if (!Array.isArray(options.processors)) throw new TracingError(ERR_INVALID_ARGUMENT, 'processors must be an array')
    for (const p of options.processors) {
      if (p === null || typeof p !== 'object' || typeof p.onEnd !== 'function') {
        throw new TracingError(ERR_INVALID_ARGUMENT, 'each processor must have onStart(), onEnd(), forceFlush() and shutdown()')
      }
    }
  }
  const p = options.propagator
  if (p !== undefined && !isPropagator(p) && !Array.isArray(p)) {
    throw new TracingError(ERR_INVALID_ARGUMENT, 'propagator must be a TextMapPropagator or an array of format names')
  }
}

/**
 * Starts spans. Configure one per process (see createTracer) and share it;
 * getTracer() derives tracers for other instrumentation scopes that share
 * its configuration and processors.
 */
export class Tracer {
  readonly scope: InstrumentationScope
  readonly #pipeline: Pipeline

  constructor(options: TracerOptions = {}, pipeline?: Pipeline) {
    if (pipeline === undefined) {
      validate(options)
      pipeline = new Pipeline(options)
    }
    this.#pipeline = pipeline
    this.scope = options.scope ?? DEFAULT_SCOPE
  }

  get resource(): Resource {
    return this.#pipeline.resource
  }
  get propagator(): TextMapPropagator {
    return this.#pipeline.propagator
  }
  get sampler(): Sampler {
    return this.#pipeline.sampler
  }
  get limits(): SpanLimits {
    return this.#pipeline.limits
  }

  /** A tracer for another instrumentation scope, sharing this one's pipeline. */
  getTracer(name: string, version?: string): Tracer {
    const scope: InstrumentationScope = version === undefined ? { name } : { name, version }
    return new Tracer({ scope }, this.#pipeline)
  }

  /**
   * Starts a span, a child of the active span unless `options.parent` says
   * otherwise. Unsampled spans, spans started while tracing is suppressed or
   * after shutdown, and spans of a tracer without processors are
   * non-recording: their ids still propagate.
   *
   * @example
   * const span = tracer.startSpan('charge card', { kind: SpanKind.CLIENT, attributes: { 'order.id': id } })
   */
  startSpan(name: string, options?: SpanOptions): Span {
    let parent: SpanContext | undefined
    let suppressed = false
    const given = options?.parent
    if (given === undefined) {
      const active = getActiveContext()
      parent = active.span
      suppressed = active.suppressed
    } else if (given !== null) {
      if (isContext(given)) {
        parent = given.span
        suppressed = given.suppressed
      } else parent = given
    }
    // A span of ours is valid by construction, and so is a remote parent
    // with span words (checked as they were read from its hex, see
    // NonRecordingSpan): reading their ids would make hex strings that a span
    // the tracer made makes only on demand, and check a header's ids twice.
    if (parent !== undefined && !(parent instanceof RecordingSpan) && !(parent instanceof NonRecordingSpan && (parent.spanId0 | parent.spanId1) !== 0) &&
      !(isValidTraceId(parent.traceId) && isValidSpanId(parent.spanId))) {
      debug('startSpan(%s): invalid parent ids ignored, starting a new trace', name)
      parent = undefined
    }

    const pipeline = this.#pipeline
    // Level 2 random flag: kept exactly as received from a parent, and set
    // on the trace ids we generate (they are fully random).
    const random = parent === undefined ? TraceFlags.RANDOM : parent.traceFlags & TraceFlags.RANDOM
    const kind = options?.kind ?? SpanKind.INTERNAL
    // A recording root span takes its trace id in its constructor, as words
    // (see RecordingSpan), unless something needs the hex first: a sampler
    // that reads it, or a non-recording span.
    let traceId: string | undefined

    if (suppressed || pipeline.shutDown) {
      return localNonRecordingSpan(parent, undefined, random, parent?.traceState)
    }

    let result: SamplingResult
    const shortcut = pipeline.shortcut
    if (shortcut !== Shortcut.NONE) {
      result = shortcut === Shortcut.ALWAYS || parent === undefined || (parent.traceFlags & TraceFlags.SAMPLED) !== 0 ? RESULT_SAMPLED : RESULT_DROP
    } else {
      if (samplerReadsTraceId(pipeline.sampler, parent)) traceId = traceIdHex(parent)
      result = sample(pipeline.sampler, parent, traceId ?? '', name, kind, options)
    }
    const flags = result.decision === SamplingDecision.RECORD_AND_SAMPLED ? random | TraceFlags.SAMPLED : random
    const traceState = result.traceState ?? parent?.traceState
    if (result.decision === SamplingDecision.DROP || pipeline.processors.length === 0) {
      pipeline.unsampled++
      return localNonRecordingSpan(parent, traceId, flags, traceState)
    }
    pipeline.started++

    // The clock is read here, not in the constructor, so that V8 inlines the
    // constructor: it inlines a call only while the callee, with all it
    // inlines itself, fits in what is left of the caller's budget, and the
    // constructor with Node 20's process.hrtime in it (244 bytes of bytecode)
    // did not fit into this function once it had been compiled on its own.
    // Every span then went through the generic construct path: ~330 more
    // instructions per request (bench/instructions.mjs, Fastify and Koa on
    // Node 20), and in the micro benchmark on Node 20 a span took 10% longer
    // without export, 17% with it. V8 on Node 24 inlines the smaller calls
    // first (the clock, ~280 bytes with Node's hrtime), and the constructor
    // then fitted only once four of its six #private fields were plain ones
    // (see RecordingSpan#traceHex): ~600 instructions per span.
    const start = options?.startTime === undefined ? now() : fromEpochMillis(options.startTime)
    const span = new RecordingSpan(pipeline, this, this.scope, typeof name === 'string' ? name : String(name), kind, parent, traceId, flags, traceState, start)
    if (options?.attributes !== undefined) span.setAttributes(options.attributes)
    if (result.attributes !== undefined) span.setAttributes(result.attributes)
    if (options?.links !== undefined) for (const link of options.links) span.addLink(link)
    const starting = pipeline.starting
    for (let i = 0; i < starting.length; i++) {
      try {
        starting[i]!.onStart(span)
      } catch (err) {
        containError('processor', 'a span processor\'s onStart()', err)
      }
    }
    return span
  }

  /**
   * Runs `fn(span)` with a new span active and ends the span when `fn`
   * returns or its promise settles. A throw or rejection is recorded as an
   * `exception` event with ERROR status, then passed on unchanged.
   *
   * @example
   * const user = await tracer.trace('load user', async (span) => {
   *   span.setAttribute('user.id', id)
   *   return db.users.find(id)
   * })
   */
  trace<R>(name: string, fn: (span: Span) => R, options?: SpanOptions): R {
    const span = this.startSpan(name, options)
    let result: R
    try {
      result = runWithSpan(span, fn, span)
    } catch (err) {
      failSpan(span, err)
      throw err
    }
    if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
      return (result as unknown as PromiseLike<unknown>).then(
        (value) => {
          span.end()
          return value
        },
        (err: unknown) => {
          failSpan(span, err)
          throw err
        },
      ) as R
    }
    span.end()
    return result
  }

  /** Writes `context` (default: the active one) into outgoing headers. */
  inject(carrier: unknown, context: Context = getActiveContext(), setter: Setter = defaultSetter): void {
    this.#pipeline.propagator.inject(context, carrier, setter)
  }

  /** Reads a remote parent (and baggage) from incoming headers into `context` (default: empty). */
  extract(carrier: unknown, context: Context = ROOT_CONTEXT, getter: Getter = defaultGetter): Context {
    try {
      return this.#pipeline.propagator.extract(context, carrier, getter)
    } catch (err) {
      // Our propagators never throw; a user-supplied one might.
      containError('propagator', 'a propagator\'s extract()', err)
      return context
    }
  }

  /**
   * What happened to spans so far: started (recorded), unsampled, and the
   * processors' exported / dropped-by-reason / failure counts, summed.
   */
  stats(): TracerStats {
    const p = this.#pipeline
    const total: TracerStats = {
      started: p.started,
      unsampled: p.unsampled,
      exported: 0,
      dropped: { queueFull: 0, exportFailed: 0, rejected: 0, afterShutdown: 0 },
      exportFailures: 0,
      queued: 0,
      errors: containedErrorCounts(),
    }
    for (const processor of p.processors) {
      const s = processor.stats?.()
      if (s === undefined) continue
      total.exported += s.exported
      total.exportFailures += s.exportFailures
      total.queued += s.queued
      total.dropped.queueFull += s.dropped.queueFull
      total.dropped.exportFailed += s.dropped.exportFailed
      total.dropped.rejected += s.dropped.rejected
      total.dropped.afterShutdown += s.dropped.afterShutdown
    }
    return total
  }

  /** Exports everything finished so far. */
  forceFlush(): Promise<void> {
    return Promise.allSettled(this.#pipeline.processors.map((p) => p.forceFlush())).then(reportRejections)
  }

  /** Flushes and stops every processor. Idempotent; later spans are non-recording. */
  shutdown(): Promise<void> {
    return this.#pipeline.shutdown()
  }
}

/** The new span's trace id as hex: its parent's, or a new one for a root. */
function traceIdHex(parent: SpanContext | undefined): string {
  return parent === undefined ? generateTraceId() : parent.traceId
}

function isContext(value: Context | SpanContext): value is Context {
  // Duck-typed: a Context made by another loaded copy of core is still one.
  return value instanceof Context || ('suppressed' in value && 'baggage' in value)
}

function sample(
  sampler: Sampler,
  parent: SpanContext | undefined,
  traceId: string,
  name: string,
  kind: SpanKind,
  options: SpanOptions | undefined,
): SamplingResult {
  try {
    return sampler.shouldSample(parent, traceId, name, kind, options?.attributes, options?.links)
  } catch (err) {
    // A throwing custom sampler must not break the request: drop the span.
    containError('sampler', `the sampler ${String(sampler)}`, err)
    return RESULT_DROP
  }
}

function failSpan(span: Span, err: unknown): void {
  span.recordException(err)
  span.setStatus(SpanStatusCode.ERROR, err instanceof Error ? err.message : String(err))
  span.end()
}

/**
 * Creates a tracer. It is not made global: call setGlobalTracer() for that
 * (adapters and instrumentations use the global tracer by default).
 *
 * @example
 * const tracer = createTracer({ serviceName: 'checkout', processors: [new SimpleSpanProcessor(exporter)] })
 * setGlobalTracer(tracer)
 */
export function createTracer(options: TracerOptions = {}): Tracer {
  return new Tracer(options)
}

let fallback: Tracer | undefined

/**
 * The tracer set with setGlobalTracer(), shared by every loaded copy of core;
 * without one, a tracer with no processors (ids and propagation work, nothing
 * is recorded).
 */
export function getGlobalTracer(): Tracer {
  return (registry.tracer as Tracer | undefined) ?? (fallback ??= new Tracer({ processors: [] }))
}

/**
 * The global tracer; when none was set, one is created from the environment
 * (OTEL_* variables: OTLP to http://localhost:4318 unless
 * OTEL_TRACES_EXPORTER says otherwise) and made global. This is what lets
 * `app.use(tracing())` work with nothing else configured.
 */
export function ensureGlobalTracer(): Tracer {
  let tracer = registry.tracer as Tracer | undefined
  if (tracer === undefined) {
    tracer = new Tracer({})
    registry.tracer = tracer
  }
  return tracer
}

/**
 * The tracer that made `span`, for instrumentation that continues work on
 * behalf of the same service (a CLIENT span under a SERVER span): in a
 * process hosting several services, each keeps its own resource. Undefined
 * for non-recording spans.
 */
export function tracerOf(span: Span | undefined): Tracer | undefined {
  const tracer = (span as { tracer?: unknown } | undefined)?.tracer
  return tracer instanceof Tracer ? tracer : undefined
}

/** Makes `tracer` the process-wide default; `undefined` clears it. */
export function setGlobalTracer(tracer: Tracer | undefined): void {
  if (tracer !== undefined && !(tracer instanceof Tracer) && typeof (tracer as { startSpan?: unknown })?.startSpan !== 'function') {
    throw new TracingError(ERR_INVALID_ARGUMENT, 'setGlobalTracer() takes a Tracer')
  }
  registry.tracer = tracer
}

/**
 * Writes the active context (or `context`) into outgoing headers with the
 * global tracer's propagator.
 *
 * @example
 * const headers = {}
 * inject(headers)   // { traceparent: '00-…-01' }
 */
export function inject(carrier: unknown, context?: Context, setter?: Setter): void {
  getGlobalTracer().inject(carrier, context, setter)
}

/** Reads incoming headers with the global tracer's propagator. Never throws. */
export function extract(carrier: unknown, context?: Context, getter?: Getter): Context {
  return getGlobalTracer().extract(carrier, context, getter)
}
