import { runWithSpan } from '../context.ts'
import { remoteSpan, type ReadableSpan, type Span } from '../span.ts'
import { createTracer, type Tracer } from '../tracer.ts'
import { SpanKind, SpanStatusCode } from '../types.ts'
import { InMemorySpanExporter } from './memory.ts'
import { SimpleSpanProcessor } from './processor.ts'
import { barCells, formatDuration, renderWaterfall } from './waterfall.ts'

/** A fixed Unix time, so the printed start time is stable too. */
const T = Date.UTC(2025, 0, 15, 9, 30, 0)
const ANSI = /\x1b\[[0-9;]*m/g

class PaymentDeclinedError extends Error {
  override name = 'PaymentDeclinedError'
}

/** Tracers for several services, all exporting into one memory exporter. */
function services(): { tracer: (service: string) => Tracer; spans: () => ReadableSpan[] } {
  const exporter = new InMemorySpanExporter()
  const tracers = new Map<string, Tracer>()
  return {
    tracer(service) {
      let t = tracers.get(service)
      if (t === undefined) {
        t = createTracer({ env: {}, serviceName: service, processors: [new SimpleSpanProcessor(exporter)] })
        tracers.set(service, t)
      }
      return t
    },
    spans: () => exporter.getFinishedSpans(),
  }
}

/** The bar of a span line: between the last two │ of the line. */
function barOf(line: string): string {
  return line.slice(line.lastIndexOf('│', line.length - 2) + 1, -1)
}

/** The first span line (after the two header lines) containing `needle`. */
function lineWith(text: string, needle: string): string {
  const line = text.split('\n').slice(2).find((l) => l.includes(needle))
  if (line === undefined) throw new Error(`no line with ${JSON.stringify(needle)} in:\n${text}`)
  return line
}

/** A realistic checkout through five services in one process, the payment declined. */
function checkoutTrace(): ReadableSpan[] {
  const { tracer, spans } = services()
  const open = (service: string, name: string, kind: SpanKind, at: number, parent: Span | null, remote = false): Span =>
    tracer(service).startSpan(name, {
      kind,
      startTime: T + at,
      // A SERVER span continues its caller from headers: a remote parent.
      parent: parent !== null && remote ? remoteSpan(parent.traceId, parent.spanId, parent.traceFlags, undefined) : parent,
    })
  const end = (span: Span, at: number, status?: number): void => {
    if (status !== undefined) span.setAttribute('http.response.status_code', status)
    span.end(T + at)
  }
  const gateway = open('gateway', 'POST /checkout', SpanKind.SERVER, 0, null)
  const authCall = open('gateway', 'POST auth', SpanKind.CLIENT, 2, gateway)
  const verify = open('auth', 'POST /verify', SpanKind.SERVER, 4, authCall, true)
  end(open('auth', 'jwt.verify', SpanKind.INTERNAL, 6, verify), 9)
  end(verify, 22, 200)
  end(authCall, 24, 200)
  const ordersCall = open('gateway', 'POST orders', SpanKind.CLIENT, 26, gateway)
  const orders = open('orders', 'POST /orders', SpanKind.SERVER, 28, ordersCall, true)
  end(open('orders', 'SELECT cart', SpanKind.CLIENT, 30, orders), 42)
  const reserveCall = open('orders', 'POST inventory', SpanKind.CLIENT, 44, orders)
  const reserve = open('inventory', 'POST /reserve', SpanKind.SERVER, 46, reserveCall, true)
  end(open('inventory', 'UPDATE stock', SpanKind.CLIENT, 50, reserve), 74)
  end(reserve, 78, 200)
  end(reserveCall, 80, 200)
  const payCall = open('orders', 'POST payment', SpanKind.CLIENT, 82, orders)
  const charge = open('payment', 'POST /charge', SpanKind.SERVER, 84, payCall, true)
  end(open('payment', 'SELECT card', SpanKind.CLIENT, 86, charge), 90)
  charge.recordException(new PaymentDeclinedError('card declined'), T + 595)
  charge.setStatus(SpanStatusCode.ERROR, 'card declined')
  end(charge, 596, 402)
  payCall.setStatus(SpanStatusCode.ERROR) // a CLIENT span fails on 4xx (HTTP semconv)
  end(payCall, 600, 402)
  const releaseCall = open('orders', 'POST inventory', SpanKind.CLIENT, 601, orders)
  end(open('inventory', 'POST /release', SpanKind.SERVER, 602, releaseCall, true), 609, 200)
  end(releaseCall, 610, 200)
  end(orders, 612, 402)
  ordersCall.setStatus(SpanStatusCode.ERROR)
  end(ordersCall, 615, 402)
  end(gateway, 620, 402)
  return spans()
}

const CHECKOUT = `
trace TRACE_ID · gateway POST /checkout · 620 ms · 15 spans · started 2025-01-15T09:30:00.000Z
service    span  (← server, → client)        duration 0                 310 ms            620 ms
gateway    ← POST /checkout              402   620 ms │████████████████████████████████████████│
gateway    ├→ POST auth                  200  22.0 ms │██                                      │
auth       │  └← POST /verify            200  18.0 ms │█                                       │
auth       │     └─ jwt.verify                3.00 ms │█                                       │
gateway    └→ POST orders              ✗ 402   589 ms │  ██████████████████████████████████████│
orders        └← POST /orders            402   584 ms │  █████████████████████████████████████ │
orders           ├→ SELECT cart               12.0 ms │  █                                     │
orders           ├→ POST inventory       200  36.0 ms │   ██                                   │
inventory        │  └← POST /reserve     200  32.0 ms │   ██                                   │
inventory        │     └→ UPDATE stock        24.0 ms │   ██                                   │
orders           ├→ POST payment       ✗ 402   518 ms │     ██████████████████████████████████ │
payment          │  └← POST /charge    ✗ 402   512 ms │     █████████████████████████████████  │
                 │     │ ✗ PaymentDeclinedError: card declined
payment          │     └→ SELECT card         4.00 ms │      █                                 │
orders           └→ POST inventory       200  9.00 ms │                                       █│
inventory           └← POST /release     200  7.00 ms │                                       █│
bottleneck: payment POST /charge 508 ms self time, 82% of the trace`.slice(1)

describe('renderWaterfall', () => {
  it('renders the checkout trace exactly (the visual check)', () => {
    const spans = checkoutTrace()
    const text = renderWaterfall(spans)
    expect(text.replace(spans[0]!.traceId, 'TRACE_ID')).toBe(CHECKOUT)
  })

  it('prints the tree: children under their parent by start time, indented with guides', () => {
    const { tracer, spans } = services()
    const t = tracer('svc')
    const root = t.startSpan('root', { startTime: T, parent: null })
    runWithSpan(root, () => {
      const late = t.startSpan('b started second', { startTime: T + 50 })
      const early = t.startSpan('a started first', { startTime: T + 10 })
      runWithSpan(early, () => t.startSpan('a1', { startTime: T + 12 }).end(T + 20))
      early.end(T + 40)
      late.end(T + 90)
    })
    root.end(T + 100)
    const lines = renderWaterfall(spans()).split('\n')
    expect(lines).toHaveLength(7)
    expect(lines[0]).toMatch(/^trace [0-9a-f]{32} · svc root · 100 ms · 4 spans · started 2025-01-15T09:30:00\.000Z$/)
    expect(lines[1]).toMatch(/^service {2}span/)
    expect(lines.slice(2, 6).map((l) => l.slice(0, 30).trimEnd())).toEqual([
      'svc      ─ root',
      'svc      ├─ a started first',
      'svc      │  └─ a1',
      'svc      └─ b started second',
    ])
    expect(lines[6]).toBe('bottleneck: svc b started second 40.0 ms self time, 40% of the trace')
  })

  it('right-aligns durations with three significant digits', () => {
    expect([0, 0.004, 0.42, 4.2, 9.996, 12.34, 99.96, 512.4, 999.6, 1250, 61_000, 450_000, 900_000].map(formatDuration)).toEqual([
      '0 ms', '<0.01 ms', '0.42 ms', '4.20 ms', '10.0 ms', '12.3 ms', '100 ms', '512 ms', '1.00 s', '1.25 s', '61.0 s', '450 s', '15.0 min',
    ])
    const { tracer, spans } = services()
    const root = tracer('svc').startSpan('root', { startTime: T, parent: null })
    tracer('svc').startSpan('quick', { parent: root, startTime: T + 1 }).end(T + 1.42)
    root.end(T + 1250)
    const text = renderWaterfall(spans())
    const quick = lineWith(text, 'quick')
    const slow = lineWith(text, 'root')
    expect(quick).toContain(' 0.42 ms │')
    expect(slow).toContain('  1.25 s │')
    expect(quick.indexOf('│')).toBe(slow.indexOf('│'))
  })

  it('draws bars on one time axis: offset and length proportional, at least one cell', () => {
    const { tracer, spans } = services()
    const t = tracer('svc')
    const root = t.startSpan('root', { startTime: T, parent: null })
    t.startSpan('middle half', { parent: root, startTime: T + 250 }).end(T + 750)
    t.startSpan('instant', { parent: root, startTime: T + 500 }).end(T + 500)
    t.startSpan('last 1%', { parent: root, startTime: T + 990 }).end(T + 1000)
    root.end(T + 1000)
    const text = renderWaterfall(spans())
    expect(barOf(lineWith(text, 'root'))).toBe('█'.repeat(40))
    expect(barOf(lineWith(text, 'middle half'))).toBe(' '.repeat(10) + '█'.repeat(20) + ' '.repeat(10))
    expect(barOf(lineWith(text, 'instant'))).toBe(' '.repeat(20) + '█' + ' '.repeat(19))
    expect(barOf(lineWith(text, 'last 1%'))).toBe(' '.repeat(39) + '█')
    expect(text.split('\n')[1]).toMatch(/ 0 {17}500 ms {12}1\.00 s$/)
    expect(barCells(0, 0, 40)).toEqual([0, 1])
    expect(barCells(1, 1, 40)).toEqual([39, 40])
  })

  it('fits the given width: the axis takes what the names leave', () => {
    const { tracer, spans } = services()
    const root = tracer('svc').startSpan('root', { startTime: T, parent: null })
    tracer('svc').startSpan('x'.repeat(200), { parent: root, startTime: T + 1 }).end(T + 2)
    root.end(T + 10)
    for (const width of [60, 100, 160]) {
      const lines = renderWaterfall(spans(), { width }).split('\n')
      for (const line of lines) expect(line.length).toBeLessThanOrEqual(width)
      expect(barOf(lines[2]!).length).toBeGreaterThanOrEqual(10)
    }
  })

  it('marks errors with ✗ and shows the status message and exceptions under the span', () => {
    const { tracer, spans } = services()
    const t = tracer('payment')
    const root = t.startSpan('POST /charge', { kind: SpanKind.SERVER, startTime: T, parent: null })
    const same = t.startSpan('declined', { parent: root, startTime: T + 1 })
    same.recordException(new PaymentDeclinedError('card declined'))
    same.setStatus(SpanStatusCode.ERROR, 'card declined')
    same.end(T + 2)
    const differs = t.startSpan('upstream', { parent: root, startTime: T + 3 })
    differs.recordException(new TypeError('fetch failed\n    at stack line'))
    differs.setStatus(SpanStatusCode.ERROR, 'bank unavailable')
    differs.end(T + 4)
    const recovered = t.startSpan('retried', { parent: root, startTime: T + 5 })
    recovered.recordException(new RangeError('first attempt timed out'))
    recovered.end(T + 6)
    root.setAttribute('http.response.status_code', 502)
    root.setStatus(SpanStatusCode.ERROR)
    root.end(T + 10)
    const lines = renderWaterfall(spans()).split('\n')
    const at = (name: string): number => lines.findIndex((l, i) => i >= 2 && l.includes(name))
    expect(lines[at('POST /charge')]).toMatch(/POST \/charge +✗ 502 /)
    expect(lines[at('declined')]).toMatch(/├─ declined +✗ +1\.00 ms/)
    expect(lines[at('declined') + 1]).toMatch(/^ +│ +✗ PaymentDeclinedError: card declined$/)
    expect(lines[at('upstream') + 1]).toMatch(/✗ bank unavailable · TypeError: fetch failed …$/)
    expect(lines[at('retried')]).toMatch(/└─ retried +! /)
    expect(lines[at('retried') + 1]).toMatch(/! RangeError: first attempt timed out$/)
    // No detail line for an error without a message: the ✗ and the status code say it.
    expect(lines[at('POST /charge') + 1]).toContain('declined')
  })

  it('names the span with the largest self time, overlapping children counted once', () => {
    const { tracer, spans } = services()
    const t = tracer('svc')
    const parent = t.startSpan('parent', { startTime: T, parent: null })
    // Children cover 10..50 together (40 ms), so the parent's own time is 60 ms;
    // subtracting each child (35 + 35) would wrongly leave 30 and crown a child.
    t.startSpan('child 1', { parent, startTime: T + 10 }).end(T + 45)
    t.startSpan('child 2', { parent, startTime: T + 15 }).end(T + 50)
    parent.end(T + 100)
    expect(renderWaterfall(spans()).split('\n').at(-1)).toBe('bottleneck: svc parent 60.0 ms self time, 60% of the trace')
  })

  it('clamps a child that outlives its parent to the parent when computing self time', () => {
    const { tracer, spans } = services()
    const t = tracer('svc')
    const parent = t.startSpan('handler', { startTime: T, parent: null })
    t.startSpan('fire and forget', { parent, startTime: T + 80 }).end(T + 120)
    parent.end(T + 100)
    // 100 ms minus the 20 ms of the child inside the handler; the trace lasts 120 ms.
    const text = renderWaterfall(spans())
    expect(text.split('\n').at(-1)).toBe('bottleneck: svc handler 80.0 ms self time, 67% of the trace')
    expect(barOf(lineWith(text, 'fire and forget'))).toBe(' '.repeat(27) + '█'.repeat(13))
  })

  it('uses ANSI colours only when asked, with the same text underneath', () => {
    const spans = checkoutTrace()
    const plain = renderWaterfall(spans)
    const colored = renderWaterfall(spans, { colors: true })
    expect(plain).not.toContain('\x1b')
    expect(colored).toContain('\x1b[31m✗\x1b[0m')
    expect(colored.replace(ANSI, '')).toBe(plain)
  })

  it('keeps a small trace whole and collapses a loop of 1000 spans within maxLines', () => {
    const { tracer, spans } = services()
    const t = tracer('worker')
    const root = t.startSpan('nightly job', { startTime: T, parent: null })
    t.startSpan('load config', { parent: root, startTime: T }).end(T + 1)
    for (let i = 0; i < 1000; i++) {
      const q = t.startSpan('db.query', { parent: root, kind: SpanKind.CLIENT, startTime: T + 1 + i })
      if (i === 500) q.setStatus(SpanStatusCode.ERROR, 'deadlock detected')
      q.end(T + 1 + i + (i === 999 ? 4 : 1.2))
    }
    t.startSpan('write report', { parent: root, startTime: T + 1005 }).end(T + 1010)
    root.end(T + 1010)
    const all = spans()

    // Spans in the order they ended: load config, 1000 queries, write report, nightly job.
    const whole = renderWaterfall(all.slice(0, 51).concat(all.slice(-2)))
    expect(whole.split('\n').filter((l) => l.includes('db.query'))).toHaveLength(50)
    expect(whole).not.toContain('not shown')

    const text = renderWaterfall(all)
    const lines = text.split('\n')
    expect(lines.length).toBeLessThanOrEqual(100)
    expect(lines.length).toBeLessThan(10)
    expect(lineWith(text, '1000 × db.query')).toMatch(/├… 1000 × db\.query \(avg 1\.20 ms, max 4\.00 ms\) +✗ +│▒{40}│$/)
    expect(lineWith(text, 'failed')).toMatch(/✗ 1 of 1000 failed, first: deadlock detected$/)
    expect(text).toContain('load config')
    expect(text).toContain('write report')
    expect(lineWith(text, 'not shown')).toBe('… 1000 of 1003 spans not shown: 1000 collapsed in 1 group (maxLines 100)')
  })

  it('cuts what does not collapse, staying within maxLines and counting the rest', () => {
    const { tracer, spans } = services()
    const t = tracer('svc')
    const root = t.startSpan('root', { startTime: T, parent: null })
    for (let i = 0; i < 300; i++) t.startSpan(`step ${i}`, { parent: root, startTime: T + i }).end(T + i + 1)
    root.end(T + 300)
    const lines = renderWaterfall(spans(), { maxLines: 20 }).split('\n')
    expect(lines).toHaveLength(20)
    expect(lines[17]).toContain('step 14')
    expect(lines[18]).toBe('… 285 of 301 spans not shown: 285 cut (maxLines 20)')
    expect(lines[19]).toMatch(/^bottleneck: /)
  })

  it('keeps one line per span: long names end in …, control characters are neutralised', () => {
    const { tracer, spans } = services()
    const t = tracer('svc')
    const root = t.startSpan('GET /search?q=' + 'x'.repeat(300), { startTime: T, parent: null })
    t.startSpan('evil\n\x1b[31mname\ttab', { parent: root, startTime: T + 1 }).end(T + 2)
    root.end(T + 10)
    const text = renderWaterfall(spans())
    const lines = text.split('\n')
    expect(lines).toHaveLength(5)
    expect(lines[2]).toMatch(/─ GET \/search\?q=x+… +10\.0 ms │/)
    expect(lines[3]).toContain('└─ evil \ufffd[31mname tab')
    expect(text).not.toContain('\x1b')
  })

  it('shows spans whose parent is missing as subtree roots, saying where the parent is', () => {
    const { tracer, spans } = services()
    const t = tracer('api')
    const root = t.startSpan('GET /orders', { kind: SpanKind.SERVER, startTime: T, parent: null })
    const remote = remoteSpan(root.traceId, '00f067aa0ba902b7', 1, undefined)
    const served = t.startSpan('POST /hook', { kind: SpanKind.SERVER, parent: remote, startTime: T + 20 })
    t.startSpan('handle hook', { parent: served, startTime: T + 21 }).end(T + 29)
    served.end(T + 30)
    const stuck = t.startSpan('never ends', { parent: root, startTime: T + 2 })
    t.startSpan('orphan', { parent: stuck, startTime: T + 3 }).end(T + 5)
    root.end(T + 40)
    const lines = renderWaterfall(spans()).split('\n')
    expect(lines[0]).toContain(' · api GET /orders · 40.0 ms · 4 spans · ')
    expect(lines.slice(2, 6).map((l) => l.slice(0, l.indexOf(' ms ') - 5).trimEnd())).toEqual([
      'api      ← GET /orders',
      `api      ─ orphan (parent ${stuck.spanId} not ended)`,
      'api      ← POST /hook (parent 00f067aa0ba902b7 remote)',
      'api      └─ handle hook',
    ])
  })

  it('renders one block per trace when given several', () => {
    const { tracer, spans } = services()
    const t = tracer('svc')
    const a = t.startSpan('trace a', { startTime: T, parent: null })
    const b = t.startSpan('trace b', { startTime: T + 1, parent: null })
    b.end(T + 3)
    a.end(T + 2)
    const blocks = renderWaterfall(spans()).split('\n\n')
    expect(blocks).toHaveLength(2)
    expect(blocks[0]).toContain(`trace ${b.traceId} · svc trace b`)
    expect(blocks[1]).toContain(`trace ${a.traceId} · svc trace a`)
    expect(renderWaterfall([])).toBe('')
  })
})
