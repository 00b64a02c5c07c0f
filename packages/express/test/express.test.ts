import { Agent, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import request from 'supertest'
import type { Express, NextFunction, Request, Response } from 'express'
import type express5 from 'express5'
import {
  createTracer,
  getActiveSpan,
  SimpleSpanProcessor,
  SpanKind,
  SpanStatusCode,
  traceRequests,
  TracingError,
  type HttpServerOptions,
  type ReadableSpan,
  type Tracer,
} from '@spanline/core'
import { InMemorySpanExporter } from '@spanline/core/testing'
import { BoomError, type AdapterApp } from '../../adapter-suite/src/contract.ts'
import { tracing } from '../src/index.ts'
import { buildExpressApp, expressOf, serve, sleep, type ExpressMajor } from './app.ts'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT = '00f067aa0ba902b7'

function ok(_req: Request, res: Response): void {
  res.send('ok')
}

function exceptionsOf(span: ReadableSpan): readonly { readonly attributes?: unknown }[] {
  return (span.events ?? []).filter((e) => e.name === 'exception')
}

/** A separately loaded, never traced copy of Express: the baseline responses must match. */
function pristineExpress(major: ExpressMajor): typeof express5 {
  let fresh: typeof express5 | undefined
  jest.isolateModules(() => {
    fresh = require(major === 4 ? 'express4' : 'express5') as typeof express5
  })
  return fresh!
}

/** Express's development error page carries the stack, whose frames differ with tracing; the rest must not. */
function withoutStackFrames(body: string): string {
  return body.replace(/<br> &nbsp; &nbsp;at [^<]*/g, '')
}

describe.each([4, 5] as const)('express %i', (major) => {
  let exporter: InMemorySpanExporter
  let tracer: Tracer
  const apps: AdapterApp[] = []

  beforeAll(() => {
    exporter = new InMemorySpanExporter()
    tracer = createTracer({ env: {}, serviceName: 'express-test', processors: [new SimpleSpanProcessor(exporter)] })
  })
  beforeEach(() => exporter.reset())
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()))
  })

  async function start(listener: (req: IncomingMessage, res: ServerResponse) => void): Promise<AdapterApp> {
    const app = await serve(listener)
    apps.push(app)
    return app
  }

  function contractApp(options: HttpServerOptions = {}): Promise<AdapterApp> {
    return start(buildExpressApp(major, tracing({ tracer, ...options }), tracer))
  }

  function serverSpans(): ReadableSpan[] {
    return exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER)
  }

  async function waitForServerSpans(count: number): Promise<ReadableSpan[]> {
    for (let i = 0; i < 400 && serverSpans().length < count; i++) await sleep(5)
    expect(serverSpans()).toHaveLength(count)
    return serverSpans()
  }

  /** The one SERVER span of the last request (and no second one shortly after). */
  async function onlyServerSpan(): Promise<ReadableSpan> {
    await waitForServerSpans(1)
    await sleep(20)
    return (await waitForServerSpans(1))[0]!
  }

  /** An app exercising Express's routing features, with no error handler of its own. */
  function routesApp(): Express {
    const express = expressOf(major)
    const app = express()
    app.use(tracing({ tracer }))
    app.get(major === 5 ? '/files/*splat' : '/files/*', ok)
    app.get(major === 5 ? '/opt{/:optional}' : '/opt/:optional?', ok)
    app.route('/items/:itemId').get(ok).put(ok)
    app.all('/any', ok)
    app.get('/a/:x/b/:y', ok)
    app.get('/pass/:id', (_req, _res, next) => next())
    app.get('/pass/:other', ok)
    app.get('/sync-fail', () => {
      throw new BoomError('unhandled')
    })
    app.get('/route-handled', () => {
      throw new BoomError('route level')
    }, (_err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      res.status(400).send('route handled')
    })
    const mounted = express.Router()
    mounted.get('/', ok)
    mounted.get('/fail', (_req, _res, next) => next(new BoomError('nested')))
    mounted.get('/pass/:id', (_req, _res, next) => next())
    mounted.get('/pass/:other', ok)
    const inner = express.Router()
    inner.get('/deep/:id', ok)
    mounted.use('/inner', inner)
    app.use('/mounted', mounted)
    const posts = express.Router({ mergeParams: true })
    posts.get('/:postId', ok)
    app.use('/users/:userId/posts', posts)
    const sub = express()
    sub.get('/stats', ok)
    app.use('/admin', sub)
    return app
  }

  describe('route templates', () => {
    const splat = major === 5 ? '/files/*splat' : '/files/*'
    const optional = major === 5 ? '/opt{/:optional}' : '/opt/:optional?'
    it.each([
      ['GET', '/files/a/b.txt', `GET ${splat}`],
      ['GET', '/opt', `GET ${optional}`],
      ['GET', '/opt/x', `GET ${optional}`],
      ['GET', '/items/3', 'GET /items/:itemId'],
      ['PUT', '/items/3', 'PUT /items/:itemId'],
      ['DELETE', '/any', 'DELETE /any'],
      ['GET', '/a/1/b/2', 'GET /a/:x/b/:y'],
      ['GET', '/pass/1', 'GET /pass/:other'],
      ['GET', '/mounted', 'GET /mounted'],
      ['GET', '/mounted/', 'GET /mounted'],
      ['GET', '/mounted/inner/deep/9', 'GET /mounted/inner/deep/:id'],
      ['GET', '/mounted/pass/1', 'GET /mounted/pass/:other'],
      ['GET', '/admin/stats', 'GET /admin/stats'],
    ])('%s %s is named %s', async (method, path, name) => {
      const app = await start(routesApp())
      const res = await request(app.server)[method.toLowerCase() as 'get'](path)
      expect(res.status).toBe(200)
      const span = await onlyServerSpan()
      expect(span.name).toBe(name)
      expect(span.attributes!['http.route']).toBe(name.slice(method.length + 1))
      expect(span.attributes!['url.path']).toBe(path)
    })

    it('gives routes under a mount path with parameters no route rather than one with ids in it', async () => {
      const app = await start(routesApp())
      await request(app.server).get('/users/42/posts/7').expect(200)
      const span = await onlyServerSpan()
      expect(span.name).toBe('GET')
      expect(span.attributes!['http.route']).toBeUndefined()
    })

    it('names an unmatched request by its method alone', async () => {
      const app = await start(routesApp())
      await request(app.server).post('/nowhere').expect(404)
      const span = await onlyServerSpan()
      expect(span.name).toBe('POST')
      expect(span.attributes!['http.route']).toBeUndefined()
      expect(span.statusCode).toBe(SpanStatusCode.UNSET)
    })
  })

  describe('errors', () => {
    it.each([
      ['/boom-sync', 'sync boom'],
      ['/boom-async', 'async boom'],
      ['/boom-next', 'next boom'],
    ])('records the error of %s once: 500, ERROR, error.type', async (path, message) => {
      const app = await contractApp()
      await request(app.server).get(path).expect(500)
      const span = await onlyServerSpan()
      expect(span.name).toBe(`GET ${path}`)
      expect(span.statusCode).toBe(SpanStatusCode.ERROR)
      expect(span.attributes).toMatchObject({ 'error.type': 'BoomError', 'http.response.status_code': 500 })
      const exceptions = exceptionsOf(span)
      expect(exceptions).toHaveLength(1)
      expect(exceptions[0]!.attributes).toMatchObject({ 'exception.type': 'BoomError', 'exception.message': message })
    })

    it('records an error the app answers with 400, leaving the status unset', async () => {
      const app = await contractApp()
      await request(app.server).get('/handled').expect(400, { error: 'handled' })
      const span = await onlyServerSpan()
      expect(span.statusCode).toBe(SpanStatusCode.UNSET)
      expect(span.attributes!['error.type']).toBeUndefined()
      expect(exceptionsOf(span)).toHaveLength(1)
      expect(exceptionsOf(span)[0]!.attributes).toMatchObject({ 'exception.type': 'BoomError' })
    })

    it('records 404 and 418 as plain 4xx: no exception, status unset', async () => {
      const app = await contractApp()
      await request(app.server).get('/no/such').expect(404)
      await request(app.server).get('/teapot').expect(418, 'short and stout')
      const spans = await waitForServerSpans(2)
      expect(spans.map((s) => s.name).sort()).toEqual(['GET', 'GET /teapot'])
      for (const span of spans) {
        expect(span.statusCode).toBe(SpanStatusCode.UNSET)
        expect(exceptionsOf(span)).toHaveLength(0)
      }
    })

    it('records an error no handler catches, and one a route-level handler answers', async () => {
      const app = await start(routesApp())
      await request(app.server).get('/sync-fail').expect(500)
      await request(app.server).get('/route-handled').expect(400, 'route handled')
      const spans = await waitForServerSpans(2)
      const failed = spans.find((s) => s.name === 'GET /sync-fail')!
      expect(failed.statusCode).toBe(SpanStatusCode.ERROR)
      expect(failed.attributes!['error.type']).toBe('BoomError')
      expect(exceptionsOf(failed)).toHaveLength(1)
      const handled = spans.find((s) => s.name === 'GET /route-handled')!
      expect(handled.statusCode).toBe(SpanStatusCode.UNSET)
      expect(exceptionsOf(handled)).toHaveLength(1)
    })

    it('keeps the full template of a nested route whose error climbs out of its routers', async () => {
      const app = await start(routesApp())
      await request(app.server).get('/mounted/fail').expect(500)
      const span = await onlyServerSpan()
      expect(span.name).toBe('GET /mounted/fail')
      expect(span.attributes!['error.type']).toBe('BoomError')
      expect(exceptionsOf(span)).toHaveLength(1)
    })

    it('marks a 5xx the app\'s error handler answers as ERROR, with the span active in the handler', async () => {
      const app = expressOf(major)()
      app.use(tracing({ tracer }))
      app.get('/down', (_req, _res, next) => next(new BoomError('db down')))
      app.use((_err: unknown, _req: Request, res: Response, _next: NextFunction) => {
        res.status(503).json({ span: getActiveSpan()?.spanId })
      })
      const served = await start(app)
      const res = await request(served.server).get('/down').expect(503)
      const span = await onlyServerSpan()
      expect(res.body).toEqual({ span: span.spanId })
      expect(span.statusCode).toBe(SpanStatusCode.ERROR)
      expect(span.attributes!['error.type']).toBe('BoomError')
      expect(exceptionsOf(span)).toHaveLength(1)
    })

    it('still records errors of routes added after the first request', async () => {
      const app = routesApp()
      const served = await start(app)
      await request(served.server).get('/any').expect(200)
      app.get('/late', () => {
        throw new BoomError('late')
      })
      exporter.reset()
      await request(served.server).get('/late').expect(500)
      const span = await onlyServerSpan()
      expect(span.name).toBe('GET /late')
      expect(exceptionsOf(span)).toHaveLength(1)
    })

    it('answers every request exactly as the same app without tracing', async () => {
      const traced = await contractApp()
      const plain = await start(buildExpressApp(major, undefined, tracer, pristineExpress(major)))
      const calls: [string, string][] = [
        ['get', '/no/such/route'], ['get', '/teapot'], ['get', '/boom-sync'], ['get', '/boom-async'], ['get', '/boom-next'],
        ['get', '/handled'], ['get', '/api/v1/orders/7'], ['get', '/headers'], ['post', '/echo'], ['head', '/teapot'],
      ]
      for (const [method, path] of calls) {
        const send = (server: AdapterApp['server']): request.Test =>
          request(server)[method as 'post'](path).set('content-type', 'application/json').send(method === 'post' ? '{"a":[1,2]}' : undefined)
        const [a, b] = await Promise.all([send(traced.server), send(plain.server)])
        expect([path, a.status, a.headers['content-type'], a.headers['x-response-id'], withoutStackFrames(a.text ?? '')])
          .toEqual([path, b.status, b.headers['content-type'], b.headers['x-response-id'], withoutStackFrames(b.text ?? '')])
      }
      const bad = await Promise.all([traced, plain].map((a) => request(a.server).post('/echo').set('content-type', 'application/json').send('{oops')))
      expect(bad[0]!.status).toBe(400)
      expect(withoutStackFrames(bad[0]!.text)).toBe(withoutStackFrames(bad[1]!.text))
    })
  })

  it('ends and exports the span of a request the client aborts', async () => {
    const app = await contractApp()
    await new Promise<void>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: (app.server.address() as AddressInfo).port, path: '/slow' })
      req.on('error', () => resolve())
      req.end()
      setTimeout(() => {
        req.destroy()
        resolve()
      }, 50)
    })
    const span = await onlyServerSpan()
    expect(span.name).toBe('GET /slow')
    expect(span.attributes!['error.type']).toBe('aborted')
    expect(span.statusCode).toBe(SpanStatusCode.ERROR)
    await sleep(350) // the handler writes to the closed socket: no crash, no second span
    expect(serverSpans()).toHaveLength(1)
  })

  it('continues the incoming traceparent and tracestate', async () => {
    const app = await contractApp()
    await request(app.server).get('/users/5').set('traceparent', `00-${TRACE}-${PARENT}-01`).set('tracestate', 'vendor=abc').expect(200)
    const span = await onlyServerSpan()
    expect(span.traceId).toBe(TRACE)
    expect(span.parentSpanId).toBe(PARENT)
    expect(span.parentIsRemote).toBe(true)
    expect(span.traceState?.serialize()).toBe('vendor=abc')
  })

  it('leaves ignored requests untraced, down to the spans made while handling them', async () => {
    const app = await contractApp({ ignore: '/health' })
    await request(app.server).get('/health').expect(200, 'ok')
    await sleep(30)
    expect(exporter.getFinishedSpans()).toEqual([])
  })

  it('traces the same requests on the first call and every later one, however it is mounted', async () => {
    // From its first request on, a middleware of the whole app starts each
    // span before Express runs (a wrapper of app.handle): the same requests
    // must be traced, with the same spans, as on the first request. One
    // mounted on a path (or in a router) must keep tracing only its own.
    const express = expressOf(major)
    const whole = express()
    whole.use(tracing({ tracer, ignore: '/health' }))
    whole.get('/users/:id', ok)
    whole.get('/health', ok)
    const part = express()
    part.get('/outside', ok)
    const api = express.Router()
    api.use(tracing({ tracer }))
    api.get('/users/:id', ok)
    part.use('/api', api)
    for (const [app, traced, untraced] of [[whole, '/users/7', '/health'], [part, '/api/users/7', '/outside']] as const) {
      const served = await start(app as unknown as (req: IncomingMessage, res: ServerResponse) => void)
      for (let i = 0; i < 3; i++) {
        exporter.reset()
        await request(served.server).get(untraced).expect(200)
        await request(served.server).get(traced).set('traceparent', `00-${TRACE}-${PARENT}-01`).expect(200)
        const span = await onlyServerSpan()
        expect(span.name).toBe(app === whole ? 'GET /users/:id' : 'GET /api/users/:id')
        expect(span.traceId).toBe(TRACE)
        expect(span.parentSpanId).toBe(PARENT)
        expect(span.attributes?.['url.path']).toBe(traced)
      }
    }
  })

  it('skips its own router layer for requests it started early, and runs it for the others', async () => {
    // Once app.handle is wrapped (first request), the middleware's layer
    // would only pass requests on: Express skips it while a request started
    // by the wrapper is on its synchronous way through the app. A request
    // that reaches it after an earlier middleware awaited runs it as before.
    const express = expressOf(major)
    let awaitFirst = false
    const app = express()
    app.use((_req: Request, _res: Response, next: NextFunction) => {
      if (awaitFirst) setTimeout(next, 1)
      else next()
    })
    app.use(tracing({ tracer }))
    app.get('/users/:id', (req, res) => res.json({ span: getActiveSpan()?.spanId, id: req.params.id }))
    const served = await start(app as unknown as (req: IncomingMessage, res: ServerResponse) => void)
    await request(served.server).get('/users/0').expect(200)
    const stack = ((app as unknown as { _router?: { stack: object[] } })._router ?? (app as unknown as { router: { stack: object[] } }).router).stack
    const layer = stack.find((l) => (l as { name?: string }).name === 'tracingMiddleware') as { handle: (...args: unknown[]) => unknown }
    expect(layer).toBeDefined()
    let ran = 0
    const handle = layer.handle
    layer.handle = function counted(this: unknown, ...args: unknown[]) {
      ran++
      return handle.apply(this, args)
    }
    for (const [later, expectedRuns] of [[false, 0], [true, 4]] as const) {
      awaitFirst = later
      exporter.reset()
      ran = 0
      const bodies = await Promise.all([1, 2, 3, 4].map(async (i) => (await request(served.server).get(`/users/${i}`).expect(200)).body as { span: string; id: string }))
      expect(ran).toBe(expectedRuns)
      const spans = await waitForServerSpans(4)
      for (const body of bodies) {
        const span = spans.find((s) => s.spanId === body.span)
        expect(span?.name).toBe('GET /users/:id')
        expect(span?.attributes?.['url.path']).toBe(`/users/${body.id}`)
      }
    }
  })

  it('traces every request of a first burst that an earlier middleware holds until the wrapper is in place', async () => {
    // Requests that entered the app before its handle was wrapped reach the
    // layer later, when it is already skipped for wrapped ones: they must
    // still be traced, once each.
    const express = expressOf(major)
    const app = express()
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => (release = resolve))
    app.use((req: Request, _res: Response, next: NextFunction) => {
      if (req.path === '/users/held') void gate.then(() => next())
      else next()
    })
    app.use(tracing({ tracer }))
    app.get('/users/:id', (req, res) => res.json({ span: getActiveSpan()?.spanId, id: req.params.id }))
    const served = await start(app as unknown as (req: IncomingMessage, res: ServerResponse) => void)
    // (then(): supertest sends a request only once it is awaited.)
    const held = [1, 2, 3].map(() => request(served.server).get('/users/held').expect(200).then((r) => r))
    await sleep(30)
    await request(served.server).get('/users/first').expect(200) // installs the wrapper
    release()
    const bodies = [...(await Promise.all(held)).map((r) => r.body as { span: string }), ...(await Promise.all([request(served.server).get('/users/after').expect(200)])).map((r) => r.body as { span: string })]
    const spans = await waitForServerSpans(5)
    expect(new Set(spans.map((s) => s.spanId)).size).toBe(5)
    for (const body of bodies) expect(spans.find((s) => s.spanId === body.span)?.name).toBe('GET /users/:id')
  })

  it('captures the named request and response headers', async () => {
    const app = await contractApp({ captureHeaders: { request: ['x-request-id'], response: ['x-response-id'] } })
    await request(app.server).get('/headers').set('x-request-id', 'q-1').set('authorization', 'secret').expect(200)
    const span = await onlyServerSpan()
    expect(span.attributes).toMatchObject({ 'http.request.header.x-request-id': ['q-1'], 'http.response.header.x-response-id': ['r-1'] })
    expect(JSON.stringify(span.attributes)).not.toContain('secret')
  })

  it('keeps throwing request and response hooks away from the app', async () => {
    const app = await contractApp({
      requestHook: () => {
        throw new Error('request hook')
      },
      responseHook: () => {
        throw new Error('response hook')
      },
    })
    const res = await request(app.server).get('/users/8').expect(200)
    const span = await onlyServerSpan()
    expect(res.body).toEqual({ id: '8', spanId: span.spanId })
    expect(span.name).toBe('GET /users/:id')
  })

  it('enriches the span of a node:http layer (traceRequests) instead of starting a second one', async () => {
    const app = await start(traceRequests(buildExpressApp(major, tracing({ tracer }), tracer), { tracer }))
    const res = await request(app.server).get('/api/v1/orders/3').expect(200)
    expect(res.body).toEqual({ orderId: '3' })
    const span = await onlyServerSpan()
    expect(span.name).toBe('GET /api/v1/orders/:orderId')
    exporter.reset()
    await request(app.server).get('/boom-sync').expect(500)
    const failed = await onlyServerSpan()
    expect(failed.name).toBe('GET /boom-sync')
    expect(exceptionsOf(failed)).toHaveLength(1)
  })

  it('keeps 500 concurrent requests on keep-alive connections apart', async () => {
    const app = await contractApp()
    const port = (app.server.address() as AddressInfo).port
    const agent = new Agent({ keepAlive: true, maxSockets: 32 })
    const get = (path: string): Promise<{ id: string; spanId: string }> => new Promise((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (body += chunk))
        res.on('end', () => resolve(JSON.parse(body) as { id: string; spanId: string }))
      }).on('error', reject).end()
    })
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => get(`/users/${i}`)))
    agent.destroy()
    const spans = new Map((await waitForServerSpans(500)).map((s) => [s.spanId, s]))
    for (const r of results) {
      const span = spans.get(r.spanId)
      expect(span?.attributes).toMatchObject({ 'url.path': `/users/${r.id}`, 'user.id': r.id })
    }
    expect(new Set(results.map((r) => r.spanId)).size).toBe(500)
  })

  it('validates options when the middleware is made, and names its function', () => {
    expect(() => tracing({ bogus: true } as never)).toThrow(TracingError)
    expect(() => tracing({ ignore: 42 } as never)).toThrow(TracingError)
    expect(() => tracing({ responseHook: 'no' as never })).toThrow(/responseHook/)
    expect(tracing().name).toBe('tracingMiddleware')
  })
})
