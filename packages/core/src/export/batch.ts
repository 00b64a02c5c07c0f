import { debug, warnOnce } from '../diag.ts'
import { envInteger, type Env } from '../env.ts'
import { ERR_INVALID_ARGUMENT, TracingError } from '../errors.ts'
import type { ReadableSpan, RecordingSpan } from '../span.ts'
import { TraceFlags } from '../types.ts'
import { ProtobufSpanQueue, type EncodedBatch } from './otlp/span-queue.ts'
import type { ExportResult, SpanExporter, SpanProcessor } from './processor.ts'

export interface BatchOptions {
  /** Spans waiting for export at most; more are dropped and counted (default 2048, OTEL_BSP_MAX_QUEUE_SIZE). */
  readonly maxQueueSize?: number
  /** Spans per export call at most (default 512, OTEL_BSP_MAX_EXPORT_BATCH_SIZE). */
  readonly maxExportBatchSize?: number
  /** How long a span may wait before its batch is sent (ms, default 5000, OTEL_BSP_SCHEDULE_DELAY). */
  readonly scheduledDelayMillis?: number
  /** How long one export may take before it counts as failed (ms, default 30000, OTEL_BSP_EXPORT_TIMEOUT). */
  readonly exportTimeoutMillis?: number
  readonly env?: Env
}

/** Counters of what happened to the spans that reached a processor. */
export interface ProcessorStats {
  /** Spans handed to the exporter that it reported as delivered. */
  exported: number
  /** Spans lost, by reason. */
  dropped: {
    /** The queue was full (the backend is slower than the app, or down). */
    queueFull: number
    /** The export failed after its retries, or timed out. */
    exportFailed: number
    /** The backend accepted the request but rejected these spans (OTLP partial success). */
    rejected: number
    /** Ended after shutdown(). */
    afterShutdown: number
  }
  /** Export calls that failed (each may carry up to maxExportBatchSize spans). */
  exportFailures: number
  /** Spans waiting in the queue right now. */
  queued: number
}

const OPTION_NAMES = ['maxQueueSize', 'maxExportBatchSize', 'scheduledDelayMillis', 'exportTimeoutMillis', 'env']

function resolve(options: BatchOptions, name: keyof BatchOptions & string, envName: string, fallback: number, env: Env): number {
  const v = options[name]
  if (v !== undefined) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < (name === 'scheduledDelayMillis' ? 0 : 1)) {
      throw new TracingError(ERR_INVALID_ARGUMENT, `batch option ${name} must be a positive integer, got ${String(v)}`)
    }
    return v
  }
  const fromEnv = envInteger(env, envName)
  return fromEnv === undefined || (fromEnv === 0 && name !== 'scheduledDelayMillis') ? fallback : fromEnv
}

/**
 * For a protobuf exporter, ended spans are encoded this many at a time (and
 * whatever is held when a batch leaves), not one by one as they end. Why: on
 * a server, the rest of a request's work (the framework, Node's HTTP stack)
 * evicts the encoder's code and data from the CPU's caches between two
 * spans, and encoding one span from cold caches measured (callgrind's cache
 * simulation, Fastify app) some 200 more L1 instruction misses per request
 * than the instructions themselves; a run of spans misses once. Few enough
 * that the held spans are still young when they go (a young-generation
 * collection copies at most these few; see span-queue.ts for why spans must
 * not wait as objects for a whole batch).
 */
const ENCODE_RUN = 32

const live = new Set<BatchSpanProcessor>()
let exitHookInstalled = false

/**
 * On beforeExit (the event loop ran dry: the app's work is done), export what
 * is queued. Exporting starts network I/O, so Node emits beforeExit again
 * afterwards; with nothing queued the second time, the process exits. One
 * listener for all processors, installed on first use.
 */
function onBeforeExit(): void {
  for (const processor of live) if (processor.stats().queued > 0) void processor.forceFlush()
}

/**
 * Collects ended spans and exports them in batches, off the request path:
 * onEnd() only pushes onto a bounded queue (for an exporter with
 * exportProtobuf(), the spans' OTLP protobuf bytes, encoded a few dozen at a
 * time: see ENCODE_RUN and span-queue.ts). A batch leaves when it is full or
 * when the oldest span has waited scheduledDelayMillis; one export runs at a
 * time. When the queue is full new spans are dropped and counted, never
 * buffered without bound. Timers are unref()ed: tracing never keeps a process
 * alive. No signal handler is installed: call shutdown() from your own
 * SIGTERM handler to export what is queued before exiting.
 */
export class BatchSpanProcessor implements SpanProcessor {
  readonly #exporter: SpanExporter
  readonly #maxQueueSize: number
  readonly #maxBatch: number
  readonly #delay: number
  readonly #timeout: number
  #queue: ReadableSpan[] = []
  /** Set when the exporter takes OTLP protobuf bodies: spans queue as bytes, and #queue stays empty. */
  readonly #encoded: ProtobufSpanQueue | undefined
  /**
   * Spans ended since the last run was encoded onto #encoded: the first
   * #endedCount of these ENCODE_RUN slots. Two fixed arrays, used in turn,
   * rather than a new array per run grown twice on the way to 32: a span
   * ending while a run is encoded goes into the other one.
   */
  #ended: Array<ReadableSpan | undefined> = new Array<ReadableSpan | undefined>(ENCODE_RUN).fill(undefined)
  #endedToo: Array<ReadableSpan | undefined> = new Array<ReadableSpan | undefined>(ENCODE_RUN).fill(undefined)
  #endedCount = 0
  /**
   * How many spans #encoded holds, kept here so that onEnd() counts the
   * queue without reading the queue object (its fields are out of the CPU
   * cache by the time a request ends: measured, the costliest line of onEnd()).
   */
  #held = 0
  #timer: NodeJS.Timeout | undefined = undefined
  #inFlight: Promise<void> | undefined = undefined
  #shutdown: Promise<void> | undefined = undefined
  readonly #stats: ProcessorStats = {
    exported: 0,
    dropped: { queueFull: 0, exportFailed: 0, rejected: 0, afterShutdown: 0 },
    exportFailures: 0,
    queued: 0,
  }

  constructor(exporter: SpanExporter, options: BatchOptions = {}) {
    if (exporter === null || typeof exporter !== 'object' || typeof exporter.export !== 'function') {
      throw new TracingError(ERR_INVALID_ARGUMENT, 'BatchSpanProcessor needs an exporter with export() and shutdown()')
    }
    for (const key of Object.keys(options)) {
      if (!OPTION_NAMES.includes(key)) {
        throw new TracingError(ERR_INVALID_ARGUMENT, `unknown batch option "${key}"; known options: ${OPTION_NAMES.join(', ')}`)
      }
    }
    const env = options.env ?? process.env
    this.#exporter = exporter
    this.#encoded = typeof exporter.exportProtobuf === 'function' ? new ProtobufSpanQueue() : undefined
    this.#maxQueueSize = resolve(options, 'maxQueueSize', 'OTEL_BSP_MAX_QUEUE_SIZE', 2048, env)
    // The spec requires batch <= queue; a larger batch could never fill.
    this.#maxBatch = Math.min(resolve(options, 'maxExportBatchSize', 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512, env), this.#maxQueueSize)
    this.#delay = resolve(options, 'scheduledDelayMillis', 'OTEL_BSP_SCHEDULE_DELAY', 5000, env)
    this.#timeout = resolve(options, 'exportTimeoutMillis', 'OTEL_BSP_EXPORT_TIMEOUT', 30000, env)
    live.add(this)
    if (!exitHookInstalled) {
      exitHookInstalled = true
      process.on('beforeExit', onBeforeExit)
    }
  }

  /** Nothing to do when a span starts (the tracer then skips the call). */
  onStart(_span: RecordingSpan): void {}

  onEnd(span: ReadableSpan): void {
    if ((span.traceFlags & TraceFlags.SAMPLED) === 0) return
    if (this.#shutdown !== undefined) {
      this.#stats.dropped.afterShutdown++
      return
    }
    const queued = this.#size
    if (queued >= this.#maxQueueSize) {
      // One line per process, not per span: losing spans must not be silent,
      // and must not flood the app's logs either. The count is in stats().
      if (this.#stats.dropped.queueFull++ === 0) {
        warnOnce('SPANLINE_QUEUE_FULL', `the span queue is full (${this.#maxQueueSize} spans): the exporter cannot keep up, ` +
          'so new spans are dropped and counted (tracer.stats().dropped.queueFull) until it catches up')
      }
      return
    }
    if (this.#encoded === undefined) this.#queue.push(span)
    else {
      this.#ended[this.#endedCount] = span
      if (++this.#endedCount === ENCODE_RUN) this.#encodeEnded()
    }
    if (queued + 1 >= this.#maxBatch) this.#kick()
    else if (this.#timer === undefined) {
      this.#timer = setTimeout(BatchSpanProcessor.#onTimer, this.#delay, this)
      this.#timer.unref()
    }
  }

  /** Counters since creation (a copy). */
  stats(): ProcessorStats {
    const s = this.#stats
    return { ...s, dropped: { ...s.dropped }, queued: this.#size }
  }

  get #size(): number {
    return this.#encoded === undefined ? this.#queue.length : this.#held + this.#endedCount
  }

  /** Encodes the spans held in #ended onto the protobuf queue, in the order they ended. */
  #encodeEnded(): void {
    const count = this.#endedCount
    if (count === 0) return
    const ended = this.#ended
    this.#ended = this.#endedToo
    this.#endedToo = ended
    this.#endedCount = 0
    const queue = this.#encoded!
    for (let i = 0; i < count; i++) {
      const span = ended[i]!
      // Not kept once encoded: the slot would hold the span (and its request's state) until overwritten.
      ended[i] = undefined
      try {
        queue.push(span)
      } catch (err) {
        // Not thrown into the app (this runs inside some span's end()); counted like a failed export.
        this.#stats.dropped.exportFailed++
        // One warning whatever the error (its text would make each a new one); details in NODE_DEBUG.
        warnOnce('SPANLINE_ENCODE_FAILED', 'a span could not be encoded and was dropped (counted in tracer.stats().dropped.exportFailed); NODE_DEBUG=spanline shows why')
        debug('could not encode a span: %o', err)
      }
    }
    this.#held = queue.length
  }

  /** Exports everything queued now, in batches, and waits for it. */
  async forceFlush(): Promise<void> {
    while (this.#size > 0 || this.#inFlight !== undefined) {
      if (this.#inFlight !== undefined) await this.#inFlight
      else this.#kick()
    }
    await this.#exporter.forceFlush?.()
  }

  /** Exports what is queued, then shuts the exporter down. Safe to call more than once. */
  shutdown(): Promise<void> {
    this.#shutdown ??= this.#doShutdown()
    return this.#shutdown
  }

  async #doShutdown(): Promise<void> {
    live.delete(this)
    try {
      await this.forceFlush()
    } finally {
      if (this.#timer !== undefined) clearTimeout(this.#timer)
      this.#timer = undefined
      await this.#exporter.shutdown()
    }
  }

  /** Timer fired or a batch filled: start an export unless one is running. */
  #kick(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer)
      this.#timer = undefined
    }
    if (this.#inFlight !== undefined || this.#size === 0) return
    let batch: ReadableSpan[] | EncodedBatch
    if (this.#encoded !== undefined) {
      this.#encodeEnded()
      // Every held span failed to encode (each counted): nothing to send.
      if (this.#encoded.length === 0) return
      batch = this.#encoded.take(this.#maxBatch)
      this.#held = this.#encoded.length
    }
    else if (this.#queue.length <= this.#maxBatch) {
      // The common case: hand over the whole array, no copy.
      batch = this.#queue
      this.#queue = []
    } else {
      batch = this.#queue.splice(0, this.#maxBatch)
    }
    this.#inFlight = this.#export(batch).finally(() => {
      this.#inFlight = undefined
      // More spans arrived meanwhile: a full batch goes now, a partial one
      // waits for the delay like any other.
      const size = this.#size
      if (size >= this.#maxBatch) this.#kick()
      else if (size > 0 && this.#timer === undefined && this.#shutdown === undefined) {
        this.#timer = setTimeout(BatchSpanProcessor.#onTimer, this.#delay, this)
        this.#timer.unref()
      }
    })
  }

  async #export(batch: ReadableSpan[] | EncodedBatch): Promise<void> {
    const count = Array.isArray(batch) ? batch.length : batch.count
    let timer: NodeJS.Timeout | undefined
    // The Error is made only if the timeout fires: capturing its stack on
    // every export measured as much CPU as the rest of the export's bookkeeping.
    const timeout = new Promise<ExportResult>((resolve) => {
      timer = setTimeout(BatchSpanProcessor.#onExportTimeout, this.#timeout, resolve, this.#timeout)
      timer.unref()
    })
    let result: ExportResult
    try {
      // exportProtobuf exists: #encoded (which made this batch) is only set when it does.
      let exporting: Promise<ExportResult>
      if (Array.isArray(batch)) exporting = this.#exporter.export(batch)
      else {
        exporting = this.#exporter.exportProtobuf!(batch.body, count)
        // The body's memory is reused once this export settles, not when the
        // race below does: a timed-out export may still be sending it.
        const queue = this.#encoded!
        const body = batch.body
        const recycle = (): void => queue.recycle(body)
        void Promise.resolve(exporting).then(recycle, recycle)
      }
      result = await Promise.race([exporting, timeout])
    } catch (err) {
      result = { ok: false, error: err instanceof Error ? err : new Error(String(err)) }
    } finally {
      clearTimeout(timer)
    }
    if (result.ok) {
      const rejected = Math.min(result.rejected ?? 0, count)
      this.#stats.exported += count - rejected
      this.#stats.dropped.rejected += rejected
    } else {
      this.#stats.exportFailures++
      this.#stats.dropped.exportFailed += count
      debug('export of %d spans failed: %s', count, result.error?.message)
    }
  }

  static #onExportTimeout(resolve: (result: ExportResult) => void, ms: number): void {
    resolve({ ok: false, error: new Error(`export timed out after ${ms} ms`) })
  }

  /** The timer callback: static, so no closure is made per batch. */
  static #onTimer(processor: BatchSpanProcessor): void {
    processor.#timer = undefined
    processor.#kick()
  }
}
