import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  HttpServerTracing,
  SpanStatusCode,
  TracingError,
  runWithContext,
  runWithSpan,
  type HttpServerOptions,
  type Span,
} from '@spanline/core'

/** Options of the Fastify plugin: core's HTTP server options, plus `handlerSpans`. */
export interface FastifyTracingOptions extends HttpServerOptions {
  /** Wrap every route handler in an INTERNAL span named `handler - {route}` (default false). */
  readonly handlerSpans?: boolean
}

// The few members of a Fastify 4 or 5 instance the plugin uses, typed
// structurally so that one `tracing` fits both majors' `register()`.
interface FastifyRequestLike { readonly raw: IncomingMessage; readonly routeOptions: { readonly url?: string | undefined } }
interface FastifyReplyLike { readonly raw: ServerResponse }
type RouteHandler = (this: unknown, request: never, reply: never) => unknown
interface FastifyLike {
  addHook(name: string, hook: (...args: never[]) => unknown): unknown
}

/**
 * The Fastify plugin (Fastify 4.10+ and 5): one SERVER span per request,
 * named by its route template (`GET /users/:id`, prefixes included), active
 * in every later hook and in the handler. Register it before your routes and
 * plugins; it covers the whole app, child plugins included.
 *
 * @example
 * const app = Fastify()
 * await app.register(tracing, { ignore: '/health' })
 * app.get('/users/:id', async (request) => getUser(request.params.id))
 */
export function tracing(fastify: FastifyLike, options: FastifyTracingOptions, done: (err?: Error) => void): void {
  let http: HttpServerTracing
  let handlerSpans: boolean
  try {
    // Core rejects unknown options, so ours is taken out first; core's are validated at register time.
    let core: HttpServerOptions = options
    handlerSpans = false
    if (options !== null && typeof options === 'object' && 'handlerSpans' in options) {
      const { handlerSpans: flag, ...rest } = options
      if (flag !== undefined && typeof flag !== 'boolean') throw new TracingError('SPANLINE_ERR_INVALID_ARGUMENT', 'handlerSpans must be a boolean')
      handlerSpans = flag === true
      core = rest
    }
    http = new HttpServerTracing(core)
  } catch (err) {
    done(err as Error)
    return
  }

  // No request decorator: core keeps each request's state on the raw
  // request (under a Symbol.for() key), so Fastify's request object gets no
  // extra field.
  //
  // Making the span active for the later hooks and the handler. Fastify runs
  // them from callbacks, not inside a function we could wrap, but everything
  // after onRequest is reached from its `done`: synchronously, through
  // promises made inside that call, or through the AsyncResource Fastify's
  // body parser binds to the request. So `als.run(context, done)` covers the
  // whole chain, for Fastify 4 and 5, at one run() per request and without a
  // closure. Rejected: enterWith() would leak the context into the rest of the
  // HTTP parser's tick (the next pipelined request) and behaves differently
  // once Node's AsyncContextFrame replaces async_hooks; Fastify's
  // `tracing:fastify.request.handler` channel exists in Fastify 5 only, covers
  // the handler but not the hooks, and a subscription makes every Fastify app
  // in the process pay for it; wrapping every hook (as @fastify/otel does)
  // costs a closure and a run() per hook call.
  fastify.addHook('onRequest', function spanlineOnRequest(request: FastifyRequestLike, reply: FastifyReplyLike, next: () => void): void {
    const req = request.raw
    const res = reply.raw
    const context = http.start(req, res)
    // Routing is done before onRequest, so the route is known here even when a
    // later hook answers or the client aborts. Undefined: nothing matched (404).
    const route = routeTemplate(request)
    if (route !== undefined) http.setRoute(req, route)
    runWithContext(context, next)
  })

  // Called for thrown, rejected and reply.send(err) errors before the app's
  // error handler runs; the error itself is left to the app.
  fastify.addHook('onError', function spanlineOnError(request: FastifyRequestLike, _reply: FastifyReplyLike, error: Error, next: () => void): void {
    http.recordError(request.raw, error)
    next()
  })

  if (handlerSpans) {
    // Per route, once: the span name is built here, not per request. `this` is
    // the instance the route belongs to, which Fastify would bind anyway.
    fastify.addHook('onRoute', function spanlineOnRoute(this: unknown, route: { url: string; handler: RouteHandler }): void {
      route.handler = handlerWithSpan(route.handler.bind(this), `handler - ${route.url}`, http)
    })
  }
  done()
}

Object.defineProperties(tracing, {
  // What fastify-plugin sets: no encapsulation, so the hooks apply to the whole app.
  [Symbol.for('skip-override')]: { value: true },
  [Symbol.for('fastify.display-name')]: { value: '@spanline/fastify' },
  [Symbol.for('plugin-meta')]: { value: { name: '@spanline/fastify', fastify: '>=4.10.0' } },
})

/**
 * The key of Fastify's per-request route context (`Symbol('fastify.context')`,
 * Fastify 4 and 5, an own property of every request), looked for on the
 * first request: undefined until then, null if this Fastify has none.
 */
let routeContextKey: symbol | null | undefined

/**
 * The route template of `request` (undefined when nothing matched: 404):
 * what `request.routeOptions.url` answers, read from the route context it
 * is made from. Why: that getter builds an object of a dozen fields (and asks
 * the router about version constraints) on every read, some 400
 * instructions per request for one string. Any other shape of request falls
 * back to the getter.
 */
function routeTemplate(request: FastifyRequestLike): string | undefined {
  if (routeContextKey === undefined) routeContextKey = findRouteContextKey(request)
  if (routeContextKey !== null) {
    const config = (request as unknown as Record<symbol, { config?: { url?: unknown } } | undefined>)[routeContextKey]?.config
    if (config !== null && typeof config === 'object') return typeof config.url === 'string' ? config.url : undefined
  }
  return request.routeOptions.url
}

function findRouteContextKey(request: FastifyRequestLike): symbol | null {
  for (const key of Object.getOwnPropertySymbols(request)) {
    if (key.description === 'fastify.context') return key
  }
  return null
}

function handlerWithSpan(handler: (request: never, reply: never) => unknown, name: string, http: HttpServerTracing): RouteHandler {
  return function spanlineHandler(request: never, reply: never): unknown {
    const span = http.tracer.startSpan(name)
    let result: unknown
    try {
      result = runWithSpan(span, handler, request, reply)
    } catch (err) {
      failSpan(span, err)
      throw err
    }
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      // Fastify awaits the handler's own promise; this only watches it.
      ;(result as PromiseLike<unknown>).then(() => span.end(), (err: unknown) => failSpan(span, err))
    } else span.end()
    return result
  }
}

function failSpan(span: Span, err: unknown): void {
  span.recordException(err)
  span.setStatus(SpanStatusCode.ERROR)
  span.end()
}
