import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  createTracer,
  extract,
  generateTraceId,
  ParentBasedSampler,
  runWithContext,
  samplerFromEnv,
  SamplingDecision,
  SpanKind,
  TraceFlags,
  TraceIdRatioSampler,
  TracingError,
  type SamplingResult,
  type SpanContext,
} from '../src/index.ts'
import { thresholdHex } from '../src/sampling/ratio.ts'
import { collectDiagnostics, memoryTracer } from './helpers.ts'

const remote = (sampled: boolean): SpanContext => ({
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  spanId: '00f067aa0ba902b7',
  traceFlags: sampled ? 1 : 0,
  traceState: undefined,
  isRemote: true,
})
const local = (sampled: boolean): SpanContext => ({ ...remote(sampled), isRemote: false })
const decide = (s: { shouldSample: Function }, parent?: SpanContext, traceId = generateTraceId()): number =>
  s.shouldSample(parent, traceId, 'n', SpanKind.INTERNAL, undefined, undefined).decision

describe('samplers', () => {
  it('always_on and always_off', () => {
    expect(decide(new AlwaysOnSampler())).toBe(SamplingDecision.RECORD_AND_SAMPLED)
    expect(decide(new AlwaysOffSampler())).toBe(SamplingDecision.DROP)
  })

  it('traceidratio decides from the trace id alone (same id, same decision, any instance)', () => {
    const a = new TraceIdRatioSampler(0.25)
    const b = new TraceIdRatioSampler(0.25)
    for (let i = 0; i < 200; i++) {
      const id = generateTraceId()
      expect(decide(a, undefined, id)).toBe(decide(b, undefined, id))
    }
  })

  it('traceidratio samples close to the ratio and compares the low 56 bits against the threshold', () => {
    const s = new TraceIdRatioSampler(0.1)
    let sampled = 0
    const N = 20000
    for (let i = 0; i < N; i++) if (decide(s, undefined) === SamplingDecision.RECORD_AND_SAMPLED) sampled++
    expect(sampled / N).toBeGreaterThan(0.085)
    expect(sampled / N).toBeLessThan(0.115)
    // exact boundary: threshold for 0.5 is 2^55
    expect(thresholdHex(0.5)).toBe('80000000000000')
    expect(thresholdHex(1)).toBe('00000000000000')
    const half = new TraceIdRatioSampler(0.5)
    expect(decide(half, undefined, 'ffffffffffffffffff80000000000000')).toBe(SamplingDecision.RECORD_AND_SAMPLED)
    expect(decide(half, undefined, 'ffffffffffffffffff7fffffffffffff')).toBe(SamplingDecision.DROP)
    expect(decide(new TraceIdRatioSampler(0), undefined, 'ffffffffffffffffffffffffffffffff')).toBe(SamplingDecision.DROP)
    expect(decide(new TraceIdRatioSampler(1e-30), undefined, 'ffffffffffffffffffffffffffffffff')).toBe(SamplingDecision.DROP)
    expect(decide(new TraceIdRatioSampler(1), undefined, '00000000000000010000000000000000')).toBe(SamplingDecision.RECORD_AND_SAMPLED)
  })

  it('traceidratio rejects a ratio outside 0..1 in code', () => {
    expect(() => new TraceIdRatioSampler(1.5)).toThrow(TracingError)
    expect(() => new TraceIdRatioSampler(Number.NaN)).toThrow(/ratio/)
  })

  it('parent-based follows the parent, and the root sampler for roots', () => {
    const s = new ParentBasedSampler({ root: new AlwaysOffSampler() })
    expect(decide(s)).toBe(SamplingDecision.DROP)
    expect(decide(s, remote(true))).toBe(SamplingDecision.RECORD_AND_SAMPLED)
    expect(decide(s, remote(false))).toBe(SamplingDecision.DROP)
    expect(decide(s, local(true))).toBe(SamplingDecision.RECORD_AND_SAMPLED)
    expect(decide(s, local(false))).toBe(SamplingDecision.DROP)
    const custom = new ParentBasedSampler({ root: new AlwaysOnSampler(), remoteParentNotSampled: new AlwaysOnSampler() })
    expect(decide(custom, remote(false))).toBe(SamplingDecision.RECORD_AND_SAMPLED)
    expect(String(custom)).toContain('ParentBased{root=AlwaysOnSampler')
  })

  it('the default is parentbased_always_on: an incoming sampled=0 is respected end to end', () => {
    const { tracer, exporter } = memoryTracer()
    const ctx = tracer.extract({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00' })
    const span = runWithContext(ctx, () => tracer.startSpan('server'))
    expect(span.isRecording()).toBe(false)
    expect(span.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736')
    span.end()
    expect(exporter.getFinishedSpans()).toHaveLength(0)
    const ctx2 = tracer.extract({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' })
    const sampled = runWithContext(ctx2, () => tracer.startSpan('server'))
    expect(sampled.isRecording()).toBe(true)
    expect(sampled.traceFlags).toBe(TraceFlags.SAMPLED) // random flag not received, so not set
    expect(extract).toBeDefined()
  })
})

describe('the trace id a sampler sees', () => {
  // Root spans keep their generated trace id as bytes and skip formatting it
  // for the built-in always-on/off samplers, which ignore it. Any other
  // sampler (here a subclass of AlwaysOnSampler, and ratio samplers as the
  // root of ParentBased) must get the span's real id, for roots and children.
  class Recording extends AlwaysOnSampler {
    readonly seen: string[] = []
    // @ts-expect-error: AlwaysOnSampler declares no parameters; a subclass may still read them
    override shouldSample(_parent: unknown, traceId: string): SamplingResult {
      this.seen.push(traceId)
      return super.shouldSample()
    }
  }

  it('a custom sampler gets the real trace id of roots, local children and remote children', () => {
    const sampler = new Recording()
    const { tracer } = memoryTracer({ sampler })
    const root = tracer.startSpan('root')
    const child = tracer.startSpan('child', { parent: root })
    const ctx = tracer.extract({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' })
    const remoteChild = runWithContext(ctx, () => tracer.startSpan('remote child'))
    expect(sampler.seen).toEqual([root.traceId, root.traceId, '4bf92f3577b34da6a3ce929d0e0e4736'])
    expect(root.traceId).toMatch(/^[0-9a-f]{32}$/)
    expect(remoteChild.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736')
  })

  it('a ratio sampler under ParentBased decides roots from their real trace id', () => {
    const ratio = new TraceIdRatioSampler(0.5)
    const { tracer } = memoryTracer({ sampler: new ParentBasedSampler({ root: ratio }) })
    for (let i = 0; i < 200; i++) {
      const span = tracer.startSpan('root')
      // The same decision the ratio sampler makes for that id on its own.
      expect(span.isRecording()).toBe(decide(ratio, undefined, span.traceId) === SamplingDecision.RECORD_AND_SAMPLED)
      span.end()
    }
  })
})

describe('samplers the tracer decides for without calling them', () => {
  // AlwaysOn and ParentBased{root=AlwaysOn} (the default) decide from the
  // parent's sampled flag alone; the tracer makes that decision itself (see
  // sampling/shortcut.ts). Every kind of parent must get the decision the
  // sampler would have made.
  const parents = (): Array<[string, (tracer: ReturnType<typeof memoryTracer>['tracer']) => SpanContext | undefined]> => [
    ['no parent', () => undefined],
    ['remote sampled', () => remote(true)],
    ['remote not sampled', () => remote(false)],
    ['local sampled', () => local(true)],
    ['local not sampled', () => local(false)],
    ['a recording span', (tracer) => tracer.startSpan('parent') as SpanContext],
  ]

  for (const [label, make] of [
    ['AlwaysOn', () => new AlwaysOnSampler()],
    ['ParentBased{root=AlwaysOn}', () => new ParentBasedSampler({ root: new AlwaysOnSampler() })],
    ['the default sampler', undefined],
  ] as const) {
    it(`${label}: the same decision for every kind of parent as the sampler's own`, () => {
      const sampler = make?.()
      const { tracer } = memoryTracer(sampler === undefined ? {} : { sampler })
      for (const [parentLabel, parentOf] of parents()) {
        const parent = parentOf(tracer)
        const span = tracer.startSpan('s', { parent: parent ?? null })
        const expected = decide(tracer.sampler, parent, span.traceId) === SamplingDecision.RECORD_AND_SAMPLED
        expect([parentLabel, span.isRecording()]).toEqual([parentLabel, expected])
        expect([parentLabel, (span.traceFlags & TraceFlags.SAMPLED) !== 0]).toEqual([parentLabel, expected])
      }
    })
  }

  it('samplers that only look like them are called: subclasses, replaced methods, other delegates', () => {
    let calls = 0
    const counting = <T extends { shouldSample: Function }>(s: T): T => {
      const own = s.shouldSample.bind(s)
      s.shouldSample = (...args: unknown[]) => {
        calls++
        return own(...args)
      }
      return s
    }
    class Sub extends AlwaysOnSampler {
      override shouldSample(): SamplingResult {
        calls++
        return super.shouldSample()
      }
    }
    const samplers = [
      new Sub(),
      counting(new AlwaysOnSampler()),
      counting(new ParentBasedSampler({ root: new AlwaysOnSampler() })),
      new ParentBasedSampler({ root: new Sub() }),
      new ParentBasedSampler({ root: new AlwaysOnSampler(), remoteParentNotSampled: new Sub() }),
      new ParentBasedSampler({ root: new AlwaysOnSampler(), localParentNotSampled: new Sub() }),
    ]
    const parents = [undefined, undefined, undefined, undefined, remote(false), local(false)]
    samplers.forEach((sampler, i) => {
      const { tracer } = memoryTracer({ sampler })
      const before = calls
      const span = tracer.startSpan('s', { parent: parents[i] ?? null })
      expect([i, calls - before]).toEqual([i, 1])
      // Sub samples everything, even under a parent that was not sampled.
      expect([i, span.isRecording()]).toEqual([i, true])
    })
  })

  it('a ParentBased sampler that would drop still drops: AlwaysOff as the root', () => {
    const { tracer, exporter } = memoryTracer({ sampler: new ParentBasedSampler({ root: new AlwaysOffSampler() }) })
    const span = tracer.startSpan('root')
    expect(span.isRecording()).toBe(false)
    span.end()
    expect(exporter.getFinishedSpans()).toHaveLength(0)
  })
})

describe('OTEL_TRACES_SAMPLER', () => {
  it.each([
    [undefined, undefined, 'ParentBased{root=AlwaysOnSampler'],
    ['always_on', undefined, 'AlwaysOnSampler'],
    ['always_off', undefined, 'AlwaysOffSampler'],
    ['traceidratio', '0.25', 'TraceIdRatioBased{0.25}'],
    ['parentbased_always_off', undefined, 'ParentBased{root=AlwaysOffSampler'],
    ['parentbased_traceidratio', '0.5', 'ParentBased{root=TraceIdRatioBased{0.5}'],
    ['PARENTBASED_ALWAYS_ON', undefined, 'ParentBased{root=AlwaysOnSampler'],
  ])('%s (arg %s) gives %s', (name, arg, description) => {
    expect(String(samplerFromEnv({ OTEL_TRACES_SAMPLER: name, OTEL_TRACES_SAMPLER_ARG: arg }))).toContain(description)
  })

  it('an unknown sampler is reported once, naming the variable, and the default is used', async () => {
    let s: unknown
    const warnings = await collectDiagnostics(() => {
      s = samplerFromEnv({ OTEL_TRACES_SAMPLER: 'sometimes' })
    })
    expect(String(s)).toContain('ParentBased{root=AlwaysOnSampler')
    expect(warnings.join('\n')).toMatch(/OTEL_TRACES_SAMPLER="sometimes"/)
  })

  it('an invalid ratio is reported and 1.0 is used', async () => {
    expect(String(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' }))).toBe('TraceIdRatioBased{1}')
    const warnings = await collectDiagnostics(() => {
      expect(String(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: 'half' }))).toBe('TraceIdRatioBased{1}')
    })
    expect(warnings.join('\n')).toMatch(/OTEL_TRACES_SAMPLER_ARG="half"/)
  })

  it('a tracer reads the sampler from its env', () => {
    const tracer = createTracer({ env: { OTEL_TRACES_SAMPLER: 'always_off' }, processors: [] })
    expect(String(tracer.sampler)).toBe('AlwaysOffSampler')
  })
})
