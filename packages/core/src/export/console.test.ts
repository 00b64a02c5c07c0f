import { runWithSpan } from '../context.ts'
import { TracingError } from '../errors.ts'
import { remoteSpan, type Span } from '../span.ts'
import { createTracer, type Tracer } from '../tracer.ts'
import { SpanKind, SpanStatusCode } from '../types.ts'
import { ConsoleSpanExporter, type ConsoleExporterOptions } from './console.ts'
import { SimpleSpanProcessor } from './processor.ts'

const T = Date.UTC(2025, 0, 15, 9, 30, 0)
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A stream that records what is written, as a pipe would (no TTY) unless told. */
class FakeStream {
  readonly chunks: string[] = []
  isTTY: boolean | undefined
  columns: number | undefined
  constructor(isTTY?: boolean, columns?: number) {
    this.isTTY = isTTY
    this.columns = columns
  }
  write(chunk: string): boolean {
    this.chunks.push(chunk)
    return true
  }
  get text(): string {
    return this.chunks.join('')
  }
}

function setup(options: ConsoleExporterOptions = {}, stream = new FakeStream()): {
  exporter: ConsoleSpanExporter
  stream: FakeStream
  tracer: (service?: string) => Tracer
} {
  const exporter = new ConsoleSpanExporter({ stream, quietPeriodMs: 20, env: {}, ...options })
  const tracers = new Map<string, Tracer>()
  const tracer = (service = 'svc'): Tracer => {
    let t = tracers.get(service)
    if (t === undefined) {
      t = createTracer({ env: {}, serviceName: service, processors: [new SimpleSpanProcessor(exporter)] })
      tracers.set(service, t)
    }
    return t
  }
  return { exporter, stream, tracer }
}

/** Ends a span `ms` after T: explicit times keep the output deterministic. */
function endAt(span: Span, ms: number): void {
  span.end(T + ms)
}

describe('ConsoleSpanExporter', () => {
  it('prints a trace once, after the quiet period that follows its root', async () => {
    const { stream, tracer } = setup()
    const t = tracer()
    const root = t.startSpan('GET /users/:id', { kind: SpanKind.SERVER, startTime: T, parent: null })
    runWithSpan(root, () => endAt(t.startSpan('db.query', { startTime: T + 1 }), 5))
    await sleep(40)
    expect(stream.chunks).toEqual([]) // the root has not ended
    endAt(root, 10)
    expect(stream.chunks).toEqual([])
    await sleep(60)
    expect(stream.chunks).toHaveLength(1)
    const lines = stream.text.split('\n')
    expect(lines[0]).toBe('')
    expect(lines[1]).toMatch(new RegExp(`^trace ${root.traceId} · svc GET /users/:id · 10\\.0 ms · 2 spans · started 2025-01-15T09:30:00\\.000Z$`))
    expect(lines[3]).toMatch(/^svc +← GET \/users\/:id +10\.0 ms │/)
    expect(lines[4]).toMatch(/^svc +└─ db\.query +4\.00 ms │/)
    expect(lines.at(-1)).toBe('')
    await sleep(40)
    expect(stream.chunks).toHaveLength(1)
  })

  it('restarts the quiet period on each span: a fire-and-forget child ending just after the root joins the block', async () => {
    const { stream, tracer } = setup({ quietPeriodMs: 150 })
    const t = tracer()
    const root = t.startSpan('POST /signup', { startTime: T, parent: null })
    const email = runWithSpan(root, () => t.startSpan('send welcome email', { startTime: T + 5 }))
    endAt(root, 10)
    await sleep(100)
    endAt(email, 30)
    await sleep(100)
    expect(stream.chunks).toEqual([]) // 200 ms after the root, but only 100 after the last span
    await sleep(150)
    expect(stream.chunks).toHaveLength(1)
    expect(stream.text).toContain('└─ send welcome email')
  })

  it('waits for the local root when a sibling service in the process ends a SERVER span first', async () => {
    const { stream, tracer } = setup()
    const gateway = tracer('gateway').startSpan('POST /checkout', { kind: SpanKind.SERVER, startTime: T, parent: null })
    const call = tracer('gateway').startSpan('POST auth', { kind: SpanKind.CLIENT, startTime: T + 1, parent: gateway })
    const parent = remoteSpan(call.traceId, call.spanId, call.traceFlags, undefined)
    endAt(tracer('auth').startSpan('POST /verify', { kind: SpanKind.SERVER, startTime: T + 2, parent }), 8)
    endAt(call, 9)
    await sleep(60) // well past the quiet period: the gateway is still handling the request
    expect(stream.chunks).toEqual([])
    endAt(gateway, 100)
    await sleep(60)
    expect(stream.chunks).toHaveLength(1)
    expect(stream.text).toMatch(/gateway +← POST \/checkout[^\n]*\ngateway +└→ POST auth[^\n]*\nauth +└← POST \/verify/)
  })

  it('prints a trace that continues a remote caller once its SERVER span ends', async () => {
    const { stream, tracer } = setup()
    const parent = remoteSpan('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', 1, undefined)
    endAt(tracer('api').startSpan('GET /health', { kind: SpanKind.SERVER, startTime: T, parent }), 3)
    await sleep(60)
    expect(stream.text).toContain('trace 4bf92f3577b34da6a3ce929d0e0e4736 · api GET /health · 3.00 ms · 1 span')
    expect(stream.text).toContain('← GET /health (parent 00f067aa0ba902b7 remote)')
  })

  it('prints spans that arrive after their trace as a continuation block', async () => {
    const { stream, tracer } = setup()
    const t = tracer()
    const root = t.startSpan('POST /upload', { startTime: T, parent: null })
    const late = runWithSpan(root, () => t.startSpan('virus scan', { startTime: T + 5 }))
    endAt(root, 10)
    await sleep(60)
    expect(stream.chunks).toHaveLength(1)
    endAt(late, 500)
    await sleep(60)
    expect(stream.chunks).toHaveLength(2)
    const block = stream.chunks[1]!.split('\n')
    expect(block[1]).toBe(`… trace ${root.traceId} continued: 1 late span · 495 ms · started 2025-01-15T09:30:00.005Z`)
    expect(block[3]).toMatch(new RegExp(`^svc +─ virus scan \\(parent ${root.spanId} printed above\\) +495 ms │█{40}│$`))
  })

  it('prints everything buffered on forceFlush, finished or not, and refuses spans after shutdown', async () => {
    const { stream, tracer, exporter } = setup({ quietPeriodMs: 10_000 })
    const t = tracer()
    const open = t.startSpan('long job', { startTime: T, parent: null })
    runWithSpan(open, () => endAt(t.startSpan('step 1', { startTime: T + 1 }), 2))
    const done = t.startSpan('quick', { startTime: T, parent: null })
    endAt(done, 1)
    expect(stream.chunks).toEqual([])
    await t.forceFlush()
    expect(stream.chunks).toHaveLength(2)
    expect(stream.chunks[0]).toContain(`trace ${open.traceId} · svc step 1`)
    expect(stream.chunks[0]).toContain(`step 1 (parent ${open.spanId} not ended)`)
    expect(stream.chunks[1]).toContain(`trace ${done.traceId} · svc quick`)

    endAt(t.startSpan('pending at shutdown', { startTime: T, parent: null }), 1)
    await exporter.shutdown()
    expect(stream.chunks).toHaveLength(3)
    expect(stream.chunks[2]).toContain('pending at shutdown')
    const result = await exporter.export([])
    expect(result.ok).toBe(false)
    endAt(open, 5) // the span reaches the exporter, which ignores it
    await exporter.forceFlush()
    expect(stream.chunks).toHaveLength(3)
  })

  it('prints interleaved traces separately, each whole', async () => {
    const { stream, tracer } = setup()
    const t = tracer()
    const a = t.startSpan('trace A', { startTime: T, parent: null })
    const b = t.startSpan('trace B', { startTime: T, parent: null })
    for (let i = 0; i < 3; i++) {
      endAt(t.startSpan(`A step ${i}`, { parent: a, startTime: T + i }), i + 1)
      endAt(t.startSpan(`B step ${i}`, { parent: b, startTime: T + i }), i + 1)
    }
    endAt(b, 5)
    endAt(a, 6)
    await sleep(60)
    expect(stream.chunks).toHaveLength(2)
    const [first, second] = stream.chunks as [string, string]
    expect(first).toContain(`trace ${b.traceId} · svc trace B · 5.00 ms · 4 spans`)
    expect(first).not.toContain('A step')
    expect(second).toContain(`trace ${a.traceId} · svc trace A · 6.00 ms · 4 spans`)
    expect(second).not.toContain('B step')
    expect(second.match(/A step/g)).toHaveLength(3)
  })

  it('prints a trace whose root never ends after maxWaitMs', async () => {
    const { stream, tracer } = setup({ maxWaitMs: 200 })
    const t = tracer()
    const loop = t.startSpan('worker loop', { startTime: T, parent: null })
    runWithSpan(loop, () => endAt(t.startSpan('job 1', { startTime: T + 1 }), 2))
    await sleep(60)
    expect(stream.chunks).toEqual([])
    await sleep(250)
    expect(stream.chunks).toHaveLength(1)
    expect(stream.text).toContain(`job 1 (parent ${loop.spanId} not ended)`)
  })

  it('bounds the buffer: drops spans beyond maxTraces and maxSpansPerTrace, and says so', async () => {
    const { stream, tracer, exporter } = setup({ maxTraces: 2, maxSpansPerTrace: 3, quietPeriodMs: 10_000 })
    const t = tracer()
    const roots = [0, 1, 2].map((i) => t.startSpan(`root ${i}`, { startTime: T, parent: null }))
    for (const root of roots) for (let i = 0; i < 4; i++) endAt(t.startSpan(`child ${i}`, { parent: root, startTime: T }), 1)
    await exporter.forceFlush()
    expect(stream.chunks).toHaveLength(2)
    expect(stream.chunks[0]).toContain('· 3 spans ·')
    expect(stream.chunks[0]).not.toContain('child 3')
    expect(stream.chunks[0]).toContain('1 more spans of this trace were dropped: at most 3 are buffered per trace')
    expect(stream.chunks[0]).toContain('4 spans of other traces were dropped: at most 2 traces are buffered')
    expect(stream.chunks[1]).not.toContain('other traces')
  })

  it('caps the lines of a huge trace', async () => {
    const { stream, tracer, exporter } = setup({ maxLines: 30 })
    const t = tracer()
    const root = t.startSpan('import', { startTime: T, parent: null })
    for (let i = 0; i < 1000; i++) endAt(t.startSpan('db.insert', { parent: root, startTime: T + i }), i + 1)
    endAt(root, 1000)
    await exporter.forceFlush()
    const lines = stream.text.trim().split('\n')
    expect(lines.length).toBeLessThanOrEqual(30)
    expect(stream.text).toContain('└… 1000 × db.insert (avg 1.00 ms, max 1.00 ms)')
  })

  describe('colours', () => {
    const flushed = async (stream: FakeStream, options: ConsoleExporterOptions): Promise<string> => {
      const { tracer, exporter } = setup(options, stream)
      const span = tracer().startSpan('failing', { startTime: T, parent: null })
      span.setStatus(SpanStatusCode.ERROR, 'boom')
      endAt(span, 1)
      await exporter.forceFlush()
      return stream.text
    }

    it('are on for a TTY and never go into pipes or files', async () => {
      expect(await flushed(new FakeStream(true), {})).toContain('\x1b[')
      expect(await flushed(new FakeStream(), {})).not.toContain('\x1b')
      expect(await flushed(new FakeStream(false), {})).not.toContain('\x1b')
    })

    it('follow NO_COLOR, FORCE_COLOR, TERM=dumb and the colors option', async () => {
      expect(await flushed(new FakeStream(true), { env: { NO_COLOR: '1' } })).not.toContain('\x1b')
      expect(await flushed(new FakeStream(true), { env: { NO_COLOR: '' } })).toContain('\x1b[')
      expect(await flushed(new FakeStream(true), { env: { TERM: 'dumb' } })).not.toContain('\x1b')
      expect(await flushed(new FakeStream(false), { env: { FORCE_COLOR: '1' } })).toContain('\x1b[')
      expect(await flushed(new FakeStream(true), { env: { FORCE_COLOR: '0', NO_COLOR: '' } })).not.toContain('\x1b')
      expect(await flushed(new FakeStream(true), { colors: false })).not.toContain('\x1b')
      expect(await flushed(new FakeStream(false), { colors: true })).toContain('\x1b[')
    })
  })

  it('fits a TTY to its width', async () => {
    const stream = new FakeStream(true, 90)
    const { tracer, exporter } = setup({ colors: false }, stream)
    const root = tracer().startSpan('a span with a rather long name that would not fit otherwise '.repeat(2), { startTime: T, parent: null })
    endAt(tracer().startSpan('child', { parent: root, startTime: T }), 1)
    endAt(root, 2)
    await exporter.forceFlush()
    for (const line of stream.text.split('\n')) expect(line.length).toBeLessThanOrEqual(89)
  })

  it('never throws into the app when the stream fails', async () => {
    const stream = { write: (): never => { throw new Error('EPIPE') } }
    const { tracer, exporter } = setup({ stream })
    endAt(tracer().startSpan('x', { startTime: T, parent: null }), 1)
    await expect(exporter.forceFlush()).resolves.toBeUndefined()
  })

  it('rejects bad options at construction', () => {
    expect(() => new ConsoleSpanExporter({ maxLines: 0 })).toThrow(TracingError)
    expect(() => new ConsoleSpanExporter({ quietPeriodMs: -1 })).toThrow(/quietPeriodMs must be a non-negative number/)
    expect(() => new ConsoleSpanExporter({ stream: {} as never })).toThrow(/write\(string\)/)
    expect(() => new ConsoleSpanExporter({ colour: true } as never)).toThrow(/unknown console exporter option "colour"/)
  })
})
