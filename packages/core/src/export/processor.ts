import { debug } from '../diag.ts'
import type { ReadableSpan, RecordingSpan } from '../span.ts'
import { TraceFlags } from '../types.ts'

/** The outcome of one export call. */
export interface ExportResult {
  readonly ok: boolean
  readonly error?: Error
}

/** Sends finished spans somewhere (OTLP, the console, memory). */
export interface SpanExporter {
  /** Exports a batch. Must not throw synchronously; a rejection counts as a failure. */
  export(spans: readonly ReadableSpan[]): Promise<ExportResult>
  forceFlush?(): Promise<void>
  shutdown(): Promise<void>
}

/** Sees every recording span start and end, and decides when to export. */
export interface SpanProcessor {
  onStart(span: RecordingSpan): void
  onEnd(span: ReadableSpan): void
  forceFlush(): Promise<void>
  shutdown(): Promise<void>
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

  constructor(exporter: SpanExporter) {
    this.#exporter = exporter
  }

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if (this.#shutdown || (span.traceFlags & TraceFlags.SAMPLED) === 0) return
    let p: Promise<unknown>
    try {
      p = this.#exporter.export([span]).then(logFailure, logFailure)
    } catch (err) {
      logFailure(err)
      return
    }
    this.#pending.add(p)
    void p.finally(() => this.#pending.delete(p))
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

function logFailure(result: unknown): void {
  if (result !== null && typeof result === 'object' && (result as ExportResult).ok === true) return
  debug('span export failed: %o', result)
}
