import {
  Baggage,
  createPropagator,
  createTracer,
  getActiveBaggage,
  incomingHeadersGetter,
  propagatorFromEnv,
  ROOT_CONTEXT,
  runWithContext,
  runWithBaggage,
  SimpleSpanProcessor,
  SpanKind,
  TraceState,
  type Tracer,
  type TracerOptions,
} from '../src/index.ts'
import { InMemorySpanExporter } from '../src/testing.ts'
import { collectDiagnostics } from './helpers.ts'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT = '00f067aa0ba902b7'

function tracerWith(options: TracerOptions = {}): Tracer {
  return createTracer({ env: {}, processors: [new SimpleSpanProcessor(new InMemorySpanExporter())], ...options })
}

/**
 * What a service does with each request: extract the incoming headers, start
 * a SERVER span as their child, and inject into an outgoing call's headers.
 * Returns the outgoing headers and the server span.
 */
function hop(incoming: Record<string, string | string[]>, tracer = tracerWith()) {
  const ctx = tracer.extract(incoming, ROOT_CONTEXT, incomingHeadersGetter)
  const span = runWithContext(ctx, () => tracer.startSpan('GET /', { kind: SpanKind.SERVER }))
  const outgoing: Record<string, string> = {}
  tracer.inject(outgoing, ctx.withSpan(span))
  return { outgoing, span, ctx }
}

function tp(outgoing: Record<string, string>): { version: string; traceId: string; spanId: string; flags: string } {
  const [version, traceId, spanId, flags] = outgoing.traceparent!.split('-') as [string, string, string, string]
  return { version, traceId, spanId, flags }
}

describe('traceparent end to end: incoming header -> outgoing header', () => {
  it('continues a valid trace: same trace id, new span id, parent = incoming span id', () => {
    const { outgoing, span } = hop({ traceparent: `00-${TRACE}-${PARENT}-01` })
    expect(tp(outgoing)).toEqual({ version: '00', traceId: TRACE, spanId: span.spanId, flags: '01' })
    expect(span.spanId).not.toBe(PARENT)
    expect((span as unknown as { parentSpanId: string }).parentSpanId).toBe(PARENT)
  })

  // Each row: incoming traceparent -> whether it is continued
  const rows: [string, string | string[], boolean][] = [
    ['valid, sampled', `00-${TRACE}-${PARENT}-01`, true],
    ['valid, not sampled', `00-${TRACE}-${PARENT}-00`, true],
    ['surrounding spaces and tabs tolerated', ` \t00-${TRACE}-${PARENT}-01\t `, true],
    ['future version, exactly 55 chars', `cc-${TRACE}-${PARENT}-01`, true],
    ['future version with more fields after "-"', `cc-${TRACE}-${PARENT}-01-what-the-future-will-be-like`, true],
    ['future version followed by junk without "-"', `cc-${TRACE}-${PARENT}-01.what`, false],
    ['version ff', `ff-${TRACE}-${PARENT}-01`, false],
    ['version 00 with extra data', `00-${TRACE}-${PARENT}-01-extra`, false],
    ['version 00 too short', `00-${TRACE}-${PARENT}-1`, false],
    ['uppercase hex in trace id', `00-${TRACE.toUpperCase()}-${PARENT}-01`, false],
    ['uppercase hex in version', `0A-${TRACE}-${PARENT}-01`, false],
    ['uppercase flags', `00-${TRACE}-${PARENT}-0A`, false],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${PARENT}-01`, false],
    ['all-zero parent id', `00-${TRACE}-${'0'.repeat(16)}-01`, false],
    ['non-hex in parent id', `00-${TRACE}-00f067aa0ba902bz-01`, false],
    ['wrong separator', `00_${TRACE}-${PARENT}-01`, false],
    ['trace id too long', `00-${TRACE}0-${PARENT}-01`, false],
    ['parent id too short', `00-${TRACE}-${PARENT.slice(1)}-01`, false],
    ['empty', '', false],
    ['two header fields (array)', [`00-${TRACE}-${PARENT}-01`, `00-${TRACE}-${PARENT}-01`], false],
    ['two header fields (joined by Node)', `00-${TRACE}-${PARENT}-01, 00-${TRACE}-${PARENT}-01`, false],
    ['a single-element array', [`00-${TRACE}-${PARENT}-01`], true],
  ]
  it.each(rows)('%s', (_label, value, continued) => {
    const { outgoing } = hop({ traceparent: value, tracestate: 'foo=1' })
    const out = tp(outgoing)
    expect(out.version).toBe('00')
    if (continued) {
      expect(out.traceId).toBe(TRACE)
      expect(outgoing.tracestate).toBe('foo=1')
    } else {
      expect(out.traceId).not.toBe(TRACE)
      expect(out.traceId).toMatch(/^[0-9a-f]{32}$/)
      // tracestate must be discarded with an invalid traceparent
      expect(outgoing.tracestate).toBeUndefined()
    }
  })

  it('starts a new trace without any traceparent, and drops a lone tracestate', () => {
    const { outgoing } = hop({ tracestate: 'foo=1' })
    expect(tp(outgoing).flags).toBe('03') // sampled + random: we generated the trace id
    expect(outgoing.tracestate).toBeUndefined()
  })

  it.each([
    ['01', '01'], // sampled
    ['00', '00'], // not sampled -> parent-based sampler keeps it off
    ['03', '03'], // sampled + random: random kept because it was received
    ['02', '02'], // random only
    ['ff', '03'], // unknown flags zeroed, the two known ones tested bitwise
    ['fe', '02'],
    ['09', '01'], // 0x08 unknown: zeroed, sampled bit still honoured
    ['08', '00'],
  ])('flags %s come out as %s', (incoming, expected) => {
    const { outgoing } = hop({ traceparent: `00-${TRACE}-${PARENT}-${incoming}` })
    expect(tp(outgoing).flags).toBe(expected)
  })

  it('a future version is answered with version 00', () => {
    const { outgoing } = hop({ traceparent: `cc-${TRACE}-${PARENT}-01-more` })
    expect(tp(outgoing).version).toBe('00')
  })
})

describe('tracestate end to end', () => {
  const parent = `00-${TRACE}-${PARENT}-01`
  const out = (tracestate: string | string[]): string | undefined => hop({ traceparent: parent, tracestate }).outgoing.tracestate

  it('is passed on unchanged when valid', () => {
    expect(out('congo=t61rcWkgMzE,rojo=00f067aa0ba902b7')).toBe('congo=t61rcWkgMzE,rojo=00f067aa0ba902b7')
  })
  it('combines several header fields in order', () => {
    expect(out(['foo=1', 'bar=2,baz=3'])).toBe('foo=1,bar=2,baz=3')
  })
  it('tolerates empty members and optional whitespace', () => {
    expect(out('foo=1 , ,\tbar=2,')).toBe('foo=1,bar=2')
  })
  it('keeps 32 members and discards a list of 33', () => {
    const members = Array.from({ length: 33 }, (_, i) => `k${i}=v${i}`)
    expect(out(members.slice(0, 32).join(','))).toBe(members.slice(0, 32).join(','))
    expect(out(members.join(','))).toBeUndefined()
  })
  it.each([
    ['uppercase key', 'Foo=1'],
    ['value with a comma-like illegal char "="', 'foo=a=b'],
    ['member without "="', 'foo'],
    ['empty value', 'foo='],
    ['value ending in a space', 'foo=bar '.slice(0, -1) + ' x' + '\u0000'],
    ['key too long', `${'a'.repeat(257)}=1`],
    ['key starting with "@"', '@foo=1'],
    ['key starting with "_"', '_foo=1'],
    ['value too long', `foo=${'a'.repeat(257)}`],
  ])('discards the whole list with an illegal member: %s', (_label, value) => {
    expect(out(`ok=1,${value}`)).toBeUndefined()
  })
  // The official suite's strict (level 2) tracestate cases, by test name.
  const KEY = 'abcdefghijklmnopqrstuvwxyz0123456789_-*/'
  const VALUE = [[0x20, 0x2b], [0x2d, 0x3c], [0x3e, 0x7e]].map(([a, b]) => Array.from({ length: b! - a! + 1 }, (_, i) => String.fromCharCode(a! + i)).join('')).join('')
  it.each<[string, string[], Record<string, string> | undefined]>([
    ['test_tracestate_included_traceparent_included', ['foo=1,bar=2'], { foo: '1', bar: '2' }],
    ['test_tracestate_empty_header', [''], undefined],
    ['test_tracestate_empty_header (then foo)', ['', 'foo=1'], { foo: '1' }],
    ['test_tracestate_empty_header (foo then empty)', ['foo=1', ''], { foo: '1' }],
    ['test_tracestate_multiple_headers_different_keys', ['foo=1,bar=2', 'rojo=1,congo=2', 'baz=3'], { foo: '1', bar: '2', rojo: '1', congo: '2', baz: '3' }],
    // Since w3c/trace-context#477 duplicates may be kept or dropped, not the whole list: we keep the first.
    ['test_tracestate_duplicated_keys (one field, same value)', ['foo=1,foo=1'], { foo: '1' }],
    ['test_tracestate_duplicated_keys (one field)', ['foo=1,foo=2'], { foo: '1' }],
    ['test_tracestate_duplicated_keys (two fields, same value)', ['foo=1', 'foo=1'], { foo: '1' }],
    ['test_tracestate_duplicated_keys (two fields)', ['foo=1', 'foo=2'], { foo: '1' }],
    ['test_tracestate_all_allowed_characters (simple key)', [`${KEY}=${VALUE}`], { [KEY]: VALUE }],
    ['test_tracestate_all_allowed_characters (vendor key)', [`${KEY}@a-z0-9_-*/=${VALUE}`], { [`${KEY}@a-z0-9_-*/`]: VALUE }],
    ['test_tracestate_ows_handling (spaces and tabs)', ['foo=1 \t , \t bar=2, \t baz=3'], { foo: '1', bar: '2', baz: '3' }],
    ['test_tracestate_ows_handling (leading/trailing)', ['\t foo=1 \t'], { foo: '1' }],
    ['test_tracestate_key_illegal_characters (space before =)', ['foo =1'], undefined],
    ['test_tracestate_key_illegal_characters (uppercase)', ['FOO=1'], undefined],
    ['test_tracestate_key_illegal_characters (dot)', ['foo.bar=1'], undefined],
    // Level 2 key grammar (w3c/trace-context#386, suite since #584): '@' is an ordinary key character.
    ['test_tracestate_key_illegal_vendor_format (trailing @ is legal)', ['foo@=1,bar=2'], { 'foo@': '1', bar: '2' }],
    ['test_tracestate_key_illegal_vendor_format (empty tenant)', ['@foo=1,bar=2'], undefined],
    ['test_tracestate_key_illegal_vendor_format (@@ is legal)', ['foo@@bar=1,bar=2'], { 'foo@@bar': '1', bar: '2' }],
    ['test_tracestate_key_illegal_vendor_format (two @ are legal)', ['foo@bar@baz=1,bar=2'], { 'foo@bar@baz': '1', bar: '2' }],
    ['test_tracestate_member_count_limit (32)', [Array.from({ length: 32 }, (_, i) => `bar${i}=${i}`).join(',')], { bar0: '0', bar31: '31' }],
    ['test_tracestate_member_count_limit (33)', [Array.from({ length: 33 }, (_, i) => `bar${i}=${i}`).join(',')], undefined],
    ['test_tracestate_key_length_limit (256)', ['foo=1', `${'z'.repeat(256)}=1`], { foo: '1' }],
    ['test_tracestate_key_length_limit (257)', ['foo=1', `${'z'.repeat(257)}=1`], undefined],
    ['test_tracestate_key_length_limit (tenant 241, system 14)', ['foo=1', `${'t'.repeat(241)}@${'v'.repeat(14)}=1`], { foo: '1' }],
    ['test_tracestate_key_length_limit (244 chars with @ is legal)', ['foo=1', `${'t'.repeat(242)}@v=1`], { foo: '1' }],
    ['test_tracestate_key_length_limit (17 chars with @ is legal)', ['foo=1', `t@${'v'.repeat(15)}=1`], { foo: '1' }],
    ['test_tracestate_key_length_limit (257 chars with @)', ['foo=1', `${'t'.repeat(250)}@${'v'.repeat(6)}=1`], undefined],
    ['test_tracestate_value_illegal_characters (=)', ['foo=bar=baz'], undefined],
    ['test_tracestate_value_illegal_characters (empty value)', ['foo=,bar=3'], undefined],
  ])('%s', (_name, fields, expected) => {
    const { outgoing } = hop({ traceparent: '00-12345678901234567890123456789012-1234567890123456-00', tracestate: fields })
    expect(tp(outgoing).traceId).toBe('12345678901234567890123456789012')
    if (expected === undefined) {
      expect(outgoing.tracestate).toBeUndefined()
      return
    }
    const got = TraceState.parse(outgoing.tracestate)!
    for (const [k, v] of Object.entries(expected)) expect(got.get(k)).toBe(v)
    if (_name.includes('different_keys')) expect(outgoing.tracestate).toBe('foo=1,bar=2,rojo=1,congo=2,baz=3')
  })

  it('accepts multi-tenant keys and keys/values at their size limits', () => {
    const v = `t1@sys=1,${'a'.repeat(256)}=x,k=${'v'.repeat(256)}`
    expect(out(v)).toBeDefined()
    expect(out('0tenant@system=1')).toBe('0tenant@system=1')
  })
  it('our own member moves to the left when added or updated', () => {
    const ts = TraceState.parse('a=1,spanline=old,b=2')!
    expect(ts.set('spanline', 'new').serialize()).toBe('spanline=new,a=1,b=2')
    expect(ts.set('zz', '9').serialize()).toBe('zz=9,a=1,spanline=old,b=2')
  })
  it('truncation keeps at least 512 characters, dropping whole members: first long ones, then from the right', () => {
    const long = `big=${'x'.repeat(200)}`
    const small = Array.from({ length: 30 }, (_, i) => `key${String(i).padStart(2, '0')}=${'v'.repeat(10)}`)
    const ts = TraceState.parse([small.slice(0, 10).join(','), long, small.slice(10).join(',')].join(','))!
    const s = ts.serialize()
    expect(s.length).toBeLessThanOrEqual(512)
    expect(s).not.toContain('big=')
    expect(s.startsWith(small.slice(0, 10).join(','))).toBe(true)
    // every member whole
    for (const m of s.split(',')) expect(m).toMatch(/^key\d\d=v{10}$/)
    // nothing was dropped that fit: 30 members of 16 chars + commas = 509
    expect(s.split(',')).toHaveLength(30)
  })
})

describe('baggage end to end', () => {
  it('is extracted into the context, readable by the app, and injected into outgoing calls', () => {
    const tracer = tracerWith()
    const ctx = tracer.extract({ baggage: 'userId=alice,tier=gold%20plus;prop=1' })
    expect(ctx.baggage?.getValue('userId')).toBe('alice')
    expect(ctx.baggage?.getValue('tier')).toBe('gold plus')
    const outgoing: Record<string, string> = {}
    runWithContext(ctx, () => {
      const more = getActiveBaggage()!.set('region', 'eu west')
      runWithBaggage(more, () => tracer.inject(outgoing))
    })
    const back = Baggage.parse(outgoing.baggage)
    expect(back.getValue('userId')).toBe('alice')
    expect(back.getValue('tier')).toBe('gold plus')
    expect(back.getValue('region')).toBe('eu west')
    expect(back.get('tier')?.metadata).toBe('prop=1')
  })

  it('keeps at least 64 members', () => {
    const tracer = tracerWith()
    const value = Array.from({ length: 64 }, (_, i) => `k${i}=v${i}`).join(',')
    expect(tracer.extract({ baggage: value }).baggage?.size).toBe(64)
  })
})

describe('B3', () => {
  it('extracts the single b3 header and injects it back', () => {
    const tracer = tracerWith({ propagator: ['b3'] })
    const { outgoing, span } = hop({ b3: `${TRACE}-${PARENT}-1` }, tracer)
    expect(span.traceId).toBe(TRACE)
    expect(outgoing.b3).toBe(`${TRACE}-${span.spanId}-1`)
    expect(outgoing.traceparent).toBeUndefined()
  })

  it('pads 64-bit trace ids to 128 bits and honours debug as sampled', () => {
    const tracer = tracerWith({ propagator: ['b3multi'] })
    const { outgoing, span } = hop({ 'x-b3-traceid': 'a3ce929d0e0e4736', 'x-b3-spanid': PARENT, 'x-b3-flags': '1' }, tracer)
    expect(span.traceId).toBe('0000000000000000a3ce929d0e0e4736')
    expect(span.isRecording()).toBe(true)
    expect(outgoing).toEqual({ 'x-b3-traceid': '0000000000000000a3ce929d0e0e4736', 'x-b3-spanid': span.spanId, 'x-b3-sampled': '1' })
  })

  it('X-B3-Sampled: 0 is respected by the default parent-based sampler', () => {
    const tracer = tracerWith({ propagator: ['b3multi'] })
    const { span } = hop({ 'x-b3-traceid': TRACE, 'x-b3-spanid': PARENT, 'x-b3-sampled': '0' }, tracer)
    expect(span.isRecording()).toBe(false)
  })
})

describe('composite propagation', () => {
  it('injects every configured format', () => {
    const tracer = tracerWith({ propagator: ['tracecontext', 'baggage', 'b3', 'b3multi'] })
    const { outgoing } = hop({ traceparent: `00-${TRACE}-${PARENT}-01` }, tracer)
    expect(Object.keys(outgoing).sort()).toEqual(['b3', 'traceparent', 'x-b3-sampled', 'x-b3-spanid', 'x-b3-traceid'])
  })

  it('extracts from the first format present in the configured order', () => {
    const other = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
    const headers = { traceparent: `00-${TRACE}-${PARENT}-01`, b3: `${other}-${PARENT}-1` }
    expect(hop(headers, tracerWith({ propagator: ['tracecontext', 'b3'] })).span.traceId).toBe(TRACE)
    expect(hop(headers, tracerWith({ propagator: ['b3', 'tracecontext'] })).span.traceId).toBe(other)
    // the first format is absent (or invalid): the next one is used
    expect(hop({ b3: headers.b3 }, tracerWith({ propagator: ['tracecontext', 'b3'] })).span.traceId).toBe(other)
    expect(hop({ traceparent: 'garbage', b3: headers.b3 }, tracerWith({ propagator: ['tracecontext', 'b3'] })).span.traceId).toBe(other)
  })

  it('none disables propagation', () => {
    const { outgoing, span } = hop({ traceparent: `00-${TRACE}-${PARENT}-01` }, tracerWith({ propagator: ['none'] }))
    expect(outgoing).toEqual({})
    expect(span.traceId).not.toBe(TRACE)
  })

  it('OTEL_PROPAGATORS: default tracecontext,baggage; unknown names reported and skipped', async () => {
    expect(propagatorFromEnv({}).fields()).toEqual(['traceparent', 'tracestate', 'baggage'])
    expect(propagatorFromEnv({ OTEL_PROPAGATORS: 'b3multi' }).fields()).toContain('x-b3-traceid')
    expect(propagatorFromEnv({ OTEL_PROPAGATORS: 'none' }).fields()).toEqual([])
    let p = propagatorFromEnv({})
    const warnings = await collectDiagnostics(() => {
      p = propagatorFromEnv({ OTEL_PROPAGATORS: 'tracecontext, xray ,B3' })
    })
    expect(p.fields()).toEqual(['traceparent', 'tracestate', 'b3'])
    expect(warnings.join('\n')).toMatch(/OTEL_PROPAGATORS: unknown propagator "xray"/)
    expect(() => createPropagator(['constructor'])).toThrow(/unknown propagator/)
  })
})

describe('carriers', () => {
  const tracer = tracerWith()
  const valid = `00-${TRACE}-${PARENT}-01`

  it('reads Node incoming headers, fetch Headers, Maps and mixed-case plain objects', () => {
    for (const carrier of [
      { traceparent: valid },
      new Headers({ Traceparent: valid }),
      new Map([['traceparent', valid]]),
      { TraceParent: valid },
    ]) {
      expect(tracer.extract(carrier).span?.traceId).toBe(TRACE)
    }
  })

  it('writes into plain objects, OutgoingHttpHeaders (replacing other casings) and fetch Headers', () => {
    const ctx = tracer.extract({ traceparent: valid })
    const headers = new Headers()
    tracer.inject(headers, ctx)
    expect(headers.get('traceparent')).toBe(valid)
    const outgoing: Record<string, string> = { Traceparent: 'stale', Accept: 'x' }
    tracer.inject(outgoing, ctx)
    expect(outgoing).toEqual({ traceparent: valid, Accept: 'x' })
  })

  it('ignores carriers that are not objects, and never throws', () => {
    expect(() => tracer.extract(null)).not.toThrow()
    expect(() => tracer.extract('traceparent')).not.toThrow()
    expect(() => tracer.inject(undefined)).not.toThrow()
    expect(tracer.extract({ traceparent: 42 as never }).span).toBeUndefined()
  })
})
