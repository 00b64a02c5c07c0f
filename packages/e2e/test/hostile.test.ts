import { request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { createTracer, SimpleSpanProcessor, SpanKind } from '@spanline/core'
import { InMemorySpanExporter } from '@spanline/core/testing'
import { tracing } from '@spanline/express'

/**
 * Hostile headers at a real server: as large as Node accepts (its default
 * header limit is 16 KiB; larger requests are refused by Node with 431
 * before any tracing code runs), made of thousands of members, or crafted
 * to be slow for a backtracking parser. The request is served normally,
 * quickly, and what reaches the span is bounded by the configured limits.
 */
describe('hostile request data', () => {
  const exporter = new InMemorySpanExporter()
  const tracer = createTracer({ env: {}, spanLimits: { attributeValueLengthLimit: 256 }, processors: [new SimpleSpanProcessor(exporter)] })
  let server: Server
  beforeAll(async () => {
    const app = express()
    app.use(tracing({ tracer, captureHeaders: { request: ['x-note'] } }))
    app.get('/items/:id', (req, res) => res.send('ok'))
    server = app.listen(0, '127.0.0.1')
    await new Promise((r) => server.once('listening', r))
  })
  afterAll(() => server.close())
  beforeEach(() => exporter.reset())

  /** A GET with headers sent exactly as given (fetch would normalise whitespace). */
  function get(path: string, headers: Record<string, string> = {}): Promise<number> {
    return new Promise((resolve, reject) => {
      const port = (server.address() as AddressInfo).port
      const req = httpRequest({ host: '127.0.0.1', port, path, headers }, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      })
      req.on('error', reject)
      req.end()
    })
  }

  const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
  const big = 12 * 1024

  it.each([
    ['tracestate with thousands of members', { traceparent: TP, tracestate: 'a=1,'.repeat(big / 4) }],
    ['tracestate of one huge value', { traceparent: TP, tracestate: `k=${'v'.repeat(big)}` }],
    ['tracestate of commas and spaces', { traceparent: TP, tracestate: ' ,\t'.repeat(big / 3) }],
    ['baggage with thousands of members', { baggage: 'k=v;p=1,'.repeat(big / 8) }],
    ['baggage of percent signs', { baggage: `k=${'%'.repeat(big)}` }],
    ['traceparent padded with spaces', { traceparent: ' '.repeat(big) + TP }],
    ['Forwarded with thousands of elements', { forwarded: 'for="[::1]:1";proto=https,'.repeat(big / 27) }],
    ['Forwarded with an unterminated quote', { forwarded: `for="${'a'.repeat(big)}` }],
    ['X-Forwarded-For of thousands of addresses', { 'x-forwarded-for': '10.0.0.1, '.repeat(big / 10) }],
    ['a huge user agent', { 'user-agent': 'u'.repeat(big) }],
    ['a huge captured header', { 'x-note': 'n'.repeat(big) }],
  ])('%s: served fast, span bounded', async (_label, headers) => {
    const t0 = performance.now()
    expect(await get(`/items/1?q=${'x'.repeat(1000)}`, headers as Record<string, string>)).toBe(200)
    expect(performance.now() - t0).toBeLessThan(500)
    for (let i = 0; i < 100 && exporter.getFinishedSpans().length === 0; i++) await new Promise((r) => setTimeout(r, 5))
    const [span] = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER)
    expect(span).toBeDefined()
    for (const [key, value] of Object.entries(span!.attributes ?? {})) {
      const values = Array.isArray(value) ? value : [value]
      for (const v of values) if (typeof v === 'string') expect({ key, length: v.length <= 256 }).toEqual({ key, length: true })
    }
    const ts = span!.traceState?.serialize() ?? ''
    expect(ts.length).toBeLessThanOrEqual(512)
  })

  it('Node itself refuses headers over its limit before tracing runs; the server stays up', async () => {
    const status = await get('/items/1', { tracestate: 'a=1,'.repeat(8 * 1024) }).catch(() => 431)
    expect(status).toBe(431)
    expect(await get('/items/2')).toBe(200)
  })
})
