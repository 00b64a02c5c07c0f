import {
  AlwaysOffSampler,
  BatchSpanProcessor,
  createTracer,
  getActiveSpan,
  NonRecordingSpan,
  runSuppressed,
  runWithSpan,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
  TraceIdRatioSampler,
  toUnixNanos,
  tracerOf,
  TracingError,
  SimpleSpanProcessor,
  type ReadableSpan,
  type RecordingSpan,
  type SpanProcessor,
} from '../src/index.ts'
import { InMemorySpanExporter } from '../src/testing.ts'
import { collectDiagnostics, memoryTracer, sleep } from './helpers.ts'

describe('spans', () => {
  it('records name, kind, attributes, links, events, status, and ends once', async () => {
    const { tracer, exporter } = memoryTracer()
    const linked = tracer.startSpan('linked')
    const span = tracer.startSpan('work', {
      kind: SpanKind.CLIENT,
      attributes: { 'a.str': 'x', 'a.num': 1.5, 'a.bool': true, 'a.arr': ['p', 'q'], 'a.undef': undefined },
      links: [{ context: linked, attributes: { why: 'retry' } }],
    })
    span.setAttribute('late', 42).addEvent('cache miss', { key: 'k' })
    span.updateName('work renamed')
    span.setStatus(SpanStatusCode.ERROR, 'boom')
    await sleep(2)
    span.end()
    span.end() // ignored
    span.setAttribute('after.end', 1) // ignored
    const [s] = exporter.getFinishedSpans() as [ReadableSpan]
    expect(exporter.getFinishedSpans()).toHaveLength(1)
    expect(s.name).toBe('work renamed')
    expect(s.kind).toBe(SpanKind.CLIENT)
    expect(s.attributes).toEqual({ 'a.str': 'x', 'a.num': 1.5, 'a.bool': true, 'a.arr': ['p', 'q'], late: 42 })
    expect(s.links).toEqual([{ context: linked, attributes: { why: 'retry' }, droppedAttributesCount: 0 }])
    expect(s.events).toHaveLength(1)
    expect(s.events![0]!.name).toBe('cache miss')
    expect(s.events![0]!.attributes).toEqual({ key: 'k' })
    expect(s.statusCode).toBe(SpanStatusCode.ERROR)
    expect(s.statusMessage).toBe('boom')
    expect(s.endTime - s.startTime).toBeGreaterThanOrEqual(1)
    expect(s.ended).toBe(true)
    expect(s.scope.name).toBe('@spanline/core')
    expect(s.resource.attributes['service.name']).toBe('test')
  })

  it('follows the status rules: OK is final, UNSET ignored, message only with ERROR', () => {
    const { tracer, exporter } = memoryTracer()
    const a = tracer.startSpan('a')
    a.setStatus(SpanStatusCode.ERROR, 'first').setStatus(SpanStatusCode.OK, 'ignored message').setStatus(SpanStatusCode.ERROR, 'later')
    a.end()
    const b = tracer.startSpan('b')
    b.setStatus(SpanStatusCode.ERROR, 'x').setStatus(SpanStatusCode.UNSET)
    b.end()
    const [sa, sb] = exporter.getFinishedSpans() as [ReadableSpan, ReadableSpan]
    expect([sa.statusCode, sa.statusMessage]).toEqual([SpanStatusCode.OK, undefined])
    expect([sb.statusCode, sb.statusMessage]).toEqual([SpanStatusCode.ERROR, 'x'])
  })

  it('records exceptions as `exception` events with type, message and stack trace', () => {
    class PaymentDeclined extends Error {}
    const { tracer, exporter } = memoryTracer()
    const span = tracer.startSpan('pay')
    span.recordException(new PaymentDeclined('card declined'))
    span.recordException(new TypeError('bad'))
    span.recordException('a string')
    span.recordException(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))
    span.end()
    const events = exporter.getFinishedSpans()[0]!.events!
    expect(events.map((e) => e.name)).toEqual(['exception', 'exception', 'exception', 'exception'])
    expect(events[0]!.attributes).toMatchObject({ 'exception.type': 'PaymentDeclined', 'exception.message': 'card declined' })
    expect(String(events[0]!.attributes!['exception.stacktrace'])).toMatch(/card declined\n\s+at /)
    expect(events[1]!.attributes).toMatchObject({ 'exception.type': 'TypeError', 'exception.message': 'bad' })
    expect(events[2]!.attributes).toEqual({ 'exception.type': 'string', 'exception.message': 'a string' })
    expect(events[3]!.attributes).toMatchObject({ 'exception.type': 'Error', 'exception.message': 'refused' })
    // recordException does not set the status by itself
    expect(exporter.getFinishedSpans()[0]!.statusCode).toBe(SpanStatusCode.UNSET)
  })

  it('drops invalid attribute values and keys rather than exporting them', () => {
    const { tracer, exporter } = memoryTracer()
    const span = tracer.startSpan('x')
    span.setAttribute('obj', { a: 1 } as never)
    span.setAttribute('mixed', [1, 'a'] as never)
    span.setAttribute('nulls', [null] as never)
    span.setAttribute('', 'empty key')
    span.setAttribute('__proto__', 'x')
    span.setAttribute('ok', [1, 2])
    span.end()
    expect(exporter.getFinishedSpans()[0]!.attributes).toEqual({ ok: [1, 2] })
    expect(Object.getPrototypeOf(exporter.getFinishedSpans()[0]!.attributes)).toBe(Object.prototype)
  })

  it('uses caller-given start and end times (epoch ms), and never a negative duration', () => {
    const { tracer, exporter } = memoryTracer()
    const start = Date.now() - 1000
    const span = tracer.startSpan('timed', { startTime: start })
    span.end(new Date(start + 250))
    const early = tracer.startSpan('early')
    early.end(Date.now() - 60_000)
    const [timed, e] = exporter.getFinishedSpans() as [ReadableSpan, ReadableSpan]
    expect(timed.endTime - timed.startTime).toBeCloseTo(250, 3)
    const startNs = toUnixNanos(timed.startTime)
    expect(Number(startNs / 1_000_000n)).toBeGreaterThanOrEqual(start - 1)
    expect(Number(startNs / 1_000_000n)).toBeLessThanOrEqual(start + 1)
    expect(e.endTime).toBe(e.startTime)
  })

  it('time is monotonic and converts to Unix nanoseconds at export', async () => {
    const { tracer, exporter } = memoryTracer()
    const before = BigInt(Date.now()) * 1_000_000n
    const span = tracer.startSpan('t')
    await sleep(5)
    span.end()
    const after = BigInt(Date.now()) * 1_000_000n
    const s = exporter.getFinishedSpans()[0]!
    const start = toUnixNanos(s.startTime)
    const end = toUnixNanos(s.endTime)
    // performance.timeOrigin and Date.now() agree to within a few ms
    expect(start).toBeGreaterThan(before - 20_000_000n)
    expect(end).toBeLessThan(after + 20_000_000n)
    expect(end - start).toBeGreaterThanOrEqual(4_000_000n)
  })
})

describe('deferred attributes (an AttributeSource, as the HTTP server layer uses)', () => {
  const source = (keys: string[], values: Array<string | number>, calls: { n: number }) => ({
    addAttributes(span: RecordingSpan): void {
      calls.n++
      span.adoptAttributes(keys.flatMap((key, i) => [key, values[i]!]), true)
    },
  })

  it('are made once, when first read or before the first set, even after the span ended', () => {
    const { tracer } = memoryTracer()
    const calls = { n: 0 }
    const read = tracer.startSpan('read') as RecordingSpan
    expect(read.deferAttributes(source(['a', 'b'], ['x', 1], calls), 2)).toBe(true)
    read.end()
    expect(calls.n).toBe(0)
    expect(read.attributes).toEqual({ a: 'x', b: 1 })
    expect(read.attributes).toEqual({ a: 'x', b: 1 })
    expect(calls.n).toBe(1)
    const set = tracer.startSpan('set') as RecordingSpan
    set.deferAttributes(source(['a'], ['x'], calls), 1)
    set.setAttribute('a', 'mine').setAttribute('c', true)
    expect(calls.n).toBe(2)
    expect(set.attributePairs).toEqual(['a', 'mine', 'c', true])
    expect(set.attributes).toEqual({ a: 'mine', c: true })
  })

  it('are refused when they could not wait: the span has attributes, has ended, has some deferred, or its count limit is too low', () => {
    const { tracer } = memoryTracer({ spanLimits: { attributeCountLimit: 3 } })
    const calls = { n: 0 }
    const withOwn = tracer.startSpan('own', { attributes: { k: 1 } }) as RecordingSpan
    expect(withOwn.deferAttributes(source(['a'], ['x'], calls), 1)).toBe(false)
    const ended = tracer.startSpan('ended') as RecordingSpan
    ended.end()
    expect(ended.deferAttributes(source(['a'], ['x'], calls), 1)).toBe(false)
    const twice = tracer.startSpan('twice') as RecordingSpan
    expect(twice.deferAttributes(source(['a'], ['x'], calls), 1)).toBe(true)
    expect(twice.deferAttributes(source(['b'], ['y'], calls), 1)).toBe(false)
    expect(twice.adoptAttributes(['c', 'z'])).toBe(false)
    expect(twice.attributes).toEqual({ a: 'x' })
    const tooMany = tracer.startSpan('limited') as RecordingSpan
    expect(tooMany.deferAttributes(source(['a'], ['x'], calls), 4)).toBe(false)
    expect(tooMany.droppedAttributesCount).toBe(0)
  })

  it('a source that throws leaves the span without them, warns once, and the span is still exported', async () => {
    const { tracer, exporter } = memoryTracer()
    const messages = await collectDiagnostics(async () => {
      for (let i = 0; i < 2; i++) {
        const span = tracer.startSpan(`broken ${i}`) as RecordingSpan
        span.deferAttributes({ addAttributes: () => { throw new Error(`bug ${i}`) } }, 1)
        span.end()
        expect(span.attributes).toBeNull()
      }
    })
    expect(messages.filter((m) => m.includes('attributes of a span could not be made'))).toHaveLength(1)
    expect((await exporter.waitForSpans(2)).map((s) => s.name)).toEqual(['broken 0', 'broken 1'])
  })
})

describe('unsampled spans', () => {
  it('propagate their ids with sampled=0, record nothing and are never exported', () => {
    const { tracer, exporter } = memoryTracer({ sampler: new AlwaysOffSampler() })
    const span = tracer.startSpan('unsampled', { attributes: { a: 1 } })
    expect(span.isRecording()).toBe(false)
    expect(span.traceId).toMatch(/^[0-9a-f]{32}$/)
    expect(span.spanId).toMatch(/^[0-9a-f]{16}$/)
    expect(span.traceFlags & TraceFlags.SAMPLED).toBe(0)
    const child = runWithSpan(span, () => tracer.startSpan('child'))
    expect(child.traceId).toBe(span.traceId)
    expect(child.isRecording()).toBe(false)
    const headers: Record<string, string> = {}
    runWithSpan(child, () => tracer.inject(headers))
    expect(headers.traceparent).toBe(`00-${span.traceId}-${child.spanId}-02`)
    span.setAttribute('x', 1).addEvent('e').setStatus(SpanStatusCode.ERROR).recordException(new Error('x'))
    child.end()
    span.end()
    expect(exporter.getFinishedSpans()).toHaveLength(0)
  })

  it('keep their trace across children whichever id is read first, and never hand out an id twice', () => {
    const { tracer } = memoryTracer({ sampler: new AlwaysOffSampler() })
    const ids = new Set<string>()
    for (let i = 0; i < 3000; i++) {
      const root = tracer.startSpan('root')
      const child = runWithSpan(root, () => tracer.startSpan('child'))
      const grandchild = runWithSpan(child, () => tracer.startSpan('grandchild'))
      // The youngest read first: each made its hex from its own copy of the words.
      expect(grandchild.traceId).toMatch(/^[0-9a-f]{32}$/)
      expect(child.traceId).toBe(grandchild.traceId)
      expect(root.traceId).toBe(grandchild.traceId)
      for (const span of [root, child, grandchild]) {
        expect(span.spanId).toMatch(/^[0-9a-f]{16}$/)
        expect(span.spanId).toBe(span.spanId) // made once, then kept
        ids.add(span.spanId)
      }
      ids.add(root.traceId)
    }
    expect(ids.size).toBe(3000 * 4)
  })

  it('take the trace of a recording parent when suppressed, and the trace id a sampler was shown', () => {
    const { tracer } = memoryTracer()
    const parent = tracer.startSpan('recording')
    const suppressed = runWithSpan(parent, () => runSuppressed(() => tracer.startSpan('suppressed')))
    expect(suppressed.isRecording()).toBe(false)
    expect(suppressed.traceId).toBe(parent.traceId)
    expect(suppressed.spanId).not.toBe(parent.spanId)
    // A ratio sampler reads the new trace's id: the unsampled span keeps that one.
    const seen: string[] = []
    const ratio = new TraceIdRatioSampler(0)
    const { tracer: dropping } = memoryTracer({
      sampler: {
        shouldSample: (parent, traceId) => {
          seen.push(traceId)
          return ratio.shouldSample(parent, traceId)
        },
        toString: () => 'Spy',
      },
    })
    const dropped = dropping.startSpan('dropped', { parent: null })
    expect(dropped.isRecording()).toBe(false)
    expect(dropped.traceId).toBe(seen[0])
  })

  it('check the ids of a parent made by hand, not of those the tracer made', () => {
    const { tracer } = memoryTracer({ sampler: new AlwaysOffSampler() })
    const valid = new NonRecordingSpan('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', TraceFlags.SAMPLED, undefined, false)
    const child = tracer.startSpan('child', { parent: valid })
    expect(child.traceId).toBe(valid.traceId)
    expect(valid.spanId).toBe('00f067aa0ba902b7')
    // Hand-made ids of the right lengths are checked too (a span made from
    // hex reads words from it only when both ids are valid), whether the
    // span calls itself remote or not, sampled child or not.
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736'
    const { tracer: sampling, exporter } = memoryTracer()
    for (const [t, s] of [['not hex', '00f067aa0ba902b7'], [trace.toUpperCase(), '00f067aa0ba902b7'], ['0'.repeat(32), '00f067aa0ba902b7'],
      [trace, '0'.repeat(16)], [trace.replace('4', 'g'), '00f067aa0ba902b7'], [trace, '00f067aa0ba902bG']]) {
      for (const remote of [false, true]) {
        const invalid = new NonRecordingSpan(t!, s!, TraceFlags.SAMPLED, undefined, remote)
        for (const orphan of [tracer.startSpan('orphan', { parent: invalid }), sampling.startSpan('orphan', { parent: invalid })]) {
          expect(orphan.traceId).toMatch(/^[0-9a-f]{32}$/)
          expect(orphan.traceId).not.toBe(t)
          orphan.end()
        }
      }
    }
    const exported = exporter.getFinishedSpans()
    expect(exported).toHaveLength(12)
    for (const span of exported) {
      expect(span.parentSpanId).toBeUndefined()
      expect(span.parentIsRemote).toBe(false)
    }
  })

  it('give a recording child of an unsampled span the trace id that span knows only as hex', () => {
    // A custom sampler is shown the trace id: a dropped root keeps it as
    // hex only (no words); a child it samples must export that trace id.
    const { tracer, exporter } = memoryTracer({
      sampler: { shouldSample: (parent) => ({ decision: parent === undefined ? 0 : 2 }), toString: () => 'ChildrenOnly' },
    })
    const root = tracer.startSpan('root')
    expect(root.isRecording()).toBe(false)
    const child = tracer.startSpan('child', { parent: root })
    tracer.startSpan('grandchild', { parent: child }).end()
    child.end()
    expect(exporter.getFinishedSpans().map((s) => [s.name, s.traceId, s.parentSpanId])).toEqual([
      ['grandchild', root.traceId, child.spanId],
      ['child', root.traceId, root.spanId],
    ])
  })

  it('record-only spans reach processors but are never exported', () => {
    const seen: string[] = []
    const { tracer, exporter } = memoryTracer({
      sampler: { shouldSample: () => ({ decision: 1 }), toString: () => 'RecordOnly' },
    })
    const tracer2 = createTracer({
      env: {},
      sampler: { shouldSample: () => ({ decision: 1 }), toString: () => 'RecordOnly' },
      processors: [{ onStart: (s) => seen.push(`start ${s.name}`), onEnd: (s) => seen.push(`end ${s.name}`), forceFlush: async () => {}, shutdown: async () => {} }],
    })
    const span = tracer.startSpan('record-only')
    expect(span.isRecording()).toBe(true)
    expect(span.traceFlags & TraceFlags.SAMPLED).toBe(0)
    span.end()
    expect(exporter.getFinishedSpans()).toHaveLength(0)
    tracer2.startSpan('r').end()
    expect(seen).toEqual(['start r', 'end r'])
  })

  it('calls onStart() of every processor that has one, in order, beside the batch and simple processors (which ignore it)', async () => {
    const seen: string[] = []
    const custom = (tag: string): SpanProcessor => ({
      onStart: (s) => void seen.push(`${tag} start ${s.name}`),
      onEnd: (s) => void seen.push(`${tag} end ${s.name}`),
      forceFlush: async () => {},
      shutdown: async () => {},
    })
    // A subclass that overrides onStart() is called; one without onStart() at all is skipped, not an error.
    class Marking extends BatchSpanProcessor {
      override onStart(span: RecordingSpan): void {
        span.setAttribute('marked', true)
      }
    }
    const onlyEnd = { onEnd: (s: ReadableSpan) => void seen.push(`c end ${s.name}`), forceFlush: async () => {}, shutdown: async () => {} }
    const simple = new InMemorySpanExporter()
    const batched = new InMemorySpanExporter()
    const tracer = createTracer({
      env: {},
      processors: [custom('a'), new SimpleSpanProcessor(simple), custom('b'), new Marking(batched), onlyEnd as unknown as SpanProcessor],
    })
    const before = tracer.stats().errors.processor
    tracer.startSpan('x').end()
    await tracer.forceFlush()
    expect(seen).toEqual(['a start x', 'b start x', 'a end x', 'b end x', 'c end x'])
    expect(simple.getFinishedSpans().map((s) => [s.name, s.attributes])).toEqual([['x', { marked: true }]])
    expect(batched.getFinishedSpans().map((s) => s.name)).toEqual(['x'])
    expect(tracer.stats().errors.processor).toBe(before)
  })

  it('a tracer without processors makes non-recording spans that still carry ids', () => {
    const tracer = createTracer({ env: {}, processors: [] })
    const span = tracer.startSpan('x')
    expect(span.isRecording()).toBe(false)
    expect(span.traceFlags).toBe(TraceFlags.SAMPLED | TraceFlags.RANDOM)
    expect(runWithSpan(span, getActiveSpan)).toBe(span)
  })
})

describe('ids', () => {
  it('are 16-byte and 8-byte lowercase hex, unique, with the random flag set on new traces', () => {
    const { tracer } = memoryTracer()
    const traceIds = new Set<string>()
    const spanIds = new Set<string>()
    for (let i = 0; i < 5000; i++) {
      const s = tracer.startSpan('x', { parent: null })
      expect(s.traceId).toMatch(/^[0-9a-f]{32}$/)
      expect(s.spanId).toMatch(/^[0-9a-f]{16}$/)
      expect(s.traceId).not.toBe('0'.repeat(32))
      expect(s.spanId).not.toBe('0'.repeat(16))
      expect(s.traceFlags & TraceFlags.RANDOM).toBe(TraceFlags.RANDOM)
      traceIds.add(s.traceId)
      spanIds.add(s.spanId)
    }
    expect(traceIds.size).toBe(5000)
    expect(spanIds.size).toBe(5000)
  })
})

describe('tracer options', () => {
  it('rejects bad options with a TracingError naming what was wrong', () => {
    expect(() => createTracer({ serviceName: '' })).toThrow(/serviceName/)
    expect(() => createTracer({ nope: 1 } as never)).toThrow(/unknown tracer option "nope"/)
    expect(() => createTracer({ sampler: {} as never })).toThrow(TracingError)
    expect(() => createTracer({ propagator: ['tracecontext', 'jaeger'] })).toThrow(/unknown propagator "jaeger"/)
    expect(() => createTracer({ spanLimits: { attributeCountLimit: -1 } })).toThrow(/attributeCountLimit/)
    expect(() => createTracer({ spanLimits: { bogus: 1 } as never })).toThrow(/unknown span limit "bogus"/)
    try {
      createTracer({ serviceName: 3 as never })
    } catch (err) {
      expect((err as TracingError).code).toBe('SPANLINE_ERR_INVALID_ARGUMENT')
    }
  })

  it('trace() ends the span, records a thrown or rejected error, and passes it on', async () => {
    const { tracer, exporter } = memoryTracer()
    expect(tracer.trace('sync', (span) => {
      expect(getActiveSpan()).toBe(span)
      return 5
    })).toBe(5)
    await expect(tracer.trace('async', async () => {
      await sleep(1)
      return 'v'
    })).resolves.toBe('v')
    const boom = new Error('boom')
    expect(() => tracer.trace('throws', () => {
      throw boom
    })).toThrow(boom)
    await expect(tracer.trace('rejects', async () => {
      throw boom
    })).rejects.toBe(boom)
    const spans = exporter.getFinishedSpans()
    expect(spans.map((s) => s.name)).toEqual(['sync', 'async', 'throws', 'rejects'])
    expect(spans.map((s) => s.statusCode)).toEqual([0, 0, 2, 2])
    expect(spans[3]!.events![0]!.attributes!['exception.message']).toBe('boom')
  })

  it('explicit parents: a span, a context, or null for a new trace', () => {
    const { tracer } = memoryTracer()
    const a = tracer.startSpan('a')
    const b = tracer.startSpan('b', { parent: a })
    const c = runWithSpan(a, () => tracer.startSpan('c', { parent: null }))
    expect(b.traceId).toBe(a.traceId)
    expect((b as unknown as ReadableSpan).parentSpanId).toBe(a.spanId)
    expect(c.traceId).not.toBe(a.traceId)
    expect((c as unknown as ReadableSpan).parentSpanId).toBeUndefined()
  })

  it('a throwing sampler or processor never reaches the caller', () => {
    const tracer = createTracer({
      env: {},
      sampler: { shouldSample: () => { throw new Error('sampler bug') }, toString: () => 'Bad' },
      processors: [{ onStart: () => { throw new Error('x') }, onEnd: () => { throw new Error('y') }, forceFlush: async () => {}, shutdown: async () => {} }],
    })
    const span = tracer.startSpan('x')
    expect(span.isRecording()).toBe(false)
    span.end()
    const before = tracer.stats().errors
    const t2 = createTracer({
      env: {},
      processors: [{ onStart: () => { throw new Error('x') }, onEnd: () => { throw new Error('y') }, forceFlush: async () => {}, shutdown: async () => {} }],
    })
    expect(() => t2.startSpan('y').end()).not.toThrow()
    // contained, and counted (process-wide) by kind
    const after = t2.stats().errors
    expect(after.processor - before.processor).toBe(2)
    expect(tracer.startSpan('again').isRecording()).toBe(false)
    expect(tracer.stats().errors.sampler - before.sampler).toBe(1)
  })

  it('after shutdown, new spans are non-recording and shutdown is idempotent', async () => {
    const { tracer, exporter } = memoryTracer()
    tracer.startSpan('before').end()
    await tracer.shutdown()
    await tracer.shutdown()
    const s = tracer.startSpan('after')
    expect(s.isRecording()).toBe(false)
    s.end()
    expect(exporter.getFinishedSpans().map((x) => x.name)).toEqual(['before'])
  })

  it('tracerOf() finds the tracer that made a span (undefined for non-recording spans)', () => {
    const { tracer } = memoryTracer()
    const other = tracer.getTracer('other')
    expect(tracerOf(tracer.startSpan('a'))).toBe(tracer)
    expect(tracerOf(other.startSpan('b'))).toBe(other)
    expect(tracerOf(createTracer({ env: {}, processors: [] }).startSpan('c'))).toBeUndefined()
    expect(tracerOf(undefined)).toBeUndefined()
  })

  it('getTracer() shares the pipeline under another instrumentation scope', () => {
    const { tracer, exporter } = memoryTracer()
    tracer.getTracer('@spanline/express', '1.2.3').startSpan('x').end()
    expect(exporter.getFinishedSpans()[0]!.scope).toEqual({ name: '@spanline/express', version: '1.2.3' })
  })
})
