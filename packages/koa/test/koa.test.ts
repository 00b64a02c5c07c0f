import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import Koa2 from 'koa2'
import Koa3 from 'koa3'
import type { Context, Middleware, Next } from 'koa'
import { Router } from '@koa/router'
import request from 'supertest'
import {
  createTracer,
  getActiveSpan,
  SimpleSpanProcessor,
  SpanKind,
  SpanStatusCode,
  TracingError,
  traceRequests,
  type HttpServerOptions,
  type ReadableSpan,
  type Tracer,
} from '@spanline/core'
import { InMemorySpanExporter } from '@spanline/core/testing'
import { BoomError, type AdapterApp } from '../../adapter-suite/src/contract.ts'
import { tracing } from '../src/index.ts'
import { buildKoaApp, createKoaApp, listen, sleep, type KoaMajor } from './app.ts'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT = '00f067aa0ba902b7'

/**
 * Routes the contract app does not have, for Koa-specific cases: router.all,
 * a regex route, params in a mount path, a router middleware that rejects
 * before the route runs, an error before the router, a 500 set without a throw.
 */
function buildExtrasApp(major: KoaMajor, middleware: Middleware | undefined): Koa3 {
  const app: Koa3 = major === 2 ? new Koa2() : new Koa3()
  app.silent = true
  if (middleware !== undefined) app.use(middleware)
  app.use(async (ctx, next) => {
    if (ctx.path === '/before-router') throw new BoomError('before router')
    // The router runs only after a real wait here (an auth lookup, say).
    if (ctx.path.startsWith('/late/')) await sleep(1)
    // A method override (as koa-methodoverride does): the router matches the new method.
    const override = ctx.get('x-http-method-override')
    if (override !== '') ctx.method = override
    await next()
  })
  const root = new Router()
  root.get('/late/:id', (ctx) => {
    ctx.body = 'late'
  })
  root.get('/late/slow/:id', async (ctx) => {
    await sleep(300)
    ctx.body = 'late and slow'
  })
  root.all('/any/:x', (ctx) => {
    ctx.body = `any ${ctx.method}`
  })
  root.put('/override/:id', (ctx) => {
    ctx.body = 'put'
  })
  root.get(/^\/re\/(\d+)$/, (ctx) => {
    ctx.body = 're'
  })
  root.get('/set-500', (ctx) => {
    ctx.status = 500
    ctx.body = 'set, not thrown'
  })
  root.get('/forbidden', (ctx) => {
    ctx.throw(403, 'no entry')
  })
  const items = new Router()
  items.get('/items/:itemId', (ctx) => {
    ctx.body = { shop: ctx.params.shopId, item: ctx.params.itemId }
  })
  const secure = new Router({ prefix: '/secure' })
  secure.use(async (ctx, next) => {
    await sleep(1)
    if (ctx.get('authorization') !== 'yes') ctx.throw(401, 'who are you')
    await next()
  })
  secure.use('/shops/:shopId', items.routes())
  app.use(root.routes())
  app.use(secure.routes())
  return app
}

/** GET `path` and go away after `ms`, as a client that gives up mid-request does. */
function abortAfter(app: AdapterApp, path: string, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port: (app.server.address() as AddressInfo).port, path })
    req.on('error', () => resolve())
    req.end()
    setTimeout(() => {
      req.destroy()
      resolve()
    }, ms)
  })
}

async function serveExtras(major: KoaMajor, options: HttpServerOptions): Promise<AdapterApp> {
  return listen(buildExtrasApp(major, tracing(options)))
}

function exceptions(span: ReadableSpan): readonly { readonly attributes?: unknown }[] {
  return (span.events ?? []).filter((e) => e.name === 'exception')
}

/** The response as the client sees it, minus what differs per response anyway. */
function visible(res: { status: number; text: string; headers: IncomingHttpHeaders }): unknown {
  const { date: _date, ...headers } = res.headers
  return { status: res.status, text: res.text, headers }
}

describe.each([2, 3] as const)('@spanline/koa on koa %i', (major) => {
  let exporter: InMemorySpanExporter
  let tracer: Tracer
  let app: AdapterApp
  let extras: AdapterApp
  const closing: AdapterApp[] = []

  async function serverSpans(count = 1): Promise<ReadableSpan[]> {
    for (let i = 0; i < 400; i++) {
      const spans = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER)
      if (spans.length >= count) return spans
      await sleep(5)
    }
    throw new Error(`expected ${count} SERVER spans, got ${exporter.getFinishedSpans().length} spans`)
  }

  async function oneServerSpan(): Promise<ReadableSpan> {
    const [span] = await serverSpans(1)
    await sleep(20)
    expect(exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER)).toHaveLength(1)
    return span!
  }

  async function extra(options: HttpServerOptions): Promise<AdapterApp> {
    const a = await createKoaApp(major)({ tracer, ...options })
    closing.push(a)
    return a
  }

  beforeAll(async () => {
    exporter = new InMemorySpanExporter()
    tracer = createTracer({ env: {}, serviceName: 'koa-test', processors: [new SimpleSpanProcessor(exporter)] })
    app = await createKoaApp(major)({ tracer })
    extras = await serveExtras(major, { tracer })
  })
  beforeEach(() => exporter.reset())
  afterEach(async () => {
    await Promise.all(closing.splice(0).map((a) => a.close()))
  })
  afterAll(async () => {
    await app.close()
    await extras.close()
  })

  describe('route templates from @koa/router', () => {
    it.each([
      ['GET', '/users/42', 'contract', '/users/:id'],
      ['GET', '/api/v1/orders/7', 'contract', '/api/v1/orders/:orderId'],
      ['POST', '/echo', 'contract', '/echo'],
      ['HEAD', '/users/1', 'contract', '/users/:id'],
      ['DELETE', '/any/1', 'extras', '/any/:x'],
      ['PATCH', '/any/2', 'extras', '/any/:x'],
      ['GET', '/re/12', 'extras', String(/^\/re\/(\d+)$/)],
    ] as const)('%s %s (%s app) → %s', async (method, path, which, route) => {
      const agent = request((which === 'contract' ? app : extras).server)
      const res = method === 'POST' ? await agent.post(path).send({ a: 1 })
        : method === 'HEAD' ? await agent.head(path)
        : method === 'DELETE' ? await agent.delete(path)
        : method === 'PATCH' ? await agent.patch(path)
        : await agent.get(path)
      expect(res.status).toBe(200)
      const span = await oneServerSpan()
      expect(span.name).toBe(`${method} ${route}`)
      expect(span.attributes!['http.route']).toBe(route)
    })

    it('nested routers mounted at a path with params: the full template', async () => {
      const res = await request(extras.server).get('/secure/shops/s1/items/i2').set('authorization', 'yes')
      expect(res.body).toEqual({ shop: 's1', item: 'i2' })
      const span = await oneServerSpan()
      expect(span.name).toBe('GET /secure/shops/:shopId/items/:itemId')
    })

    it('a router reached only after an earlier middleware awaited: the route still names the span', async () => {
      await request(extras.server).get('/late/7').expect(200)
      const span = await oneServerSpan()
      expect(span.name).toBe('GET /late/:id')
      expect(span.attributes!['http.route']).toBe('/late/:id')
    })

    it('a client abort in a handler reached after an earlier middleware awaited: the aborted span still has the route', async () => {
      await abortAfter(extras, '/late/slow/9', 100)
      const span = await oneServerSpan()
      expect(span.attributes!['error.type']).toBe('aborted')
      expect(span.name).toBe('GET /late/slow/:id')
      expect(span.attributes!['http.route']).toBe('/late/slow/:id')
      await sleep(300) // the handler finishes into the closed socket
    })

    it('a router middleware that rejects before the route runs still names the route, not its own pattern', async () => {
      await request(extras.server).get('/secure/shops/s1/items/i2').expect(401)
      const span = await oneServerSpan()
      // ctx._matchedRoute is the middleware layer's "/secure(?:\/|$)" at that point
      expect(span.attributes!['http.route']).toBe('/secure/shops/:shopId/items/:itemId')
      expect(span.attributes!['http.response.status_code']).toBe(401)
      expect(span.statusCode).toBe(SpanStatusCode.UNSET)
    })

    it('a method changed by an earlier middleware: the route the router matched for the new method', async () => {
      await request(extras.server).post('/override/7').set('x-http-method-override', 'PUT').expect(200, 'put')
      await request(extras.server).post('/override/7').expect(404)
      const spans = await serverSpans(2)
      // Named by the method the request came with, routed by the one the app gave it.
      expect(spans.map((s) => s.name)).toEqual(['POST /override/:id', 'POST'])
      expect(spans[0]!.attributes!['http.route']).toBe('/override/:id')
      expect(spans[0]!.attributes!['http.request.method']).toBe('POST')
      expect(spans[1]!.attributes!['http.route']).toBeUndefined()
    })

    it('unmatched (404), a known path with another method, and an error before the router: no route, named by the method', async () => {
      await request(app.server).get('/nowhere').expect(404)
      await request(app.server).delete('/users/1').expect(404)
      await request(extras.server).get('/before-router').expect(500)
      const spans = await serverSpans(3)
      expect(spans.map((s) => s.name)).toEqual(['GET', 'DELETE', 'GET'])
      for (const span of spans) expect(span.attributes!['http.route']).toBeUndefined()
      expect(spans[2]!.attributes!['error.type']).toBe('BoomError')
    })
  })

  describe('statuses and errors', () => {
    it.each([
      ['/users/1', 200, undefined],
      ['/nowhere', 404, undefined],
      ['/teapot', 418, undefined],
      ['/handled', 400, undefined],
      ['/boom-sync', 500, 'sync boom'],
      ['/boom-async', 500, 'async boom'],
      ['/boom-next', 500, 'next boom'],
    ] as const)('%s → %i', async (path, status, message) => {
      const res = await request(app.server).get(path)
      expect(res.status).toBe(status)
      const span = await oneServerSpan()
      expect(span.attributes!['http.response.status_code']).toBe(status)
      if (message === undefined) {
        expect(span.statusCode).toBe(SpanStatusCode.UNSET)
        expect(span.attributes!['error.type']).toBeUndefined()
        expect(exceptions(span)).toHaveLength(0) // /handled: the app's handler caught it before us
      } else {
        expect(span.statusCode).toBe(SpanStatusCode.ERROR)
        expect(span.attributes!['error.type']).toBe('BoomError')
        const events = exceptions(span)
        expect(events).toHaveLength(1)
        expect(events[0]!.attributes).toMatchObject({ 'exception.type': 'BoomError', 'exception.message': message })
      }
    })

    it('ctx.throw(4xx) is one exception event but leaves the status unset; a 500 set without a throw is error.type "500"', async () => {
      await request(extras.server).get('/forbidden').expect(403)
      const forbidden = await oneServerSpan()
      expect(forbidden.statusCode).toBe(SpanStatusCode.UNSET)
      expect(forbidden.attributes!['error.type']).toBeUndefined()
      expect(exceptions(forbidden)).toHaveLength(1)
      exporter.reset()
      await request(extras.server).get('/set-500').expect(500)
      const set = await oneServerSpan()
      expect(set.statusCode).toBe(SpanStatusCode.ERROR)
      expect(set.attributes!['error.type']).toBe('500')
      expect(exceptions(set)).toHaveLength(0)
    })

    it('answers exactly as the same app without tracing', async () => {
      const untraced = await listen(buildKoaApp(major, undefined, tracer))
      const untracedExtras = await listen(buildExtrasApp(major, undefined))
      closing.push(untraced, untracedExtras)
      const paths = ['/api/v1/orders/3', '/nowhere', '/teapot', '/handled', '/boom-sync', '/boom-async', '/boom-next', '/headers', '/health']
      const extraPaths = ['/forbidden', '/set-500', '/before-router', '/secure/shops/a/items/b', '/any/1', '/re/5']
      for (const [i, [a, b]] of [[app, untraced], [extras, untracedExtras]].entries()) {
        for (const path of i === 0 ? paths : extraPaths) {
          const traced = await request(a!.server).get(path)
          const plain = await request(b!.server).get(path)
          expect({ path, ...(visible(traced) as object) }).toEqual({ path, ...(visible(plain) as object) })
        }
      }
      const echoTraced = await request(app.server).post('/echo').send({ deep: { a: [1, 2] } })
      const echoPlain = await request(untraced.server).post('/echo').send({ deep: { a: [1, 2] } })
      expect(visible(echoTraced)).toEqual(visible(echoPlain))
      expect(echoTraced.body).toEqual({ deep: { a: [1, 2] } })
    })

    it('the error reaching the app is the one thrown, unchanged (app.on("error") sees the same object)', async () => {
      const seen: unknown[] = []
      const koa = buildKoaApp(major, tracing({ tracer }), tracer)
      koa.on('error', (err: unknown) => seen.push(err))
      const a = await listen(koa)
      closing.push(a)
      await request(a.server).get('/boom-next').expect(500)
      const span = await oneServerSpan()
      expect(seen).toHaveLength(1)
      expect(seen[0]).toBeInstanceOf(BoomError)
      expect((seen[0] as BoomError).message).toBe('next boom')
      expect(exceptions(span)).toHaveLength(1)
    })

    it("an app's own app.context.onerror (koa-onerror's way) still handles every error, once, and the span records it", async () => {
      const koa = buildKoaApp(major, tracing({ tracer }), tracer)
      const handled: unknown[] = []
      const own = koa.context.onerror
      koa.context.onerror = function (this: Context, err: unknown) {
        // Koa also calls it with null once each response is finished (on-finished).
        if (err != null) handled.push(err)
        return Reflect.apply(own, this, [err])
      }
      const a = await listen(koa)
      closing.push(a)
      for (let i = 0; i < 3; i++) await request(a.server).get('/boom-sync').expect(500)
      await request(a.server).get('/users/1').expect(200)
      const spans = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER)
      expect(spans).toHaveLength(4)
      for (const span of spans.slice(0, 3)) {
        expect(span.attributes!['error.type']).toBe('BoomError')
        expect(exceptions(span)).toHaveLength(1)
      }
      expect(exceptions(spans[3]!)).toHaveLength(0)
      // Called once per error (the wrapper is installed once per app, not per request), with the error thrown.
      expect(handled).toHaveLength(3)
      for (const err of handled) expect((err as BoomError).message).toBe('sync boom')
      // Wrapped once: the app's function is one level below ours.
      expect(koa.context.onerror).not.toBe(own)
    })
  })

  it('a client abort on /slow ends the span, named by its route, as aborted', async () => {
    await abortAfter(app, '/slow', 50)
    const span = await oneServerSpan()
    expect(span.ended).toBe(true)
    expect(span.name).toBe('GET /slow')
    expect(span.attributes!['error.type']).toBe('aborted')
    expect(span.attributes!['http.response.status_code']).toBeUndefined()
    expect(span.statusCode).toBe(SpanStatusCode.ERROR)
    await sleep(350) // the handler finishes into the closed socket: nothing more, no crash
    expect(exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER)).toHaveLength(1)
  })

  it('continues an incoming traceparent and keeps tracestate', async () => {
    const res = await request(app.server).get('/users/5').set('traceparent', `00-${TRACE}-${PARENT}-01`).set('tracestate', 'vendor=abc,other=1')
    const span = await oneServerSpan()
    expect(res.body.spanId).toBe(span.spanId)
    expect(span.traceId).toBe(TRACE)
    expect(span.parentSpanId).toBe(PARENT)
    expect(span.parentIsRemote).toBe(true)
    expect(span.traceState?.serialize()).toBe('vendor=abc,other=1')
    const child = exporter.getFinishedSpans().find((s) => s.name === 'load user')!
    expect(child.traceId).toBe(TRACE)
    expect(child.parentSpanId).toBe(span.spanId)
  })

  it('ignore: no span for the request, and none made while handling it', async () => {
    const ignoring = await extra({ ignore: '/health' })
    await request(ignoring.server).get('/health').expect(200, 'ok')
    await sleep(30)
    expect(exporter.getFinishedSpans()).toEqual([])
    await request(ignoring.server).get('/users/2').expect(200)
    expect((await serverSpans(1)).map((s) => s.name)).toEqual(['GET /users/:id'])
  })

  it('captureHeaders records only the named headers', async () => {
    const capturing = await extra({ captureHeaders: { request: ['X-Tenant'], response: ['x-response-id', 'content-type'] } })
    await request(capturing.server).get('/headers').set('x-tenant', 'acme').set('authorization', 'Bearer secret').expect(200)
    const span = await oneServerSpan()
    expect(span.attributes).toMatchObject({
      'http.request.header.x-tenant': ['acme'],
      'http.response.header.x-response-id': ['r-1'],
      'http.response.header.content-type': ['text/plain; charset=utf-8'],
    })
    expect(JSON.stringify(span.attributes)).not.toContain('secret')
  })

  it('hooks that throw never reach the app', async () => {
    const boom = (): never => {
      throw new Error('buggy hook')
    }
    const hooked = await extra({ requestHook: boom, responseHook: boom, spanNameHook: boom })
    const res = await request(hooked.server).get('/users/3')
    expect(res.status).toBe(200)
    expect(res.body.id).toBe('3')
    const span = await oneServerSpan()
    expect(span.name).toBe('GET /users/:id')
    expect(exceptions(span)).toHaveLength(0)
  })

  it('under traceRequests(app.callback()): one SERVER span, enriched with the route and the error', async () => {
    const koa = buildKoaApp(major, tracing({ tracer }), tracer)
    const server = createServer(traceRequests(koa.callback(), { tracer }))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    closing.push({ server, close: () => new Promise<void>((resolve) => server.close(() => resolve())) })
    await request(server).get('/users/8').expect(200)
    await request(server).get('/boom-async').expect(500)
    const spans = await serverSpans(2)
    await sleep(20)
    expect(exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER)).toHaveLength(2)
    expect(spans.map((s) => s.name)).toEqual(['GET /users/:id', 'GET /boom-async'])
    expect(exceptions(spans[1]!)).toHaveLength(1)
    expect(spans[1]!.attributes!['error.type']).toBe('BoomError')
  })

  it('500 concurrent requests over keep-alive, each awaiting at random, each see their own span', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 32 })
    const port = (app.server.address() as AddressInfo).port
    const get = (i: number): Promise<{ id: string; spanId: string }> => new Promise((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port, path: `/users/${i}`, agent }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (body += chunk))
        res.on('end', () => resolve(JSON.parse(body) as { id: string; spanId: string }))
      }).on('error', reject).end()
    })
    try {
      const results = await Promise.all(Array.from({ length: 500 }, (_, i) => get(i)))
      const spans = await serverSpans(500)
      const bySpanId = new Map(spans.map((s) => [s.spanId, s]))
      const children = new Map(exporter.getFinishedSpans().filter((s) => s.name === 'load user').map((s) => [s.parentSpanId, s]))
      for (const r of results) {
        const span = bySpanId.get(r.spanId)!
        expect(span.attributes!['url.path']).toBe(`/users/${r.id}`)
        expect(span.attributes!['user.id']).toBe(r.id)
        expect(children.get(r.spanId)!.traceId).toBe(span.traceId)
      }
      expect(new Set(spans.map((s) => s.traceId)).size).toBe(500)
    } finally {
      agent.destroy()
    }
  })

  it('bad options throw a TracingError when the middleware is created, not per request', () => {
    expect(() => tracing({ bogus: 1 } as never)).toThrow(TracingError)
    expect(() => tracing({ tracer: { nope: 1 } as never })).toThrow(/unknown tracer option "nope"/)
    expect(() => tracing({ requestHook: 'no' as never })).toThrow(/requestHook/)
    expect(() => tracing({ captureHeaders: { request: 'x-a' as never } })).toThrow(/captureHeaders/)
    expect(() => tracing(null as never)).toThrow(TracingError)
  })

  it('is a named middleware, and runs the rest of the request with its span active', async () => {
    expect(tracing({ tracer }).name).toBe('tracingMiddleware')
    let active: string | undefined
    const koa: Koa3 = major === 2 ? new Koa2() : new Koa3()
    koa.use(tracing({ tracer }))
    koa.use(async (ctx: Context, next: Next) => {
      await sleep(1)
      active = getActiveSpan()?.spanId
      ctx.body = 'x'
      await next()
    })
    const a = await listen(koa)
    closing.push(a)
    await request(a.server).get('/anything').expect(200)
    expect((await oneServerSpan()).spanId).toBe(active)
  })
})
