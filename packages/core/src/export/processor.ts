import { debug } from '../diag.ts'
import type { ProcessorStats } from './batch.ts'
import type { ReadableSpan, RecordingSpan } from '../span.ts'
import { TraceFlags } from '../types.ts'

/** The outcome of one export call. */
export interface ExportResult {
  readonly ok: boolean
  readonly error?: Error
  /** With ok: spans the backend accepted the request for but rejected (OTLP partial success). */
  readonly rejected?: number
}

/** Sends finished spans somewhere (OTLP, the console, memory). */
export interface SpanExporter {
  /** Exports a batch. Must not throw synchronously; a rejection counts as a failure. */
  export(spans: readonly ReadableSpan[]): Promise<ExportResult>
  /**
   * Optional, for exporters that send OTLP protobuf: exports `spanCount` spans
   * already encoded as an ExportTraceServiceRequest `body`. With it, the batch
   * processor encodes spans soon after they end (a few dozen at a time) and
   * queues bytes rather than span objects (which the garbage collector would
   * otherwise have to promote and trace while they wait), then calls this
   * instead of export(). The body's memory is reused for a later batch once
   * the returned promise settles: an exporter that keeps the bytes longer
   * must copy them.
   */
  readonly exportProtobuf?: ((body: Buffer, spanCount: number) => Promise<ExportResult>) | undefined
  forceFlush?(): Promise<void>
  shutdown(): Promise<void>
}

/** Sees every recording span start and end, and decides when to export. */
export interface SpanProcessor {
  onStart(span: RecordingSpan): void
  onEnd(span: ReadableSpan): void
  forceFlush(): Promise<void>
  shutdown(): Promise<void>
  /** Counters for Tracer#stats(); optional for custom processors. */
  stats?(): ProcessorStats
}

/**
 * Exports each sampled span as soon as it ends, one call per span. Meant for
 * tests and debugging; production wants the batch processor, which keeps the
 * network off the request path. Record-only spans (sampled=0) are never
 * exported.
 */
export class SimpleSpanProcessor implements SpanProcessor {
  readonly #exporter: SpanExporter
  readonly #pending = new Set<Promise<unknown>>()
  #shutdown = false
  #exported = 0
  #failed = 0
  #failures = 0
  #afterShutdown = 0

  constructor(exporter: SpanExporter) {
    this.#exporter = exporter
  }

  /** Nothing to do when a span starts (the tracer then skips the call). */
  onStart(_span: RecordingSpan): void {}

  onEnd(span: ReadableSpan): void {
    if ((span.traceFlags & TraceFlags.SAMPLED) === 0) return
    if (this.#shutdown) {
      this.#afterShutdown++
      return
    }
    let p: Promise<unknown>
    try {
      p = this.#exporter.export([span]).then((r) => this.#count(r), (err: unknown) => this.#count({ ok: false, error: err as Error }))
    } catch (err) {
      this.#count({ ok: false, error: err as Error })
      return
    }
    this.#pending.add(p)
    void p.finally(() => this.#pending.delete(p))
  }

  stats(): ProcessorStats {
    return {
      exported: this.#exported,
      dropped: { queueFull: 0, exportFailed: this.#failed, rejected: 0, afterShutdown: this.#afterShutdown },
      exportFailures: this.#failures,
      queued: 0,
    }
  }

  #count(result: ExportResult): void {
    if (result?.ok === true) {
      this.#exported++
      return
    }
    this.#failed++
    this.#failures++
    debug('span export failed: %o', result?.error)
  }

  async forceFlush(): Promise<void> {
    await Promise.all(this.#pending)
    await this.#exporter.forceFlush?.()
  }

  async shutdown(): Promise<void> {
    if (this.#shutdown) return
    await this.forceFlush()
    this.#shutdown = true
    await this.#exporter.shutdown()
  }
}
