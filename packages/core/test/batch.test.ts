import { spawn } from 'node:child_process'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
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
import { decodeTraceRequest, type OtlpJson } from '../src/export/otlp/decode.ts'
import { encodeProtobuf } from '../src/export/otlp/protobuf.ts'
import { startOtlpReceiver } from '../src/testing.ts'
import { sleep } from './helpers.ts'

/** An exporter that records each batch (span names) and answers as told. */
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

function namesIn(request: OtlpJson): string[] {
  const names: string[] = []
  for (const rs of (request.resourceSpans ?? []) as OtlpJson[]) {
    for (const ss of rs.scopeSpans as OtlpJson[]) for (const span of ss.spans as OtlpJson[]) names.push(span.name as string)
  }
  return names
}

/**
 * The same, taking OTLP protobuf bodies (as OtlpHttpExporter does): the
 * processor then queues encoded spans. export() must never be called.
 */
class ProtobufRecordingExporter extends RecordingExporter {
  bodies: Buffer[] = []
  override export(): Promise<ExportResult> {
    throw new Error('export() called on an exporter that takes protobuf bodies')
  }
  exportProtobuf = (body: Buffer, count: number): Promise<ExportResult> => {
    const names = namesIn(decodeTraceRequest(body))
    if (names.length !== count) throw new Error(`body holds ${names.length} spans, told ${count}`)
    // A copy: the body's memory is reused once this export settles.
    this.bodies.push(Buffer.from(body))
    this.batches.push(names)
    return this.answer()
  }
}

const QUEUES = [
  ['span objects (export)', RecordingExporter],
  ['protobuf bytes (exportProtobuf)', ProtobufRecordingExporter],
] as const

describe.each(QUEUES)('BatchSpanProcessor, queueing %s', (_kind, Exporter) => {
function setup(options: ConstructorParameters<typeof BatchSpanProcessor>[1] = {}) {
  const exporter = new Exporter()
  const processor = new BatchSpanProcessor(exporter, { env: {}, ...options })
  const tracer = createTracer({ env: {}, processors: [processor] })
  const end = (n: number, prefix = 's'): void => {
    for (let i = 0; i < n; i++) tracer.startSpan(`${prefix}${i}`).end()
  }
  return { exporter, processor, tracer, end }
}

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
    const exporter = new Exporter()
    const tracer = createTracer({ env: {}, sampler: new AlwaysOffSampler(), processors: [new BatchSpanProcessor(exporter, { env: {} })] })
    tracer.startSpan('x').end()
    await tracer.forceFlush()
    expect(exporter.batches).toEqual([])
    expect(tracer.stats()).toMatchObject({ started: 0, unsampled: 1, exported: 0 })
  })

  it('reads OTEL_BSP_* and rejects bad options in code', async () => {
    const exporter = new Exporter()
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

describe('createTracer with both processors and exporters', () => {
  it('uses both: the exporters get batch processors after the given processors', async () => {
    const viaProcessor = new RecordingExporter()
    const viaExporter = new RecordingExporter()
    const tracer = createTracer({ env: {}, processors: [new BatchSpanProcessor(viaProcessor, { env: {} })], exporters: [viaExporter] })
    tracer.startSpan('both').end()
    await tracer.forceFlush()
    expect(viaProcessor.batches).toEqual([['both']])
    expect(viaExporter.batches).toEqual([['both']])
  })
})

/** An exporter that keeps the span objects of every batch, in order (the reference for the bytes). */
function spanObjectsExporter(): { objects: RecordingExporter; spansSeen: ReadableSpan[] } {
  const objects = new RecordingExporter()
  const spansSeen: ReadableSpan[] = []
  objects.export = (spans) => {
    spansSeen.push(...spans)
    return Promise.resolve({ ok: true })
  }
  return { objects, spansSeen }
}

describe('BatchSpanProcessor with an exporter that takes protobuf bodies', () => {
  it('sends the same request bytes as encoding the span objects at export', async () => {
    const { objects, spansSeen } = spanObjectsExporter()
    const bytes = new ProtobufRecordingExporter()
    const processors = [new BatchSpanProcessor(objects, { env: {}, maxExportBatchSize: 1000 }), new BatchSpanProcessor(bytes, { env: {}, maxExportBatchSize: 1000 })]
    const tracer = createTracer({ env: {}, serviceName: 'svc', processors })
    const other = tracer.getTracer('other', '2.0.0')
    for (let i = 0; i < 20; i++) {
      const span = (i % 3 === 0 ? other : tracer).startSpan(`op ${i}`, { attributes: { i, 'http.request.method': 'GET' } })
      if (i % 5 === 0) span.addEvent('tick', { n: i })
      span.end()
    }
    await tracer.forceFlush()
    expect(bytes.bodies).toHaveLength(1)
    expect(spansSeen).toHaveLength(20)
    expect(bytes.bodies[0]!.equals(encodeProtobuf(spansSeen))).toBe(true)
  })

  it('keeps the order and count of spans encoded a run at a time, across runs, batches and flushes', async () => {
    // Spans are encoded a few dozen at a time (ENCODE_RUN, 32), and whatever
    // is held when a batch leaves: 150 spans in batches of 50, with flushes
    // and timer-driven exports partway through runs.
    const { objects, spansSeen } = spanObjectsExporter()
    const bytes = new ProtobufRecordingExporter()
    const options = { env: {}, maxExportBatchSize: 50, scheduledDelayMillis: 20 }
    const processors = [new BatchSpanProcessor(objects, options), new BatchSpanProcessor(bytes, options)]
    const tracer = createTracer({ env: {}, serviceName: 'svc', processors })
    const end = (from: number, to: number): void => {
      for (let i = from; i < to; i++) tracer.startSpan(`op ${i}`, { attributes: { 'http.request.method': 'GET', 'url.path': `/${i}` } }).end()
    }
    end(0, 45)
    expect(tracer.stats().queued).toBe(90) // 45 in each processor, bytes or not yet encoded
    end(45, 70)
    await tracer.forceFlush()
    end(70, 75)
    await sleep(60) // the delay passes: 5 held spans go without a full run
    end(75, 150)
    await tracer.forceFlush()
    const names = Array.from({ length: 150 }, (_, i) => `op ${i}`)
    expect(bytes.batches.flat()).toEqual(names)
    expect(spansSeen.map((s) => s.name)).toEqual(names)
    expect(bytes.batches.map((b) => b.length)).toEqual([50, 20, 5, 50, 25])
    let at = 0
    for (const body of bytes.bodies) {
      const count = namesIn(decodeTraceRequest(body)).length
      expect(body.equals(encodeProtobuf(spansSeen.slice(at, at + count)))).toBe(true)
      at += count
    }
    expect(tracer.stats()).toMatchObject({ exported: 300, queued: 0, dropped: { exportFailed: 0 } })
  })

  it('reuses a body\'s memory only once its export has settled, even after the export timed out', async () => {
    const bodies: Buffer[] = []
    const copies: Buffer[] = []
    const settle: (() => void)[] = []
    const exporter: SpanExporter = {
      export: () => Promise.reject(new Error('export() called')),
      // Each export hangs until told; the first one past the processor's timeout.
      exportProtobuf: (body) => {
        bodies.push(body)
        copies.push(Buffer.from(body))
        return new Promise((resolve) => settle.push(() => resolve({ ok: true })))
      },
      shutdown: async () => {},
    }
    const processor = new BatchSpanProcessor(exporter, { env: {}, maxExportBatchSize: 30, scheduledDelayMillis: 60_000, exportTimeoutMillis: 30 })
    const tracer = createTracer({ env: {}, processors: [processor] })
    // Spans of ~1 KiB: 30 of them make a body big enough to be recycled.
    const batch = (tag: string): void => {
      for (let i = 0; i < 30; i++) tracer.startSpan(`${tag}${i}`, { attributes: { blob: tag.repeat(1000) } }).end()
    }
    batch('a')
    await sleep(60) // the first export timed out for the processor, but is still sending its body
    batch('b')
    await sleep(5)
    expect(bodies).toHaveLength(2)
    expect(bodies[1]!.buffer).not.toBe(bodies[0]!.buffer)
    settle[1]!() // the second export settles: its memory may be reused
    await sleep(5)
    batch('c')
    await sleep(5)
    expect(bodies).toHaveLength(3)
    expect(bodies[2]!.buffer).toBe(bodies[1]!.buffer)
    // The first body, still held by its hung export, was never written over.
    expect(bodies[0]!.equals(copies[0]!)).toBe(true)
    expect(namesIn(decodeTraceRequest(bodies[0]!))[0]).toBe('a0')
    expect(namesIn(decodeTraceRequest(bodies[2]!))[0]).toBe('c0')
    settle[0]!()
    settle[2]!()
    await processor.shutdown()
  })

  it('drops and counts a span that cannot be encoded, without throwing into end()', async () => {
    const exporter = new ProtobufRecordingExporter()
    const processor = new BatchSpanProcessor(exporter, { env: {}, scheduledDelayMillis: 60_000 })
    const tracer = createTracer({ env: {}, processors: [processor] })
    tracer.startSpan('before').end()
    // A span object whose fields throw when read (a foreign or broken ReadableSpan).
    const broken = new Proxy({ traceFlags: 1 }, {
      get(target, key) {
        if (key === 'traceFlags') return target.traceFlags
        throw new Error(`cannot read ${String(key)}`)
      },
    }) as unknown as ReadableSpan
    const warnings: string[] = []
    const onDiagnostic = (d: unknown): void => {
      warnings.push((d as { code: string }).code)
    }
    subscribe('spanline:diagnostic', onDiagnostic)
    try {
      expect(() => processor.onEnd(broken)).not.toThrow()
      tracer.startSpan('after').end()
      await processor.forceFlush()
      // The same in the middle of a run that fills (encoded inside some other span's end()).
      for (let i = 0; i < 40; i++) {
        if (i === 10) expect(() => processor.onEnd(broken)).not.toThrow()
        else tracer.startSpan(`run ${i}`).end()
      }
      await processor.forceFlush()
    } finally {
      unsubscribe('spanline:diagnostic', onDiagnostic)
    }
    const run = Array.from({ length: 40 }, (_, i) => `run ${i}`).filter((name) => name !== 'run 10')
    expect(exporter.batches).toEqual([['before', 'after'], run])
    expect(processor.stats()).toMatchObject({ exported: 41, dropped: { exportFailed: 2 }, queued: 0 })
    expect(warnings).toContain('SPANLINE_ENCODE_FAILED')
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
