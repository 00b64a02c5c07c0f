/**
 * The official W3C Trace Context test suite (w3c/trace-context, test/test.py,
 * STRICT_LEVEL=2, SPEC_LEVEL=2), replayed against these parsers behind a
 * real Node HTTP server. The suite's harness sends raw header lines; Node's
 * own HTTP parser lower-cases names, trims OWS and joins repeated lines with
 * ", ", exactly as in production. A minimal service continues the trace with
 * parseTraceparent / TraceState.parse and answers with the headers it would
 * send downstream, which are then checked with the suite's own assertions.
 *
 * Tracking notes on the suite's current (2026) state:
 * - test_tracestate_duplicated_keys expects the tracestate to be inherited,
 *   with duplicates kept or one of them dropped (w3c/trace-context#477).
 * - test_tracestate_key_illegal_vendor_format and
 *   test_tracestate_key_length_limit check the Level 2 key grammar
 *   (w3c/trace-context#584): "foo@", "foo@@bar", "foo@bar@baz", 242+"@v" and
 *   "t@"+15 are valid keys; "@foo" and 257 characters are not.
 * - The harness reads the service's tracestate with the same grammar and
 *   keeps the first of duplicated keys; parseHarnessTracestate mirrors it.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { formatTraceparent, parseTraceparent } from './traceparent.ts'
import { TraceState } from './tracestate.ts'

type HeaderLines = Array<[string, string]>

function newId(bytes: number): string {
  for (;;) {
    const id = randomBytes(bytes).toString('hex')
    if (/[^0]/.test(id)) return id
  }
}

/** What a service built on these parsers sends downstream for one incoming request. */
function outgoingHeaders(incoming: IncomingHttpHeaders): HeaderLines {
  const parent = parseTraceparent(incoming.traceparent)
  // A new trace gets a random trace id, so the random flag is set.
  const traceId = parent?.traceId ?? newId(16)
  const flags = parent?.traceFlags ?? 0x02
  const out: HeaderLines = [['traceparent', formatTraceparent(traceId, newId(8), flags)]]
  // Spec: "If the vendor failed to parse traceparent, it MUST NOT attempt to parse tracestate."
  if (parent !== null) {
    const value = TraceState.parse(incoming.tracestate)?.serialize()
    if (value !== undefined && value !== '') out.push(['tracestate', value])
  }
  return out
}

let server: Server
let port: number

beforeAll(async () => {
  server = createServer((req, res) => {
    const count = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('count') ?? '1')
    const callbacks = Array.from({ length: count }, () => outgoingHeaders(req.headers))
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(callbacks))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  port = (server.address() as AddressInfo).port
})

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

/** Sends the header lines exactly as given (names, case, repetition) and returns each callback's headers. */
function makeRequest(headers: HeaderLines, count = 1): Promise<HeaderLines[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let response = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      response += chunk
    })
    socket.on('error', reject)
    socket.on('end', () => {
      const body = response.slice(response.indexOf('\r\n\r\n') + 4)
      try {
        resolve(JSON.parse(body) as HeaderLines[])
      } catch (err) {
        reject(new Error(`bad response: ${response}`, { cause: err }))
      }
    })
    const lines = [`POST /test?count=${count} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close', 'Content-Length: 0']
    for (const [name, value] of headers) lines.push(`${name}: ${value}`)
    socket.write(Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'))
  })
}

interface HarnessTraceparent {
  traceId: string
  parentId: string
  traceFlags: number
}

/** The harness's Traceparent.from_string: exactly four fields, version 00, non-zero lower-hex ids. */
function parseHarnessTraceparent(value: string): HarnessTraceparent {
  const parts = value.split('-')
  if (parts.length !== 4) throw new Error(`harness: bad traceparent ${value}`)
  const [version, traceId, parentId, flags] = parts as [string, string, string, string]
  if (version !== '00') throw new Error(`harness: unsupported version ${value}`)
  if (!/^[0-9a-f]{32}$/.test(traceId) || /^0+$/.test(traceId)) throw new Error(`harness: bad trace_id ${value}`)
  if (!/^[0-9a-f]{16}$/.test(parentId) || /^0+$/.test(parentId)) throw new Error(`harness: bad parent_id ${value}`)
  if (!/^[0-9a-f]{2}$/.test(flags)) throw new Error(`harness: bad trace_flags ${value}`)
  return { traceId, parentId, traceFlags: parseInt(flags, 16) }
}

const HARNESS_KEY = '[a-z0-9][_0-9a-z\\-*/@]{0,255}'
const HARNESS_VALUE = '[\\x20-\\x2b\\x2d-\\x3c\\x3e-\\x7e]{0,255}[\\x21-\\x2b\\x2d-\\x3c\\x3e-\\x7e]'
const HARNESS_MEMBER = new RegExp(`^(${HARNESS_KEY})=(${HARNESS_VALUE})$`)

/** The harness's Tracestate.from_string: every member must be valid; the first of duplicated keys is kept. */
function parseHarnessTracestate(headers: HeaderLines): { map: Map<string, string>; text: string } {
  const map = new Map<string, string>()
  for (const [name, value] of headers) {
    if (name.toLowerCase() !== 'tracestate') continue
    for (const member of value.split(/[ \t]*,[ \t]*/)) {
      if (member === '') continue
      const m = HARNESS_MEMBER.exec(member)
      if (m === null) throw new Error(`harness: illegal key-value format ${JSON.stringify(member)}`)
      if (!map.has(m[1]!)) map.set(m[1]!, m[2]!)
    }
  }
  return { map, text: [...map].map(([k, v]) => `${k}=${v}`).join(',') }
}

async function makeSingleRequestAndGetTracecontext(headers: HeaderLines) {
  const [callback] = await makeRequest(headers)
  const traceparents = callback!.filter(([name]) => name.toLowerCase() === 'traceparent')
  expect(traceparents).toHaveLength(1)
  return { traceparent: parseHarnessTraceparent(traceparents[0]![1]), tracestate: parseHarnessTracestate(callback!) }
}

const TP = '00-12345678901234567890123456789012-1234567890123456-01'
const TP00 = '00-12345678901234567890123456789012-1234567890123456-00'
const TRACE_ID = '12345678901234567890123456789012'

async function expectRestarted(value: string, ...notTraceIds: string[]): Promise<void> {
  const { traceparent } = await makeSingleRequestAndGetTracecontext([['traceparent', value]])
  for (const id of notTraceIds.length > 0 ? notTraceIds : [TRACE_ID]) expect(traceparent.traceId).not.toBe(id)
}

async function expectContinued(headers: HeaderLines): Promise<void> {
  const { traceparent } = await makeSingleRequestAndGetTracecontext(headers)
  expect(traceparent.traceId).toBe(TRACE_ID)
}

async function expectTracestateDiscarded(lines: string[], key: string): Promise<void> {
  const { traceparent, tracestate } = await makeSingleRequestAndGetTracecontext([
    ['traceparent', TP00], ...lines.map((v): [string, string] => ['tracestate', v]),
  ])
  expect(traceparent.traceId).toBe(TRACE_ID)
  expect(tracestate.map.has(key)).toBe(false)
}

async function expectTracestateKept(lines: string[], expected: Record<string, string>): Promise<void> {
  const { traceparent, tracestate } = await makeSingleRequestAndGetTracecontext([
    ['traceparent', TP00], ...lines.map((v): [string, string] => ['tracestate', v]),
  ])
  expect(traceparent.traceId).toBe(TRACE_ID)
  for (const [k, v] of Object.entries(expected)) expect(tracestate.map.get(k)).toBe(v)
}

const bars = (from: number, to: number): string =>
  Array.from({ length: to - from + 1 }, (_, i) => {
    const n = String(from + i).padStart(2, '0')
    return `bar${n}=${n}`
  }).join(',')

describe('TraceContextTest', () => {
  it('test_both_traceparent_and_tracestate_missing', async () => {
    await makeSingleRequestAndGetTracecontext([])
  })

  it('test_traceparent_included_tracestate_missing', async () => {
    const { traceparent } = await makeSingleRequestAndGetTracecontext([['traceparent', TP]])
    expect(traceparent.traceId).toBe(TRACE_ID)
    expect(traceparent.parentId).not.toBe('1234567890123456')
  })

  it('test_traceparent_duplicated', async () => {
    const { traceparent } = await makeSingleRequestAndGetTracecontext([
      ['traceparent', '00-12345678901234567890123456789011-1234567890123456-01'],
      ['traceparent', TP],
    ])
    expect(traceparent.traceId).not.toBe('12345678901234567890123456789011')
    expect(traceparent.traceId).not.toBe(TRACE_ID)
  })

  it('test_traceparent_header_name', async () => {
    for (const name of ['trace-parent', 'trace.parent']) {
      const { traceparent } = await makeSingleRequestAndGetTracecontext([[name, TP]])
      expect(traceparent.traceId).not.toBe(TRACE_ID)
    }
  })

  it('test_traceparent_header_name_valid_casing', async () => {
    for (const name of ['TraceParent', 'TrAcEpArEnT', 'TRACEPARENT']) await expectContinued([[name, TP]])
  })

  it('test_traceparent_version_0x00', async () => {
    await expectRestarted(TP + '.')
    await expectRestarted(TP + '-what-the-future-will-be-like')
  })

  it('test_traceparent_version_0xcc', async () => {
    await expectContinued([['traceparent', 'cc-12345678901234567890123456789012-1234567890123456-01']])
    await expectContinued([['traceparent', 'cc-12345678901234567890123456789012-1234567890123456-01-what-the-future-will-be-like']])
    await expectRestarted('cc-12345678901234567890123456789012-1234567890123456-01.what-the-future-will-be-like')
  })

  it('test_traceparent_version_0xff', async () => {
    await expectRestarted('ff-12345678901234567890123456789012-1234567890123456-01')
  })

  it('test_traceparent_version_illegal_characters', async () => {
    await expectRestarted('.0-12345678901234567890123456789012-1234567890123456-01')
    await expectRestarted('0.-12345678901234567890123456789012-1234567890123456-01')
  })

  it('test_traceparent_version_too_long', async () => {
    await expectRestarted('000-12345678901234567890123456789012-1234567890123456-01')
    await expectRestarted('0000-12345678901234567890123456789012-1234567890123456-01')
  })

  it('test_traceparent_version_too_short', async () => {
    await expectRestarted('0-12345678901234567890123456789012-1234567890123456-01')
  })

  it('test_traceparent_trace_id_all_zero', async () => {
    await expectRestarted('00-00000000000000000000000000000000-1234567890123456-01', '00000000000000000000000000000000')
  })

  it('test_traceparent_trace_id_illegal_characters', async () => {
    await expectRestarted('00-.2345678901234567890123456789012-1234567890123456-01', '.2345678901234567890123456789012')
    await expectRestarted('00-1234567890123456789012345678901.-1234567890123456-01', '1234567890123456789012345678901.')
  })

  it('test_traceparent_trace_id_too_long', async () => {
    await expectRestarted('00-123456789012345678901234567890123-1234567890123456-01',
      '123456789012345678901234567890123', TRACE_ID, '23456789012345678901234567890123')
  })

  it('test_traceparent_trace_id_too_short', async () => {
    await expectRestarted('00-1234567890123456789012345678901-1234567890123456-01', '1234567890123456789012345678901')
  })

  it('test_traceparent_parent_id_all_zero', async () => {
    await expectRestarted('00-12345678901234567890123456789012-0000000000000000-01')
  })

  it('test_traceparent_parent_id_illegal_characters', async () => {
    await expectRestarted('00-12345678901234567890123456789012-.234567890123456-01')
    await expectRestarted('00-12345678901234567890123456789012-123456789012345.-01')
  })

  it('test_traceparent_parent_id_too_long', async () => {
    await expectRestarted('00-12345678901234567890123456789012-12345678901234567-01')
  })

  it('test_traceparent_parent_id_too_short', async () => {
    await expectRestarted('00-12345678901234567890123456789012-123456789012345-01')
  })

  it('test_traceparent_trace_flags_illegal_characters', async () => {
    await expectRestarted('00-12345678901234567890123456789012-1234567890123456-.0')
    await expectRestarted('00-12345678901234567890123456789012-1234567890123456-0.')
  })

  it('test_traceparent_trace_flags_too_long', async () => {
    await expectRestarted('00-12345678901234567890123456789012-1234567890123456-001')
  })

  it('test_traceparent_trace_flags_too_short', async () => {
    await expectRestarted('00-12345678901234567890123456789012-1234567890123456-1')
  })

  it('test_traceparent_ows_handling', async () => {
    for (const value of [' ' + TP, '\t' + TP, TP + ' ', TP + '\t', '\t ' + TP + ' \t']) {
      await expectContinued([['traceparent', value]])
    }
  })

  it('test_tracestate_included_traceparent_missing', async () => {
    const one = await makeSingleRequestAndGetTracecontext([['tracestate', 'foo=1']])
    const two = await makeSingleRequestAndGetTracecontext([['tracestate', 'foo=1,bar=2']])
    expect(one.tracestate.map.size).toBe(two.tracestate.map.size)
    expect(one.tracestate.map.size).toBe(0)
  })

  it('test_tracestate_included_traceparent_included', async () => {
    await expectTracestateKept(['foo=1,bar=2'], { foo: '1', bar: '2' })
  })

  it('test_tracestate_header_name', async () => {
    for (const name of ['trace-state', 'trace.state']) {
      const { tracestate } = await makeSingleRequestAndGetTracecontext([['traceparent', TP00], [name, 'foo=1']])
      expect(tracestate.map.has('foo')).toBe(false)
    }
  })

  it('test_tracestate_header_name_valid_casing', async () => {
    for (const name of ['TraceState', 'TrAcEsTaTe', 'TRACESTATE']) {
      const { tracestate } = await makeSingleRequestAndGetTracecontext([['traceparent', TP00], [name, 'foo=1']])
      expect(tracestate.map.get('foo')).toBe('1')
    }
  })

  it('test_tracestate_empty_header', async () => {
    const { traceparent } = await makeSingleRequestAndGetTracecontext([['traceparent', TP00], ['tracestate', '']])
    expect(traceparent.traceId).toBe(TRACE_ID)
    await expectTracestateKept(['foo=1', ''], { foo: '1' })
    await expectTracestateKept(['', 'foo=1'], { foo: '1' })
  })

  it('test_tracestate_multiple_headers_different_keys', async () => {
    const { traceparent, tracestate } = await makeSingleRequestAndGetTracecontext([
      ['traceparent', TP00], ['tracestate', 'foo=1,bar=2'], ['tracestate', 'rojo=1,congo=2'], ['tracestate', 'baz=3'],
    ])
    expect(traceparent.traceId).toBe(TRACE_ID)
    const text = tracestate.text
    const order = ['foo=1', 'bar=2', 'rojo=1', 'congo=2', 'baz=3'].map((m) => text.indexOf(m))
    expect(order.every((i) => i >= 0)).toBe(true)
    expect([...order].sort((a, b) => a - b)).toEqual(order)
  })

  it('test_tracestate_duplicated_keys', async () => {
    const text = async (lines: string[]) => {
      const { traceparent, tracestate } = await makeSingleRequestAndGetTracecontext([
        ['traceparent', TP00], ...lines.map((v): [string, string] => ['tracestate', v]),
      ])
      expect(traceparent.traceId).toBe(TRACE_ID)
      return tracestate.text
    }
    expect(await text(['foo=1,foo=1'])).toContain('foo=1')
    expect(await text(['foo=1,foo=2'])).toMatch(/foo=1|foo=2/)
    expect(await text(['foo=1', 'foo=1'])).toContain('foo=1')
    expect(await text(['foo=1', 'foo=2'])).toMatch(/foo=1|foo=2/)
  })

  it('test_tracestate_all_allowed_characters', async () => {
    const key = 'abcdefghijklmnopqrstuvwxyz0123456789_-*/'
    let value = ''
    for (let c = 0x20; c <= 0x7e; c++) if (c !== 0x2c && c !== 0x3d) value += String.fromCharCode(c)
    await expectTracestateKept([`${key}=${value}`], { [key]: value })
    await expectTracestateKept([`${key}@a-z0-9_-*/=${value}`], { [`${key}@a-z0-9_-*/`]: value })
  })

  it('test_tracestate_ows_handling', async () => {
    await expectTracestateKept(['foo=1 \t , \t bar=2, \t baz=3'], { foo: '1', bar: '2', baz: '3' })
    await expectTracestateKept(['foo=1\t \t,\t \tbar=2,\t \tbaz=3'], { foo: '1', bar: '2', baz: '3' })
    for (const value of [' foo=1', '\tfoo=1', 'foo=1 ', 'foo=1\t', '\t foo=1 \t']) {
      await expectTracestateKept([value], { foo: '1' })
    }
  })

  it('test_tracestate_key_illegal_characters', async () => {
    await expectTracestateDiscarded(['foo =1'], 'foo ')
    await expectTracestateDiscarded(['FOO=1'], 'FOO')
    await expectTracestateDiscarded(['foo.bar=1'], 'foo.bar')
  })

  it('test_tracestate_key_illegal_vendor_format (Level 2 grammar, w3c/trace-context#584)', async () => {
    await expectTracestateKept(['foo@=1,bar=2'], { 'foo@': '1', bar: '2' })
    await expectTracestateDiscarded(['@foo=1,bar=2'], 'bar')
    await expectTracestateKept(['foo@@bar=1,bar=2'], { 'foo@@bar': '1', bar: '2' })
    await expectTracestateKept(['foo@bar@baz=1,bar=2'], { 'foo@bar@baz': '1', bar: '2' })
  })

  it('test_tracestate_member_count_limit', async () => {
    const { tracestate } = await makeSingleRequestAndGetTracecontext([
      ['traceparent', TP00],
      ['tracestate', bars(1, 10)], ['tracestate', bars(11, 20)], ['tracestate', bars(21, 30)], ['tracestate', bars(31, 32)],
    ])
    expect(tracestate.map.get('bar01')).toBe('01')
    expect(tracestate.map.size).toBe(32)
    await expectTracestateDiscarded([bars(1, 10), bars(11, 20), bars(21, 30), bars(31, 33)], 'bar01')
  })

  it('test_tracestate_key_length_limit (Level 2 grammar, w3c/trace-context#584)', async () => {
    await expectTracestateKept(['foo=1', 'z'.repeat(256) + '=1'], { foo: '1' })
    await expectTracestateDiscarded(['foo=1', 'z'.repeat(257) + '=1'], 'foo')
    await expectTracestateKept(['foo=1', 't'.repeat(241) + '@' + 'v'.repeat(14) + '=1'], { foo: '1' })
    await expectTracestateKept(['foo=1', 't'.repeat(242) + '@v=1'], { foo: '1' })
    await expectTracestateKept(['foo=1', 't@' + 'v'.repeat(15) + '=1'], { foo: '1' })
  })

  it('test_tracestate_value_illegal_characters', async () => {
    await expectTracestateDiscarded(['foo=bar=baz'], 'foo')
    const { tracestate } = await makeSingleRequestAndGetTracecontext([['traceparent', TP00], ['tracestate', 'foo=,bar=3']])
    expect(tracestate.map.has('foo')).toBe(false)
    expect(tracestate.map.has('bar')).toBe(false)
  })
})

describe('AdvancedTest', () => {
  it('test_multiple_requests_with_valid_traceparent', async () => {
    const callbacks = await makeRequest([['traceparent', TP]], 3)
    const parsed = callbacks.map((h) => parseHarnessTraceparent(h.find(([n]) => n === 'traceparent')![1]))
    expect(new Set(parsed.map((p) => p.traceId))).toEqual(new Set([TRACE_ID]))
    expect(new Set(parsed.map((p) => p.parentId)).size).toBe(3)
  })

  it('test_multiple_requests_without_traceparent', async () => {
    const callbacks = await makeRequest([], 3)
    const parsed = callbacks.map((h) => parseHarnessTraceparent(h.find(([n]) => n === 'traceparent')![1]))
    expect(new Set(parsed.map((p) => p.parentId)).size).toBe(3)
  })

  it('test_multiple_requests_with_illegal_traceparent', async () => {
    const callbacks = await makeRequest([['traceparent', '00-00000000000000000000000000000000-1234567890123456-01']], 3)
    const parsed = callbacks.map((h) => parseHarnessTraceparent(h.find(([n]) => n === 'traceparent')![1]))
    expect(parsed.some((p) => p.traceId === '0'.repeat(32))).toBe(false)
    expect(new Set(parsed.map((p) => p.parentId)).size).toBe(3)
  })
})

describe('TraceContext2Test', () => {
  it('test_propagates_random_flag', async () => {
    const { traceparent } = await makeSingleRequestAndGetTracecontext([
      ['traceparent', '00-12345678901234567890123456789012-1234567890123456-02'],
    ])
    expect(traceparent.traceId).toBe(TRACE_ID)
    expect(traceparent.parentId).not.toBe('1234567890123456')
    // Level 2 "Random Trace ID Flag": a continued trace keeps the flag as received.
    expect(traceparent.traceFlags & 0x02).toBe(0x02)
    expect(traceparent.traceFlags & 0x01).toBe(0)
  })
})
