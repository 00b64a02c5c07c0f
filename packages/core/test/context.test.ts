import { EventEmitter, once } from 'node:events'
import { setImmediate as immediate } from 'node:timers/promises'
import {
  Baggage,
  bindEmitter,
  bindToContext,
  getActiveBaggage,
  getActiveContext,
  getActiveSpan,
  isSuppressed,
  ROOT_CONTEXT,
  runSuppressed,
  runWithBaggage,
  runWithContext,
  runWithSpan,
  type ReadableSpan,
  type Span,
} from '../src/index.ts'
import { memoryTracer, sleep } from './helpers.ts'

describe('context', () => {
  it('has no active span outside any scope', () => {
    expect(getActiveSpan()).toBeUndefined()
    expect(getActiveContext()).toBe(ROOT_CONTEXT)
  })

  it('runWithSpan passes arguments through and returns the result', () => {
    const { tracer } = memoryTracer()
    const span = tracer.startSpan('outer')
    const result = runWithSpan(span, (a: number, b: string) => `${a}${b}:${getActiveSpan() === span}`, 1, 'x')
    expect(result).toBe('1x:true')
    expect(getActiveSpan()).toBeUndefined()
  })

  it('makes spans started inside children, across awaits, timers, nextTick and setImmediate', async () => {
    const { tracer, exporter } = memoryTracer()
    const parent = tracer.startSpan('parent')
    await runWithSpan(parent, async () => {
      await sleep(1)
      tracer.startSpan('after-await').end()
      await new Promise<void>((resolve) => setTimeout(() => {
        tracer.startSpan('in-timeout').end()
        resolve()
      }, 1))
      await new Promise<void>((resolve) => process.nextTick(() => {
        tracer.startSpan('in-nexttick').end()
        resolve()
      }))
      await immediate()
      tracer.startSpan('after-immediate').end()
      const nested = tracer.startSpan('nested')
      await runWithSpan(nested, async () => {
        await sleep(1)
        tracer.startSpan('grandchild').end()
      })
      nested.end()
    })
    parent.end()
    const spans = exporter.getFinishedSpans()
    const byName = new Map(spans.map((s) => [s.name, s]))
    for (const name of ['after-await', 'in-timeout', 'in-nexttick', 'after-immediate', 'nested']) {
      expect(byName.get(name)?.parentSpanId).toBe(parent.spanId)
      expect(byName.get(name)?.traceId).toBe(parent.traceId)
    }
    expect(byName.get('grandchild')?.parentSpanId).toBe(byName.get('nested')?.spanId)
    expect(byName.get('parent')?.parentSpanId).toBeUndefined()
  })

  it('keeps hundreds of interleaved concurrent tasks apart', async () => {
    const { tracer, exporter } = memoryTracer()
    const N = 500
    const wrong: string[] = []
    async function task(i: number): Promise<void> {
      const span = tracer.startSpan(`task-${i}`)
      await runWithSpan(span, async () => {
        for (let step = 0; step < 4; step++) {
          await sleep(Math.floor(Math.random() * 3))
          if (getActiveSpan() !== span) wrong.push(`task-${i} step ${step}`)
          tracer.startSpan(`task-${i}-child-${step}`).end()
          await Promise.resolve()
        }
      })
      span.end()
    }
    await Promise.all(Array.from({ length: N }, (_, i) => task(i)))
    expect(wrong).toEqual([])
    const spans = exporter.getFinishedSpans()
    expect(spans).toHaveLength(N * 5)
    const ids = new Map(spans.filter((s) => !s.name.includes('child')).map((s) => [s.name, s]))
    for (const s of spans.filter((x) => x.name.includes('child'))) {
      const owner = ids.get(s.name.slice(0, s.name.indexOf('-child')))!
      expect(s.parentSpanId).toBe(owner.spanId)
      expect(s.traceId).toBe(owner.traceId)
    }
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(N)
  })

  it('bindToContext runs a callback in the context it was bound in', async () => {
    const { tracer } = memoryTracer()
    const span = tracer.startSpan('bound')
    const bound = runWithSpan(span, () => bindToContext(function (this: unknown, x: number) {
      return { span: getActiveSpan(), self: this, x }
    }))
    const self = { me: true }
    const seen = bound.call(self, 7)
    expect(seen).toEqual({ span, self, x: 7 })
    // and from another context entirely
    const other = tracer.startSpan('other')
    expect(runWithSpan(other, bound, 1).span).toBe(span)
  })

  it('bindEmitter makes listeners run in the bound context, and they can still be removed', async () => {
    const { tracer } = memoryTracer()
    const emitter = new EventEmitter()
    const span = tracer.startSpan('emitter-owner')
    runWithSpan(span, bindEmitter, emitter)
    const seen: (Span | undefined)[] = []
    const listener = (): void => {
      seen.push(getActiveSpan())
    }
    emitter.on('data', listener)
    emitter.once('data', listener)
    emitter.prependListener('data', listener)
    const emitterSpan = tracer.startSpan('emitting')
    runWithSpan(emitterSpan, () => emitter.emit('data'))
    expect(seen).toEqual([span, span, span])
    emitter.off('data', listener)
    emitter.removeListener('data', listener)
    expect(emitter.listenerCount('data')).toBe(0)
    // an unbound emitter delivers in the emitting context
    const plain = new EventEmitter()
    let plainSeen: Span | undefined
    plain.on('x', () => {
      plainSeen = getActiveSpan()
    })
    runWithSpan(emitterSpan, () => plain.emit('x'))
    expect(plainSeen).toBe(emitterSpan)
  })

  it('listeners on an unbound emitter created inside a span see the emitter\'s caller context', async () => {
    const { tracer } = memoryTracer()
    const span = tracer.startSpan('s')
    const emitter = new EventEmitter()
    const p = runWithSpan(span, async () => {
      await once(emitter, 'go')
      return getActiveSpan()
    })
    emitter.emit('go')
    expect(await p).toBe(span)
  })

  it('runWithContext, suppression and baggage', () => {
    expect(isSuppressed()).toBe(false)
    expect(runSuppressed(isSuppressed)).toBe(true)
    const baggage = Baggage.EMPTY.set('tenant', 'acme')
    expect(runWithBaggage(baggage, () => getActiveBaggage()?.getValue('tenant'))).toBe('acme')
    expect(getActiveBaggage()).toBeUndefined()
    const ctx = ROOT_CONTEXT.withBaggage(baggage)
    expect(runWithContext(ctx, getActiveContext)).toBe(ctx)
  })

  it('a suppressed context records no spans', () => {
    const { tracer, exporter } = memoryTracer()
    runSuppressed(() => {
      const span = tracer.startSpan('suppressed')
      expect(span.isRecording()).toBe(false)
      span.end()
    })
    expect(exporter.getFinishedSpans()).toEqual([] as ReadableSpan[])
  })
})
