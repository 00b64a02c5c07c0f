import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import request from 'supertest'
import { fastify as fastify4 } from 'fastify4'
import type { FastifyInstance, FastifyRequest } from 'fastify5'
import {
  createTracer,
  getActiveSpan,
  SimpleSpanProcessor,
  SpanKind,
  SpanStatusCode,
  traceRequests,
  TracingError,
  type ReadableSpan,
  type Tracer,
} from '@spanline/core'
import { InMemorySpanExporter } from '@spanline/core/testing'
import { tracing, type FastifyTracingOptions } from '../src/index.ts'
import { addContractRoutes, buildFastifyApp, createFastify, listen, sleep, type FastifyMajor } from './app.ts'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT = '00f067aa0ba902b7'

interface RawResponse {
  status: number
  headers: string[]
  body: string
}

/** GET `path` with node:http, keeping the raw header list (order and case as sent). */
function rawRequest(app: FastifyInstance, path: string, options: { method?: string; headers?: IncomingHttpHeaders; agent?: Agent } = {}): Promise<RawResponse> {
  const port = (app.server.address() as AddressInfo).port
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => {
        const headers: string[] = []
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          if (res.rawHeaders[i]!.toLowerCase() !== 'date') headers.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`)
        }
        resolve({ status: res.statusCode!, headers, body })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

describe.each([4, 5] as const)('fastify %i', (major: FastifyMajor) => {
  let exporter: InMemorySpanExporter
  let tracer: Tracer
  const apps: FastifyInstance[] = []

  /** The contract app, traced with `options` (and the test tracer), listening. */
  async function traced(options: FastifyTracingOptions = {}): Promise<FastifyInstance> {
    const app = await buildFastifyApp(major, { tracer, ...options })
    await listen(app)
    apps.push(app)
    return app
  }

  async function untraced(): Promise<FastifyInstance> {
    const app = await buildFastifyApp(major, undefined)
    await listen(app)
    apps.push(app)
    return app
  }

  async function started(app: FastifyInstance): Promise<FastifyInstance> {
    await listen(app)
    apps.push(app)
    return app
  }

  function serverSpansNow(): ReadableSpan[] {
    return exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER)
  }

  /** Waits for `count` SERVER spans, then a little longer to catch extra ones. */
  async function serverSpans(count: number): Promise<ReadableSpan[]> {
    for (let i = 0; i < 400 && serverSpansNow().length < count; i++) await sleep(5)
    await sleep(20)
    const spans = serverSpansNow()
    expect(spans).toHaveLength(count)
    return spans
  }

  async function onlyServerSpan(): Promise<ReadableSpan> {
    return (await serverSpans(1))[0]!
  }

  function exceptions(span: ReadableSpan): { [key: string]: unknown }[] {
    return (span.events ?? []).filter((e) => e.name === 'exception').map((e) => ({ ...e.attributes }))
  }

  beforeAll(() => {
    exporter = new InMemorySpanExporter()
    tracer = createTracer({ env: {}, processors: [new SimpleSpanProcessor(exporter)] })
  })
  beforeEach(() => exporter.reset())
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => {
      app.server.closeAllConnections()
      return app.close()
    }))
  })

  describe('routes', () => {
    it('names a route by its template, with the params in url.path', async () => {
      const app = await traced()
      await request(app.server).get('/users/42?page=1').expect(200)
      const span = await onlyServerSpan()
      expect(span.name).toBe('GET /users/:id')
      expect(span.attributes).toMatchObject({ 'http.route': '/users/:id', 'url.path': '/users/42', 'url.query': 'page=1' })
    })

    it('includes the prefixes of encapsulated child plugins registered after the plugin', async () => {
      const app = await traced()
      await request(app.server).get('/api/v1/orders/7').expect(200, { orderId: '7' })
      const span = await onlyServerSpan()
      expect(span.name).toBe('GET /api/v1/orders/:orderId')
      expect(span.attributes!['http.route']).toBe('/api/v1/orders/:orderId')
    })

    it('traces routes of a child plugin that has its own hooks and 404 handler', async () => {
      const app = createFastify(major)
      await app.register(tracing, { tracer })
      await app.register(async function admin(child) {
        child.addHook('onRequest', async (req) => {
          if (req.headers['x-deny'] !== undefined) throw Object.assign(new Error('denied'), { statusCode: 403 })
        })
        child.setNotFoundHandler((_req, reply) => reply.code(404).send('no admin page'))
        child.get('/stats/:name', async () => 'stats')
      }, { prefix: '/admin' })
      await started(app)
      await request(app.server).get('/admin/stats/cpu').expect(200)
      await request(app.server).get('/admin/stats/cpu').set('x-deny', '1').expect(403)
      await request(app.server).get('/admin/nope').expect(404, 'no admin page')
      const [ok, denied, missing] = await serverSpans(3)
      expect(ok!.name).toBe('GET /admin/stats/:name')
      // A hook answering before the handler still leaves the route on the span.
      expect(denied!.name).toBe('GET /admin/stats/:name')
      expect(denied!.attributes!['http.response.status_code']).toBe(403)
      expect(denied!.statusCode).toBe(SpanStatusCode.UNSET)
      expect(missing!.name).toBe('GET')
      expect(missing!.attributes!['http.route']).toBeUndefined()
    })

    it('names an unmatched request GET, with no http.route', async () => {
      const app = await traced()
      await request(app.server).get('/api/nothing/here').expect(404)
      const span = await onlyServerSpan()
      expect(span.name).toBe('GET')
      expect(span.attributes!['http.route']).toBeUndefined()
      expect(span.attributes!['http.response.status_code']).toBe(404)
    })

    it('takes the very route request.routeOptions.url gives, for every kind of route', async () => {
      // The plugin reads the template from Fastify's route context rather than
      // through the routeOptions getter: both must agree on every shape.
      const app = createFastify(major)
      await app.register(tracing, { tracer })
      const seen: (string | undefined)[] = []
      app.addHook('onRequest', async (req) => {
        seen.push(req.routeOptions.url)
      })
      app.get('/files/*', async () => 'file')
      app.get('/v/:id', { constraints: { version: '1.2.0' } }, async () => 'versioned')
      app.get('/opt/:id?', async () => 'optional')
      app.route({ method: ['GET', 'POST'], url: '/multi/:x', handler: async () => 'multi' })
      await app.register(async (child) => {
        child.get('/', async () => 'child root')
        child.setNotFoundHandler((_req, reply) => reply.code(404).send('child 404'))
      }, { prefix: '/child' })
      await started(app)
      await request(app.server).get('/files/a/b.txt').expect(200)
      await request(app.server).get('/v/1').set('accept-version', '1.x').expect(200)
      await request(app.server).get('/opt').expect(200)
      await request(app.server).post('/multi/3').expect(200)
      await request(app.server).get('/child').expect(200)
      await request(app.server).get('/child/missing').expect(404)
      await request(app.server).get('/nowhere').expect(404)
      const spans = await serverSpans(7)
      expect(seen.slice(0, 4)).toEqual(['/files/*', '/v/:id', '/opt/:id?', '/multi/:x'])
      expect(spans.map((span) => span.attributes!['http.route'])).toEqual(seen)
    })

    it('names HEAD requests to GET routes by the same template', async () => {
      const app = await traced()
      await request(app.server).head('/users/1').expect(200)
      expect((await onlyServerSpan()).name).toBe('HEAD /users/:id')
    })
  })

  describe('statuses and errors', () => {
    it.each([
      ['/teapot', 418, SpanStatusCode.UNSET, undefined, undefined],
      ['/no/such/route', 404, SpanStatusCode.UNSET, undefined, undefined],
      ['/boom-sync', 500, SpanStatusCode.ERROR, 'BoomError', 'sync boom'],
      ['/boom-async', 500, SpanStatusCode.ERROR, 'BoomError', 'async boom'],
      ['/boom-next', 500, SpanStatusCode.ERROR, 'BoomError', 'next boom'],
      // onError runs before the app's error handler: the error is recorded, the 400 stays a 4xx.
      ['/handled', 400, SpanStatusCode.UNSET, undefined, 'handled'],
    ])('%s → %i', async (path, status, statusCode, errorType, message) => {
      const app = await traced()
      const plain = await untraced()
      const [withTracing, without] = [await rawRequest(app, path), await rawRequest(plain, path)]
      expect(withTracing.status).toBe(status)
      // The app's responses are exactly those of the same app without tracing.
      expect(withTracing).toEqual(without)
      const span = await onlyServerSpan()
      expect(span.attributes!['http.response.status_code']).toBe(status)
      expect(span.statusCode).toBe(statusCode)
      expect(span.attributes!['error.type']).toBe(errorType)
      const recorded = exceptions(span)
      if (message === undefined) expect(recorded).toEqual([])
      else {
        expect(recorded).toHaveLength(1)
        expect(recorded[0]).toMatchObject({ 'exception.type': 'BoomError', 'exception.message': message })
      }
    })

    it('marks the span aborted when the client goes away, and ends it once', async () => {
      const app = await traced()
      await new Promise<void>((resolve) => {
        const port = (app.server.address() as AddressInfo).port
        const req = httpRequest({ host: '127.0.0.1', port, path: '/slow' })
        req.on('error', () => undefined)
        req.end()
        setTimeout(() => {
          req.destroy()
          resolve()
        }, 50)
      })
      const span = await onlyServerSpan()
      expect(span.ended).toBe(true)
      expect(span.name).toBe('GET /slow')
      expect(span.attributes!['error.type']).toBe('aborted')
      expect(span.statusCode).toBe(SpanStatusCode.ERROR)
      await sleep(350) // the handler finishes against a closed socket
      expect(serverSpansNow()).toHaveLength(1)
    })
  })

  describe('the active span', () => {
    type Seen = { [stage: string]: string | undefined }

    /** An app recording getActiveSpan() at every stage of the request, returned as the body. */
    async function contextApp(options: FastifyTracingOptions = {}): Promise<FastifyInstance> {
      const app = createFastify(major)
      await app.register(tracing, { tracer, ...options })
      const stages = new WeakMap<FastifyRequest, Seen>()
      const see = (req: FastifyRequest, stage: string): void => {
        let seen = stages.get(req)
        if (seen === undefined) stages.set(req, (seen = {}))
        seen[stage] = getActiveSpan()?.spanId
      }
      app.addHook('onRequest', (req, _reply, done) => {
        see(req, 'onRequest')
        done()
      })
      app.addHook('preParsing', async (req) => {
        await sleep(1)
        see(req, 'preParsing')
      })
      app.addHook('preValidation', (req, _reply, done) => {
        setTimeout(() => {
          see(req, 'preValidation')
          done()
        }, 1)
      })
      app.addHook('preHandler', async (req) => {
        await sleep(Math.random() * 2)
        see(req, 'preHandler')
      })
      await app.register(async function child(instance) {
        instance.addHook('preHandler', (req, _reply, done) => {
          see(req, 'childPreHandler')
          done()
        })
        instance.get('/async', async (req) => {
          see(req, 'handler')
          await sleep(Math.random() * 3)
          see(req, 'afterAwait')
          await new Promise<void>((resolve) => setImmediate(resolve))
          see(req, 'afterImmediate')
          return stages.get(req)
        })
        instance.get('/callback', (req, reply) => {
          setTimeout(() => {
            see(req, 'timer')
            reply.send(stages.get(req))
          }, 2)
        })
        instance.post('/body', async (req) => {
          see(req, 'handler')
          return { seen: stages.get(req), body: req.body }
        })
      }, { prefix: '/ctx' })
      return started(app)
    }

    function expectAll(seen: Seen, spanId: string, stages: string[]): void {
      for (const stage of stages) expect([stage, seen[stage]]).toEqual([stage, spanId])
    }

    it('is the SERVER span in every hook, in async handlers after awaits, and in timers', async () => {
      const app = await contextApp()
      const a = await request(app.server).get('/ctx/async').expect(200)
      const b = await request(app.server).get('/ctx/callback').expect(200)
      const [sa, sb] = await serverSpans(2)
      expect(sa!.name).toBe('GET /ctx/async')
      const common = ['onRequest', 'preParsing', 'preValidation', 'preHandler', 'childPreHandler']
      expectAll(a.body as Seen, sa!.spanId, [...common, 'handler', 'afterAwait', 'afterImmediate'])
      expectAll(b.body as Seen, sb!.spanId, [...common, 'timer'])
    })

    it('survives a request body that arrives in pieces', async () => {
      const app = await contextApp()
      const port = (app.server.address() as AddressInfo).port
      const body = await new Promise<string>((resolve, reject) => {
        const req = httpRequest({
          host: '127.0.0.1', port, method: 'POST', path: '/ctx/body',
          headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        }, (res) => {
          let text = ''
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => (text += chunk))
          res.on('end', () => resolve(text))
        })
        req.on('error', reject)
        req.write('{"a":')
        setTimeout(() => req.write('1,"b"'), 20)
        setTimeout(() => req.end(':2}'), 40)
      })
      const span = await onlyServerSpan()
      const parsed = JSON.parse(body) as { seen: Seen; body: unknown }
      expect(parsed.body).toEqual({ a: 1, b: 2 })
      expectAll(parsed.seen, span.spanId, ['onRequest', 'preParsing', 'preValidation', 'preHandler', 'childPreHandler', 'handler'])
    })

    it('keeps 500 concurrent requests on keep-alive connections apart', async () => {
      const app = await contextApp()
      const agent = new Agent({ keepAlive: true, maxSockets: 25 })
      try {
        const N = 500
        const bodies = await Promise.all(Array.from({ length: N }, (_, i) =>
          rawRequest(app, `/ctx/${i % 2 === 0 ? 'async' : 'callback'}?i=${i}`, { agent }).then((r) => ({ i, seen: JSON.parse(r.body) as Seen }))))
        const spans = await serverSpans(N)
        const byQuery = new Map(spans.map((s) => [s.attributes!['url.query'], s]))
        expect(new Set(spans.map((s) => s.traceId)).size).toBe(N)
        for (const { i, seen } of bodies) {
          const span = byQuery.get(`i=${i}`)!
          expectAll(seen, span.spanId, ['onRequest', 'preHandler', 'childPreHandler', i % 2 === 0 ? 'afterAwait' : 'timer'])
        }
      } finally {
        agent.destroy()
      }
    })
  })

  describe('options', () => {
    it('continues an incoming traceparent and tracestate', async () => {
      const app = await traced()
      const res = await request(app.server).get('/users/5').set('traceparent', `00-${TRACE}-${PARENT}-01`).set('tracestate', 'vendor=abc').expect(200)
      const span = await onlyServerSpan()
      expect(span.traceId).toBe(TRACE)
      expect(span.parentSpanId).toBe(PARENT)
      expect(span.traceState?.serialize()).toBe('vendor=abc')
      expect((res.body as { spanId: string }).spanId).toBe(span.spanId)
    })

    it('ignores configured requests: no span, and nothing recorded inside them', async () => {
      const app = await traced({ ignore: '/health' })
      await request(app.server).get('/health').expect(200, 'ok')
      await sleep(30)
      expect(exporter.getFinishedSpans()).toEqual([])
      await request(app.server).get('/teapot').expect(418)
      expect((await onlyServerSpan()).name).toBe('GET /teapot')
    })

    it('captures the named request and response headers, without changing the response', async () => {
      const app = await traced({ captureHeaders: { request: ['x-request-id'], response: ['x-response-id', 'content-type'] } })
      const plain = await untraced()
      const headers = { 'x-request-id': 'req-1', authorization: 'Bearer secret' }
      const [withTracing, without] = [await rawRequest(app, '/headers', { headers }), await rawRequest(plain, '/headers', { headers })]
      expect(withTracing).toEqual(without)
      const span = await onlyServerSpan()
      expect(span.attributes).toMatchObject({
        'http.request.header.x-request-id': ['req-1'],
        'http.response.header.x-response-id': ['r-1'],
        'http.response.header.content-type': ['text/plain; charset=utf-8'],
      })
      expect(JSON.stringify(span.attributes)).not.toContain('secret')
    })

    it('keeps throwing hooks away from the app', async () => {
      const fail = (): never => {
        throw new Error('buggy hook')
      }
      const app = await traced({ requestHook: fail, responseHook: fail, spanNameHook: fail })
      await request(app.server).get('/users/3').expect(200)
      expect((await onlyServerSpan()).name).toBe('GET /users/:id')
    })

    it.each([
      [{ bogus: true }, /unknown tracing option "bogus"/],
      [{ ignore: 42 }, /ignore/],
      [{ captureHeaders: { request: 'x-id' } }, /captureHeaders\.request/],
      [{ handlerSpans: 'yes' }, /handlerSpans must be a boolean/],
    ])('fails registration for bad options %o', async (options, message) => {
      const app = createFastify(major)
      app.register(tracing, options as never)
      const error = await app.ready().then(() => undefined, (err: unknown) => err)
      expect(error).toBeInstanceOf(TracingError)
      expect(error).toMatchObject({ code: 'SPANLINE_ERR_INVALID_ARGUMENT', message: expect.stringMatching(message) })
      await app.close().catch(() => undefined)
    })
  })

  it('enriches the span of a node:http layer instead of starting a second one (serverFactory + traceRequests)', async () => {
    const outerTracer = createTracer({ env: {}, processors: [new SimpleSpanProcessor(exporter)] })
    const app = createFastify(major, {
      serverFactory: (handler) => createServer(traceRequests(handler, { tracer: outerTracer })),
    })
    await app.register(tracing, { tracer })
    addContractRoutes(app, tracer)
    await started(app)
    const res = await request(app.server).get('/users/8').expect(200)
    await request(app.server).get('/boom-sync').expect(500)
    const [user, boom] = await serverSpans(2)
    expect(user!.name).toBe('GET /users/:id')
    expect((res.body as { spanId: string }).spanId).toBe(user!.spanId)
    expect(boom!.name).toBe('GET /boom-sync')
    expect(exceptions(boom!)).toHaveLength(1)
  })

  describe('handlerSpans', () => {
    it('wraps each handler in an INTERNAL span under the SERVER span', async () => {
      const app = await traced({ handlerSpans: true })
      await request(app.server).get('/users/4').expect(200)
      await request(app.server).get('/api/v1/orders/2').expect(200)
      const [user, order] = await serverSpans(2)
      const spans = exporter.getFinishedSpans()
      const userHandler = spans.find((s) => s.name === 'handler - /users/:id')!
      expect(userHandler.kind).toBe(SpanKind.INTERNAL)
      expect(userHandler.parentSpanId).toBe(user!.spanId)
      expect(userHandler.statusCode).toBe(SpanStatusCode.UNSET)
      // The handler's own span is active inside it.
      expect(spans.find((s) => s.name === 'load user')!.parentSpanId).toBe(userHandler.spanId)
      expect(spans.find((s) => s.name === 'handler - /api/v1/orders/:orderId')!.parentSpanId).toBe(order!.spanId)
    })

    it.each(['/boom-sync', '/boom-async'])('marks a failing handler %s ERROR and leaves the response alone', async (path) => {
      const app = await traced({ handlerSpans: true })
      const plain = await untraced()
      expect(await rawRequest(app, path)).toEqual(await rawRequest(plain, path))
      const server = await onlyServerSpan()
      const handler = exporter.getFinishedSpans().find((s) => s.name === `handler - ${path}`)!
      expect(handler.parentSpanId).toBe(server.spanId)
      expect(handler.statusCode).toBe(SpanStatusCode.ERROR)
      expect(exceptions(handler)).toHaveLength(1)
      expect(exceptions(server)).toHaveLength(1)
    })

    it('calls function handlers with the route\'s instance as `this`', async () => {
      const app = createFastify(major)
      await app.register(tracing, { tracer, handlerSpans: true })
      await app.register(async function decorated(instance) {
        instance.decorate('answer', 42)
        instance.get('/answer', function answer(this: FastifyInstance & { answer?: number }) {
          return { answer: this.answer }
        })
      })
      await started(app)
      await request(app.server).get('/answer').expect(200, { answer: 42 })
      await onlyServerSpan()
      expect(exporter.getFinishedSpans().map((s) => s.name)).toContain('handler - /answer')
    })

    it('makes one handler span for HEAD requests too', async () => {
      const app = await traced({ handlerSpans: true })
      await request(app.server).head('/teapot').expect(418)
      await onlyServerSpan()
      expect(exporter.getFinishedSpans().filter((s) => s.name === 'handler - /teapot')).toHaveLength(1)
    })
  })

  it('is a plugin without encapsulation, named for Fastify', async () => {
    const plugin = tracing as unknown as Record<symbol, unknown>
    expect(plugin[Symbol.for('skip-override')]).toBe(true)
    expect(plugin[Symbol.for('fastify.display-name')]).toBe('@spanline/fastify')
    const app = createFastify(major)
    await app.register(tracing, { tracer })
    expect(app.hasPlugin('@spanline/fastify')).toBe(true)
    await app.close()
  })
})

it('falls back to request.routeOptions for a request without Fastify\'s route context', async () => {
  // A Fastify-like host whose requests lack the context symbol (a future
  // major, a test double): the plugin's onRequest hook, called directly.
  const exporter = new InMemorySpanExporter()
  const tracer = createTracer({ env: {}, processors: [new SimpleSpanProcessor(exporter)] })
  const hooks = new Map<string, (...args: never[]) => unknown>()
  const host = { addHook: (name: string, hook: (...args: never[]) => unknown) => hooks.set(name, hook) }
  await new Promise<void>((resolve, reject) => tracing(host as never, { tracer }, (err) => (err ? reject(err) : resolve())))
  const onRequest = hooks.get('onRequest') as unknown as (request: unknown, reply: unknown, next: () => void) => void
  const server = createServer((req, res) => {
    const routeOptions = { get url(): string { return '/from/:getter' } }
    onRequest({ raw: req, routeOptions }, { raw: res }, () => res.end('ok'))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    await request(server).get('/from/1').expect(200)
    const [span] = await exporter.waitForSpans(1)
    expect(span!.attributes!['http.route']).toBe('/from/:getter')
  } finally {
    server.close()
  }
})

// Type-level: the same plugin fits Fastify 4's own register() typings.
export async function typeCheckFastify4(): Promise<void> {
  const app = fastify4()
  await app.register(tracing, { ignore: '/health', handlerSpans: true })
}
