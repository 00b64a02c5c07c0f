import { spawn } from 'node:child_process'
import { join } from 'node:path'
import {
  AlwaysOffSampler,
  BatchSpanProcessor,
  createTracer,
  TracingError,
  type ExportResult,
  type ReadableSpan,
  type SpanExporter,
} from '../src/index.ts'
import { startOtlpReceiver } from '../src/testing.ts'
import { sleep } from './helpers.ts'

/** An exporter that records each batch and answers as told. */
class RecordingExporter implements SpanExporter {
  batches: string[][] = []
  answer: () => Promise<ExportResult> = () => Promise.resolve({ ok: true })
  shutdowns = 0
  export(spans: readonly ReadableSpan[]): Promise<ExportResult> {
    this.batches.push(spans.map((s) => s.name))
    return this.answer()
  }
  async shutdown(): Promise<void> {
    this.shutdowns++
  }
}

function setup(options: ConstructorParameters<typeof BatchSpanProcessor>[1] = {}) {
  const exporter = new RecordingExporter()
  const processor = new BatchSpanProcessor(exporter, { env: {}, ...options })
  const tracer = createTracer({ env: {}, processors: [processor] })
  const end = (n: number, prefix = 's'): void => {
    for (let i = 0; i < n; i++) tracer.startSpan(`${prefix}${i}`).end()
  }
  return { exporter, processor, tracer, end }
}

describe('BatchSpanProcessor', () => {
  it('sends a batch as soon as it is full, and the rest after the delay', async () => {
    const { exporter, end, processor } = setup({ maxExportBatchSize: 3, scheduledDelayMillis: 50 })
    end(7)
    await sleep(5)
    expect(exporter.batches).toEqual([['s0', 's1', 's2'], ['s3', 's4', 's5']])
    expect(processor.stats().queued).toBe(1)
    await sleep(100)
    expect(exporter.batches[2]).toEqual(['s6'])
    expect(processor.stats()).toMatchObject({ exported: 7, queued: 0, exportFailures: 0 })
  })

  it('never waits on the request path: onEnd returns while an export hangs', async () => {
    const { exporter, end, tracer } = setup({ maxExportBatchSize: 2, maxQueueSize: 10 })
    exporter.answer = () => new Promise(() => {})
    const t0 = performance.now()
    end(200)
    expect(performance.now() - t0).toBeLessThan(200)
    // one batch in flight, 10 queued, the rest dropped and counted
    expect(exporter.batches).toHaveLength(1)
    const stats = tracer.stats()
    expect(stats.started).toBe(200)
    expect(stats.queued).toBe(10)
    expect(stats.dropped.queueFull).toBe(200 - 2 - 10)
  })

  it('forceFlush and shutdown export everything queued; shutdown is idempotent', async () => {
    const { exporter, end, processor, tracer } = setup({ maxExportBatchSize: 4, scheduledDelayMillis: 60_000 })
    end(10)
    await tracer.forceFlush()
    expect(exporter.batches.flat()).toHaveLength(10)
    end(3, 'late')
    await Promise.all([tracer.shutdown(), tracer.shutdown(), processor.shutdown()])
    expect(exporter.batches.flat()).toHaveLength(13)
    expect(exporter.shutdowns).toBe(1)
    // spans after shutdown are non-recording: nothing reaches the processor
    end(2, 'after')
    expect(exporter.batches.flat()).toHaveLength(13)
  })

  it('counts failed, rejected, thrown and timed-out exports, and keeps going', async () => {
    const { exporter, end, processor } = setup({ maxExportBatchSize: 2, scheduledDelayMillis: 60_000, exportTimeoutMillis: 50 })
    const answers: (() => Promise<ExportResult>)[] = [
      () => Promise.resolve({ ok: false, error: new Error('backend said no') }),
      () => Promise.reject(new Error('exporter bug')),
      () => { throw new Error('sync throw') },
      () => new Promise(() => {}), // never settles: the export timeout ends it
      () => Promise.resolve({ ok: true, rejected: 1 }),
      () => Promise.resolve({ ok: true }),
    ]
    exporter.answer = () => answers.shift()!()
    end(12)
    await processor.forceFlush()
    expect(processor.stats()).toEqual({
      exported: 3,
      dropped: { queueFull: 0, exportFailed: 8, rejected: 1, afterShutdown: 0 },
      exportFailures: 4,
      queued: 0,
    })
  })

  it('never exports unsampled spans', async () => {
    const exporter = new RecordingExporter()
    const tracer = createTracer({ env: {}, sampler: new AlwaysOffSampler(), processors: [new BatchSpanProcessor(exporter, { env: {} })] })
    tracer.startSpan('x').end()
    await tracer.forceFlush()
    expect(exporter.batches).toEqual([])
    expect(tracer.stats()).toMatchObject({ started: 0, unsampled: 1, exported: 0 })
  })

  it('reads OTEL_BSP_* and rejects bad options in code', async () => {
    const exporter = new RecordingExporter()
    const p = new BatchSpanProcessor(exporter, { env: { OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2', OTEL_BSP_SCHEDULE_DELAY: '60000', OTEL_BSP_MAX_QUEUE_SIZE: '3' } })
    const tracer = createTracer({ env: {}, processors: [p] })
    for (let i = 0; i < 6; i++) tracer.startSpan(`e${i}`).end()
    // batch of 2 sent at once; 3 fit the queue; one dropped
    expect(exporter.batches).toEqual([['e0', 'e1']])
    expect(p.stats().dropped.queueFull).toBe(1)
    expect(() => new BatchSpanProcessor(exporter, { maxQueueSize: 0 })).toThrow(TracingError)
    expect(() => new BatchSpanProcessor(exporter, { bogus: 1 } as never)).toThrow(/unknown batch option "bogus"/)
    expect(() => new BatchSpanProcessor({} as never)).toThrow(/exporter/)
  })
})

describe('process lifecycle', () => {
  it('a process with pending spans exits on its own, and beforeExit exports them', async () => {
    const receiver = await startOtlpReceiver()
    try {
      const script = `
        import { createTracer, OtlpHttpExporter } from '@spanline/core'
        const tracer = createTracer({ serviceName: 'short-lived', exporters: [new OtlpHttpExporter({ url: process.env.RECEIVER_URL })] })
        for (let i = 0; i < 3; i++) tracer.startSpan('job ' + i).end()
        // no flush, no shutdown: the batch delay (5 s) has not passed
      `
      const t0 = Date.now()
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        cwd: join(__dirname, '..'),
        env: { ...process.env, RECEIVER_URL: receiver.url },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let stderr = ''
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
      const elapsed = Date.now() - t0
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
      expect(elapsed).toBeLessThan(4000)
      expect((await receiver.waitForSpans(3, 1000)).map((s) => s.name).sort()).toEqual(['job 0', 'job 1', 'job 2'])
    } finally {
      await receiver.close()
    }
  })
})
