import type { IncomingHttpHeaders } from 'node:http'
import { AttributeLead } from '../span.ts'
import { RequestLead, type LeadInputs } from './request-lead.ts'

/** A request's inputs; header values are new strings each time, as Node's parser makes them. */
function inputs(o: {
  method?: string; rawMethod?: string; httpVersion?: string; encrypted?: boolean; headers?: IncomingHttpHeaders; peer?: string
  route?: string | undefined; status?: number; errorType?: string
}): LeadInputs {
  const copy = (v: string): string => Buffer.from(v).toString()
  const headers: IncomingHttpHeaders = {}
  for (const [k, v] of Object.entries(o.headers ?? { host: 'a.test:8080', 'user-agent': 'probe/1' })) {
    if (v !== undefined) headers[k] = typeof v === 'string' ? copy(v) : v
  }
  return {
    method: o.method ?? 'GET',
    rawMethod: o.rawMethod ?? o.method ?? 'GET',
    httpVersion: copy(o.httpVersion ?? '1.1'),
    encrypted: o.encrypted ?? false,
    headers,
    peer: o.peer === undefined ? { address: '127.0.0.1' } : { address: copy(o.peer) },
    route: 'route' in o ? o.route : '/users/:id',
    status: o.status ?? 200,
    errorType: o.errorType,
  }
}

function fill(lead: RequestLead, r: LeadInputs, finished = true): { attributes: Record<string, unknown>; vouched: AttributeLead; entries: Array<string | number> } {
  const out: Array<string | number> = []
  const vouched = new AttributeLead()
  const n = lead.fillInto(r, out, finished, vouched)
  const attributes: Record<string, unknown> = {}
  for (let i = 0; i < n; i += 2) attributes[out[i] as string] = out[i + 1]
  return { attributes, vouched, entries: out.slice(0, n) }
}

describe('RequestLead', () => {
  const base = { host: 'a.test:8080', 'user-agent': 'probe/1' }

  it('writes the server\'s part, the client\'s and the outcome, and vouches for them with the stamps of the last remake', () => {
    const lead = new RequestLead()
    const first = fill(lead, inputs({}))
    expect(first.entries).toEqual([
      'http.request.method', 'GET', 'url.scheme', 'http', 'network.protocol.version', '1.1', 'server.address', 'a.test', 'server.port', 8080,
      'client.address', '127.0.0.1', 'network.peer.address', '127.0.0.1', 'user_agent.original', 'probe/1',
      'http.route', '/users/:id', 'http.response.status_code', 200,
    ])
    expect(first.vouched).toMatchObject({ key: lead, count: 10, longCount: 16, longestCount: 20 })
    expect(first.vouched.stamp).toBeGreaterThan(0)
    // The same inputs (other string objects): nothing remade, the same stamps.
    const again = fill(lead, inputs({}))
    expect(again.entries).toEqual(first.entries)
    expect(again.vouched).toEqual(first.vouched)
  })

  // Each input alone changed from the base request: what it changes, and which part is remade.
  const cases: Array<[string, Parameters<typeof inputs>[0], Record<string, unknown>, 'server' | 'client' | 'both' | 'outcome']> = [
    ['a known method', { method: 'POST' }, { 'http.request.method': 'POST' }, 'server'],
    ['an unknown method', { method: '_OTHER', rawMethod: 'PURGE' }, { 'http.request.method': '_OTHER', 'http.request.method_original': 'PURGE' }, 'server'],
    ['another HTTP version', { httpVersion: '2.0' }, { 'network.protocol.version': '2' }, 'server'],
    ['TLS', { encrypted: true }, { 'url.scheme': 'https' }, 'server'],
    ['X-Forwarded-Proto', { headers: { ...base, 'x-forwarded-proto': 'https' } }, { 'url.scheme': 'https' }, 'server'],
    ['X-Forwarded-Host', { headers: { ...base, 'x-forwarded-host': 'proxy.test' } }, { 'server.address': 'proxy.test', 'server.port': undefined }, 'server'],
    ['Host', { headers: { ...base, host: 'b.test' } }, { 'server.address': 'b.test', 'server.port': undefined }, 'server'],
    ['no Host but :authority (HTTP/2)', { headers: { ':authority': 'c.test:9443', 'user-agent': 'probe/1' } }, { 'server.address': 'c.test', 'server.port': 9443 }, 'server'],
    ['X-Forwarded-For', { headers: { ...base, 'x-forwarded-for': '203.0.113.9, 10.0.0.1' } }, { 'client.address': '203.0.113.9' }, 'client'],
    ['the peer', { peer: '127.0.0.2' }, { 'client.address': '127.0.0.2', 'network.peer.address': '127.0.0.2' }, 'client'],
    ['User-Agent', { headers: { ...base, 'user-agent': 'probe/2' } }, { 'user_agent.original': 'probe/2' }, 'client'],
    ['Forwarded (both parts)', { headers: { ...base, forwarded: 'for=192.0.2.1;proto=https;host=fw.test' } },
      { 'url.scheme': 'https', 'server.address': 'fw.test', 'server.port': undefined, 'client.address': '192.0.2.1' }, 'both'],
    ['another route', { route: '/orders/:id' }, { 'http.route': '/orders/:id' }, 'outcome'],
    ['no route', { route: undefined }, { 'http.route': undefined }, 'outcome'],
    ['another status code', { status: 404 }, { 'http.response.status_code': 404 }, 'outcome'],
    ['an error type', { status: 500, errorType: '500' }, { 'http.response.status_code': 500, 'error.type': '500' }, 'outcome'],
    ['another error type', { errorType: 'TypeError' }, { 'error.type': 'TypeError' }, 'outcome'],
  ]
  it.each(cases)('remakes only the part that %s changes, and back', (_what, changed, expected, part) => {
    const lead = new RequestLead()
    const before = fill(lead, inputs({}))
    const after = fill(lead, inputs(changed))
    const want = { ...before.attributes, ...expected }
    for (const [k, v] of Object.entries(want)) if (v === undefined) delete want[k]
    expect(after.attributes).toEqual(want)
    expect(after.vouched.stamp !== before.vouched.stamp).toBe(part === 'server' || part === 'both')
    expect(after.vouched.longStamp !== before.vouched.longStamp).toBe(part === 'client' || part === 'both')
    expect(after.vouched.longestStamp !== before.vouched.longestStamp).toBe(part === 'outcome')
    // Stamps are never reused: back to the first inputs, the remade part gets a new one.
    const back = fill(lead, inputs({}))
    expect(back.entries).toEqual(before.entries)
    if (part === 'server' || part === 'both') expect(back.vouched.stamp).not.toBe(before.vouched.stamp)
    if (part === 'client' || part === 'both') expect(back.vouched.longStamp).not.toBe(before.vouched.longStamp)
    if (part === 'outcome') expect(back.vouched.longestStamp).not.toBe(before.vouched.longestStamp)
  })

  it('a second HTTP/2 request with another :authority and no Host is remade', () => {
    const lead = new RequestLead()
    fill(lead, inputs({ headers: { ':authority': 'c.test' } }))
    expect(fill(lead, inputs({ headers: { ':authority': 'd.test' } })).attributes['server.address']).toBe('d.test')
  })

  it('leaves the outcome out of a request not finished, with stamp 0 for its empty part', () => {
    const lead = new RequestLead()
    const unfinished = fill(lead, inputs({}), false)
    expect(unfinished.entries).toHaveLength(16)
    expect(unfinished.vouched).toMatchObject({ longestStamp: 0, longestCount: 16 })
    // The outcome's stamp was not spent on it: the same outcome before and after.
    const a = fill(lead, inputs({}))
    fill(lead, inputs({}), false)
    expect(fill(lead, inputs({})).vouched.longestStamp).toBe(a.vouched.longestStamp)
  })

  it('vouches for nothing without an AttributeLead to tell (attributes given to the span)', () => {
    const out: Array<string | number> = []
    expect(new RequestLead().fillInto(inputs({}), out, true, null)).toBe(20)
  })
})
