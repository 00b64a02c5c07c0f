import type { ReadableSpan } from '../span.ts'
import type { ExportResult, SpanExporter } from './processor.ts'

const OK: ExportResult = Object.freeze({ ok: true })

/**
 * Keeps exported spans in memory, for tests: the spans a test asserts on are
 * the ones the real pipeline (sampler, limits, processor) let through.
 */
export class InMemorySpanExporter implements SpanExporter {
  #spans: ReadableSpan[] = []
  #waiters: { count: number; resolve: () => void }[] = []
  #stopped = false

  export(spans: readonly ReadableSpan[]): Promise<ExportResult> {
    if (this.#stopped) return Promise.resolve({ ok: false, error: new Error('exporter is shut down') })
    for (const span of spans) this.#spans.push(span)
    this.#wake()
    return Promise.resolve(OK)
  }

  /** The spans exported so far, oldest first. */
  getFinishedSpans(): ReadableSpan[] {
    return this.#spans.slice()
  }

  /** Forgets every span exported so far. */
  reset(): void {
    this.#spans = []
  }

  /**
   * Resolves with the spans once at least `count` have been exported; rejects
   * after `timeoutMs` (default 5000) naming how many arrived.
   */
  waitForSpans(count: number, timeoutMs: number = 5000): Promise<ReadableSpan[]> {
    if (this.#spans.length >= count) return Promise.resolve(this.getFinishedSpans())
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter)
        reject(new Error(`waited ${timeoutMs} ms for ${count} spans, got ${this.#spans.length}`))
      }, timeoutMs)
      const waiter = {
        count,
        resolve: () => {
          clearTimeout(timer)
          resolve(this.getFinishedSpans())
        },
      }
      this.#waiters.push(waiter)
    })
  }

  forceFlush(): Promise<void> {
    return Promise.resolve()
  }

  shutdown(): Promise<void> {
    this.#stopped = true
    return Promise.resolve()
  }

  #wake(): void {
    if (this.#waiters.length === 0) return
    const ready = this.#waiters.filter((w) => this.#spans.length >= w.count)
    this.#waiters = this.#waiters.filter((w) => this.#spans.length < w.count)
    for (const w of ready) w.resolve()
  }
}
