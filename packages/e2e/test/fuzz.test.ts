import fc from 'fast-check'
import { Baggage, formatTraceparent, parseTraceparent, TraceState } from '@spanline/core'
import { formatB3Single, parseB3Multi, parseB3Single } from '../../core/src/propagation/b3.ts'
import { isValidTraceStateKey, isValidTraceStateValue } from '../../core/src/propagation/tracestate.ts'
import { firstForwardedFor, firstHeaderToken, nodeAddress, parseForwarded, parseHostPort } from '../../core/src/http/forwarded.ts'
import { redactQuery, sensitiveSet, DEFAULT_SENSITIVE_QUERY_PARAMS } from '../../core/src/http/redact.ts'

/**
 * Property-based fuzzing of every parser that reads request data: it never
 * throws, never accepts an invalid value, and what it accepts re-serialises
 * to something that parses back to the same thing. 100,000 cases per parser
 * in every CI run; `SPANLINE_FUZZ_RUNS=2000000 npm test -- packages/e2e/test/fuzz`
 * for a long run. Inputs mix random text with near-valid headers (valid
 * ones with characters replaced, inserted or removed), where bugs live.
 */
const RUNS = Number(process.env.SPANLINE_FUZZ_RUNS ?? 100_000)
const opts = { numRuns: RUNS }
jest.setTimeout(Math.max(60_000, RUNS / 50))

const hexChar = fc.constantFrom(...'0123456789abcdef')
const hex = (n: number): fc.Arbitrary<string> => fc.string({ unit: hexChar, minLength: n, maxLength: n })
const noise = fc.constantFrom(...'0123456789abcdefABCDEFxyz-_=,; \t@*/%"[]:.\r\n\u0000\u00e9\u{1f600}')

/** A string made from `valid` with a few random edits. */
function mutated(valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc.tuple(valid, fc.array(fc.tuple(fc.nat(), fc.constantFrom('replace', 'insert', 'delete'), noise), { maxLength: 3 }))
    .map(([s, edits]) => {
      let out = s
      for (const [at, kind, ch] of edits) {
        const i = out.length === 0 ? 0 : at % (out.length + 1)
        if (kind === 'insert') out = out.slice(0, i) + ch + out.slice(i)
        else if (kind === 'delete') out = out.slice(0, i) + out.slice(i + 1)
        else out = out.slice(0, i) + ch + out.slice(i + 1)
      }
      return out
    })
}

/** A cheap deterministic generator, so long member lists cost one arbitrary instead of one per member. */
function seeded(seed: number): (n: number) => number {
  let x = seed | 0 || 1
  return (n) => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) % n
  }
}
const pick = (chars: string, rnd: (n: number) => number, len: number): string => {
  let out = ''
  for (let i = 0; i < len; i++) out += chars[rnd(chars.length)]
  return out
}

const anyText = fc.oneof(fc.string(), fc.string({ unit: noise, maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 60 }))

describe(`fuzzing the header parsers (${RUNS} cases each)`, () => {
  it('traceparent', () => {
    const valid = fc.tuple(hex(2), hex(32), hex(16), hex(2)).map((p) => p.join('-'))
    fc.assert(fc.property(fc.oneof(anyText, valid, mutated(valid)), (input) => {
      const parsed = parseTraceparent(input)
      if (parsed === null) return true
      const { traceId, spanId, traceFlags } = parsed
      const again = parseTraceparent(formatTraceparent(traceId, spanId, traceFlags))
      return /^[0-9a-f]{32}$/.test(traceId) && /^[0-9a-f]{16}$/.test(spanId) &&
        traceId !== '0'.repeat(32) && spanId !== '0'.repeat(16) && (traceFlags & ~0x03) === 0 &&
        // accepted means the ids really were in the input, and our output re-parses to the same
        input.includes(`-${traceId}-${spanId}-`) &&
        again !== null && again.traceId === traceId && again.spanId === spanId && again.traceFlags === traceFlags
    }), opts)
  })

  it('tracestate', () => {
    // 1 to 40 members (the limit is 32), keys and values from their grammars.
    const valid = fc.tuple(fc.integer({ min: 1, max: 40 }), fc.integer()).map(([count, seed]) => {
      const rnd = seeded(seed)
      const members: string[] = []
      for (let i = 0; i < count; i++) {
        const key = pick('abcxyz019', rnd, 1) + pick('abcdefghijklmnopqrstuvwxyz0123456789_-*/@', rnd, rnd(12))
        members.push(`${key}=${pick('abcXYZ019!#+-./:;<>?~', rnd, 1 + rnd(12))}`)
      }
      return members.join(rnd(4) === 0 ? ' , ' : ',')
    })
    fc.assert(fc.property(fc.oneof(anyText, valid, mutated(valid), fc.array(mutated(valid), { maxLength: 3 })), (input) => {
      const ts = TraceState.parse(input)
      if (ts === undefined) return true
      const keys = ts.keys()
      if (ts.size > 32) return false
      for (const k of keys) if (!isValidTraceStateKey(k) || !isValidTraceStateValue(ts.get(k)!)) return false
      const again = TraceState.parse(ts.serialize(Infinity))
      if (again === undefined || again.keys().join('\n') !== keys.join('\n')) return false
      for (const k of keys) if (again.get(k) !== ts.get(k)) return false
      return true
    }), opts)
  })

  it('baggage', () => {
    // 0 to 70 members (the limit is 64), keys from the token grammar, any values percent-encoded.
    const valid = fc.tuple(fc.integer({ min: 0, max: 70 }), fc.integer(), fc.string({ maxLength: 12 })).map(([count, seed, text]) => {
      const rnd = seeded(seed)
      const members: string[] = []
      for (let i = 0; i < count; i++) {
        const value = rnd(3) === 0 ? encodeURIComponent(text) : pick('abcXYZ019%20!', rnd, rnd(10))
        members.push(`${pick('abcXYZ019!#$&*+.^_|~-', rnd, 1 + rnd(12))}=${value}${rnd(5) === 0 ? ';meta=1' : ''}`)
      }
      return members.join(',')
    })
    fc.assert(fc.property(fc.oneof(anyText, valid, mutated(valid)), (input) => {
      const b = Baggage.parse(input)
      if (b.size > 64) return false
      const wire = b.serialize()
      if (Buffer.byteLength(wire) > 8192) return false
      const before = [...b.entries()]
      const after = [...Baggage.parse(wire).entries()]
      if (before.length !== after.length) return false
      for (let i = 0; i < before.length; i++) {
        const [k1, e1] = before[i]!
        const [k2, e2] = after[i]!
        if (k1 !== k2 || e1.value !== e2.value || e1.metadata !== e2.metadata) return false
      }
      return true
    }), opts)
  })

  it('b3 (single and multi)', () => {
    const valid = fc.tuple(fc.oneof(hex(16), hex(32)), hex(16), fc.constantFrom('0', '1', 'd'), fc.option(hex(16), { nil: undefined }))
      .map(([t, s, f, p]) => [t, s, f, ...(p === undefined ? [] : [p])].join('-'))
    const names = fc.constantFrom('x-b3-traceid', 'x-b3-spanid', 'x-b3-sampled', 'x-b3-flags', 'x-b3-parentspanid')
    fc.assert(fc.property(fc.oneof(anyText, valid, mutated(valid)), fc.dictionary(names, fc.oneof(anyText, hex(16), hex(32))), (single, multi) => {
      const a = parseB3Single(single)
      if (a !== null) {
        if (!/^[0-9a-f]{32}$/.test(a.traceId) || !/^[0-9a-f]{16}$/.test(a.spanId)) return false
        const back = parseB3Single(formatB3Single(a.traceId, a.spanId, a.sampled === true || a.debug))
        if (back === null || back.traceId !== a.traceId || back.spanId !== a.spanId) return false
      }
      const b = parseB3Multi((name) => multi[name])
      return b === null || (/^[0-9a-f]{32}$/.test(b.traceId) && /^[0-9a-f]{16}$/.test(b.spanId))
    }), opts)
  })

  it('Forwarded, X-Forwarded-*, Host', () => {
    const node = fc.oneof(fc.ipV4(), fc.ipV6().map((ip) => `"[${ip}]"`), fc.constant('unknown'), fc.constant('_hidden'))
    const valid = fc.tuple(node, fc.constantFrom('http', 'https'), fc.constantFrom('shop.example', 'a.b.c:8443', '[::1]:3000', '127.0.0.1'))
      .map(([f, p, h]) => `for=${f};proto=${p};host=${h}`)
    const unsafe = /[\r\n\u0000]/
    fc.assert(fc.property(fc.oneof(anyText, valid, mutated(valid)), anyText, (forwarded, other) => {
      const info = parseForwarded(forwarded)
      for (const v of [info.for, info.host, info.proto]) if (v !== undefined && unsafe.test(v)) return false
      if (info.for !== undefined && unsafe.test(nodeAddress(info.for))) return false
      const xff = firstForwardedFor(other)
      const token = firstHeaderToken(other)
      if ((xff !== undefined && unsafe.test(xff)) || (token !== undefined && unsafe.test(token))) return false
      const hp = parseHostPort(other)
      if (hp === undefined) return true
      return hp.address.length > 0 && (hp.port === undefined || (Number.isInteger(hp.port) && hp.port >= 1 && hp.port <= 65535))
    }), opts)
  })

  it('query redaction never lets a sensitive value through', () => {
    const sensitive = sensitiveSet(DEFAULT_SENSITIVE_QUERY_PARAMS)
    const names = new Set(DEFAULT_SENSITIVE_QUERY_PARAMS)
    const pair = fc.tuple(fc.oneof(fc.constantFrom(...DEFAULT_SENSITIVE_QUERY_PARAMS), fc.constantFrom('q', 'page', 'sort', 'x')), fc.nat(999))
    fc.assert(fc.property(fc.array(pair, { maxLength: 8 }), anyText, (pairs, junk) => {
      const out = redactQuery(pairs.map(([k, v]) => `${k}=SECRET${v}`).join('&'), sensitive)
      for (const part of out.split('&')) {
        const eq = part.indexOf('=')
        if (names.has(part.slice(0, eq)) && part.slice(eq + 1) !== 'REDACTED') return false
      }
      redactQuery(junk, sensitive)
      return true
    }), opts)
  })
})
