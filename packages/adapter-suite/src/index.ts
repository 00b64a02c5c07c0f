import type { AddressInfo } from 'node:net'
import { request as httpRequest } from 'node:http'
import request from 'supertest'
import {
  createTracer,
  SimpleSpanProcessor,
  SpanKind,
  SpanStatusCode,
  type HttpServerOptions,
  type ReadableSpan,
  type Tracer,
} from '@spanline/core'
import { InMemorySpanExporter } from '@spanline/core/testing'
import type { AdapterApp, AdapterAppFactory } from './contract.ts'

export { BoomError, type AdapterApp, type AdapterAppFactory } from './contract.ts'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT = '00f067aa0ba902b7'

/**
 * The assertions every framework adapter must pass, on spans actually
 * produced by a real server on 127.0.0.1: names, attributes, statuses,
 * errors, propagation, options and context isolation. Each adapter runs it
 * for each framework major version it supports.
 */
export function runAdapterSuite(label: string, factory: AdapterAppFactory): void {
  describe(`${label}: shared adapter suite`, () => {
    let exporter: InMemorySpanExporter
    let tracer: Tracer
    let app: AdapterApp
    const extraApps: AdapterApp[] = []

    /** An app with extra adapter options, closed after the test. */
    async function appWith(options: HttpServerOptions): Promise<AdapterApp> {
      const a = await factory({ tracer, ...options })
      extraApps.push(a)
      return a
    }

    /** Waits until `count` SERVER spans were exported (spans end when the response is finished, or aborted). */
    async function serverSpans(count = 1): Promise<ReadableSpan[]> {
      for (let i = 0; i < 200; i++) {
        const found = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER)
        if (found.length >= count) return found
        await new Promise((r) => setTimeout(r, 5))
      }
      throw new Error(`expected ${count} SERVER spans, got ${exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER).length}`)
    }

    async function onlyServerSpan(): Promise<ReadableSpan> {
      const spans = await serverSpans(1)
      await new Promise((r) => setTimeout(r, 20))
      expect(exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER)).toHaveLength(1)
      return spans[0]!
    }

    beforeAll(async () => {
      exporter = new InMemorySpanExporter()
      tracer = createTracer({ env: {}, serviceName: 'suite', processors: [new SimpleSpanProcessor(exporter)] })
      app = await factory({ tracer })
    })
    beforeEach(() => exporter.reset())
    afterEach(async () => {
      await Promise.all(extraApps.splice(0).map((a) => a.close()))
    })
    afterAll(() => app.close())

    it('gives a matched request one SERVER span with the stable HTTP attributes and the route template', async () => {
      const res = await request(app.server).get('/users/42').set('user-agent', 'suite-agent/1.0')
      expect(res.status).toBe(200)
      const span = await onlyServerSpan()
      const port = (app.server.address() as AddressInfo).port
      expect(span.name).toBe('GET /users/:id')
      expect(span.attributes).toMatchObject({
        'http.request.method': 'GET',
        'url.path': '/users/42',
        'url.scheme': 'http',
        'http.route': '/users/:id',
        'http.response.status_code': 200,
        'server.address': '127.0.0.1',
        'server.port': port,
        'network.protocol.version': '1.1',
        'user_agent.original': 'suite-agent/1.0',
        'user.id': '42',
      })
      expect(String(span.attributes!['network.peer.address'])).toMatch(/127\.0\.0\.1$/)
      expect(typeof span.attributes!['network.peer.port']).toBe('number')
      expect(span.attributes!['client.address']).toBe(span.attributes!['network.peer.address'])
      expect(span.attributes!['url.query']).toBeUndefined()
      expect(span.statusCode).toBe(SpanStatusCode.UNSET)
      // the handler saw this span as active, and its child span hangs under it
      expect(res.body).toEqual({ id: '42', spanId: span.spanId })
      const child = exporter.getFinishedSpans().find((s) => s.name === 'load user')!
      expect(child.parentSpanId).toBe(span.spanId)
      expect(child.traceId).toBe(span.traceId)
    })

    it('names nested and prefixed routes by their full template', async () => {
      await request(app.server).get('/api/v1/orders/7').expect(200)
      const span = await onlyServerSpan()
      expect(span.name).toBe('GET /api/v1/orders/:orderId')
      expect(span.attributes!['http.route']).toBe('/api/v1/orders/:orderId')
      expect(span.attributes!['url.path']).toBe('/api/v1/orders/7')
    })

    it('records the query without the "?", with sensitive values redacted', async () => {
      await request(app.server).get('/users/1?sig=secret&page=2&X-Amz-Signature=abc').expect(200)
      const span = await onlyServerSpan()
      expect(span.attributes!['url.query']).toBe('sig=REDACTED&page=2&X-Amz-Signature=REDACTED')
    })

    it('names an unmatched request by its method alone; 404 leaves the status unset', async () => {
      await request(app.server).get('/no/such/route').expect(404)
      const span = await onlyServerSpan()
      expect(span.name).toBe('GET')
      expect(span.attributes!['http.route']).toBeUndefined()
      expect(span.attributes!['http.response.status_code']).toBe(404)
      expect(span.statusCode).toBe(SpanStatusCode.UNSET)
      expect(span.attributes!['error.type']).toBeUndefined()
    })

    it('leaves the status unset for other 4xx', async () => {
      await request(app.server).get('/teapot').expect(418)
      const span = await onlyServerSpan()
      expect(span.name).toBe('GET /teapot')
      expect(span.statusCode).toBe(SpanStatusCode.UNSET)
    })

    it('reports an unknown method as _OTHER with the original, and names the span HTTP', async () => {
      await new Promise<void>((resolve, reject) => {
        const port = (app.server.address() as AddressInfo).port
        const req = httpRequest({ host: '127.0.0.1', port, method: 'PROPFIND', path: '/users/1' }, (res) => {
          res.resume()
          res.on('end', resolve)
        })
        req.on('error', reject)
        req.end()
      })
      const span = await onlyServerSpan()
      expect(span.attributes).toMatchObject({ 'http.request.method': '_OTHER', 'http.request.method_original': 'PROPFIND' })
      expect(span.name.startsWith('HTTP')).toBe(true)
    })

    it.each([
      ['/boom-sync', 'sync boom'],
      ['/boom-async', 'async boom'],
      ['/boom-next', 'next boom'],
    ])('records a 500 from %s once, with ERROR status and error.type', async (path, message) => {
      const res = await request(app.server).get(path)
      expect(res.status).toBe(500)
      const span = await onlyServerSpan()
      expect(span.name).toBe(`GET ${path}`)
      expect(span.statusCode).toBe(SpanStatusCode.ERROR)
      expect(span.attributes!['error.type']).toBe('BoomError')
      expect(span.attributes!['http.response.status_code']).toBe(500)
      const exceptions = (span.events ?? []).filter((e) => e.name === 'exception')
      expect(exceptions).toHaveLength(1)
      expect(exceptions[0]!.attributes).toMatchObject({ 'exception.type': 'BoomError', 'exception.message': message })
    })

    it('leaves the app\'s own error handling alone: a handled error answered 400 stays a 4xx', async () => {
      const res = await request(app.server).get('/handled')
      expect(res.status).toBe(400)
      expect(res.body).toEqual({ error: 'handled' })
      const span = await onlyServerSpan()
      expect(span.statusCode).toBe(SpanStatusCode.UNSET)
      expect(span.attributes!['error.type']).toBeUndefined()
    })

    it('reads the client, scheme and host from Forwarded, then X-Forwarded-*', async () => {
      await request(app.server).get('/users/1').set('forwarded', 'for="[2001:db8:cafe::17]:4711";proto=https;host=shop.example:8443, for=10.0.0.1').expect(200)
      const a = await onlyServerSpan()
      expect(a.attributes).toMatchObject({ 'client.address': '2001:db8:cafe::17', 'url.scheme': 'https', 'server.address': 'shop.example', 'server.port': 8443 })
      exporter.reset()
      await request(app.server).get('/users/1').set('x-forwarded-for', '203.0.113.9, 10.0.0.2').set('x-forwarded-proto', 'https').set('x-forwarded-host', 'api.example').expect(200)
      const b = await onlyServerSpan()
      expect(b.attributes).toMatchObject({ 'client.address': '203.0.113.9', 'url.scheme': 'https', 'server.address': 'api.example' })
      expect(b.attributes!['server.port']).toBeUndefined()
    })

    it('continues an incoming trace: same trace id, incoming span as parent, tracestate kept', async () => {
      await request(app.server).get('/users/5').set('traceparent', `00-${TRACE}-${PARENT}-01`).set('tracestate', 'vendor=abc,other=1').expect(200)
      const span = await onlyServerSpan()
      expect(span.traceId).toBe(TRACE)
      expect(span.parentSpanId).toBe(PARENT)
      expect(span.parentIsRemote).toBe(true)
      expect(span.traceState?.serialize()).toBe('vendor=abc,other=1')
    })

    it('starts a new trace without a traceparent, or with an invalid one', async () => {
      await request(app.server).get('/users/5').expect(200)
      await request(app.server).get('/users/6').set('traceparent', `00-${TRACE}-${'0'.repeat(16)}-01`).set('tracestate', 'vendor=abc').expect(200)
      const [a, b] = await serverSpans(2)
      for (const span of [a!, b!]) {
        expect(span.parentSpanId).toBeUndefined()
        expect(span.traceId).not.toBe(TRACE)
        expect(span.traceState).toBeUndefined()
      }
      expect(a!.traceId).not.toBe(b!.traceId)
    })

    it('ends and exports the span when the client aborts, marked aborted', async () => {
      await new Promise<void>((resolve) => {
        const port = (app.server.address() as AddressInfo).port
        const req = httpRequest({ host: '127.0.0.1', port, path: '/slow' })
        // Gone as soon as the server has the request, not after a fixed
        // delay: on a loaded machine a delay can outlast the handler's 300 ms,
        // and the response would finish before the abort.
        app.server.once('request', () => setImmediate(() => req.destroy()))
        req.on('error', () => resolve())
        req.on('close', () => resolve())
        req.end()
      })
      const span = await onlyServerSpan()
      expect(span.name).toBe('GET /slow')
      expect(span.attributes!['error.type']).toBe('aborted')
      expect(span.statusCode).toBe(SpanStatusCode.ERROR)
      // let the handler finish writing to the dead socket: still exactly one span, no crash
      await new Promise((r) => setTimeout(r, 350))
      expect(exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER)).toHaveLength(1)
    })

    it('ignores configured paths: no span, and nothing recorded while handling them', async () => {
      const ignoring = await appWith({ ignore: ['/health'] })
      await request(ignoring.server).get('/health').expect(200)
      await request(ignoring.server).get('/health/').expect((r) => expect(r.status).toBeLessThan(500))
      await new Promise((r) => setTimeout(r, 30))
      expect(exporter.getFinishedSpans()).toEqual([])
      await request(ignoring.server).get('/users/3').expect(200)
      expect((await serverSpans(1))[0]!.name).toBe('GET /users/:id')
    })

    it('captures only the headers named, never credentials by default', async () => {
      const capturing = await appWith({ captureHeaders: { request: ['x-request-id', 'X-Tenant'], response: ['x-response-id'] } })
      await request(capturing.server).get('/headers')
        .set('x-request-id', 'req-1').set('x-tenant', 'acme').set('authorization', 'Bearer secret').set('cookie', 'sid=secret')
        .expect(200)
      const span = await onlyServerSpan()
      expect(span.attributes).toMatchObject({
        'http.request.header.x-request-id': ['req-1'],
        'http.request.header.x-tenant': ['acme'],
        'http.response.header.x-response-id': ['r-1'],
      })
      const text = JSON.stringify(span.attributes)
      expect(text).not.toContain('secret')
    })

    it('runs hooks for custom attributes and names; a throwing hook never reaches the app', async () => {
      const hooked = await appWith({
        requestHook: (span) => {
          span.setAttribute('hook.request', true)
        },
        responseHook: (span) => {
          span.setAttribute('hook.response', true)
          throw new Error('buggy hook')
        },
        spanNameHook: (req, route) => `${req.method} custom ${route ?? '-'}`,
      })
      await request(hooked.server).get('/users/9').expect(200)
      const span = await onlyServerSpan()
      expect(span.attributes).toMatchObject({ 'hook.request': true, 'hook.response': true })
      expect(span.name).toBe('GET custom /users/:id')
      const throwing = await appWith({ requestHook: () => { throw new Error('buggy request hook') } })
      exporter.reset()
      await request(throwing.server).get('/users/9').expect(200)
      expect((await serverSpans(1))[0]!.name).toBe('GET /users/:id')
    })

    it('rejects bad options when the middleware is created', async () => {
      await expect(Promise.resolve().then(() => factory({ tracer, bogus: true } as never))).rejects.toThrow(/unknown tracing option "bogus"/)
      await expect(Promise.resolve().then(() => factory({ tracer, ignore: 42 } as never))).rejects.toThrow(/ignore/)
    })

    it('keeps 500 concurrent requests on keep-alive connections apart', async () => {
      const port = (app.server.address() as AddressInfo).port
      const N = 500
      const results = await Promise.all(Array.from({ length: N }, async (_, i) => {
        const res = await fetch(`http://127.0.0.1:${port}/users/${i}`)
        return (await res.json()) as { id: string; spanId: string }
      }))
      const spans = await serverSpans(N)
      const byId = new Map(spans.map((s) => [s.spanId, s]))
      const children = new Map(exporter.getFinishedSpans().filter((s) => s.name === 'load user').map((s) => [s.parentSpanId, s]))
      for (const r of results) {
        const span = byId.get(r.spanId)
        expect(span?.attributes!['url.path']).toBe(`/users/${r.id}`)
        expect(span?.attributes!['user.id']).toBe(r.id)
        expect(children.get(r.spanId)?.traceId).toBe(span?.traceId)
      }
      expect(new Set(spans.map((s) => s.traceId)).size).toBe(N)
    })
  })
}
