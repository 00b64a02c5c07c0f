import type { Middleware } from 'koa'
import type { IncomingMessage } from 'node:http'
import { HttpServerTracing, recordServerError, runWithContext, type HttpServerOptions } from '@spanline/core'

/** Options of {@link tracing}: the HTTP server options of `@spanline/core`. */
export type KoaTracingOptions = HttpServerOptions

/**
 * What `@koa/router` leaves on the context (checked with v15); read structurally so
 * the router stays an optional, untyped companion rather than a dependency.
 */
interface RouterLayer {
  readonly path: string | RegExp
  readonly methods: readonly string[]
}
interface RoutedContext {
  readonly req: IncomingMessage
  readonly matched?: readonly RouterLayer[]
  readonly _matchedRoute?: string | RegExp
}

/**
 * Koa middleware that gives every request one SERVER span, named after the
 * `@koa/router` route template (`GET /users/:id`). Install it first, before
 * the router and any error-handling middleware, so it sees the whole request.
 *
 * @example
 * const app = new Koa()
 * app.use(tracing({ ignore: '/health' }))
 * app.use(router.routes())
 */
export function tracing(options: KoaTracingOptions = {}): Middleware {
  // Validates the options (throws a TracingError on bad ones) once, here.
  const http = new HttpServerTracing(options)
  // A plain function, not an async one: awaiting the rest of the chain (to
  // see its errors, and the route once the router ran) cost a suspended
  // frame, a resumption and a promise of its own per request. The route is
  // read when the span ends instead (Koa answers after the chain, so the
  // router has run by then, and a request the client aborts mid-handler
  // gets it too), and errors are seen where Koa handles them (see
  // recordErrorsOf). Nor does it chain a rejection handler onto next():
  // that promise, its closure and its reaction cost ~5,000 instructions per
  // request on Node 20, whose promise hooks see every promise once an
  // AsyncLocalStorage is in use (bench/instructions.mjs, Koa: 135,040 ->
  // 129,887 per request), and some 1,800 on Node 24.
  return function tracingMiddleware(ctx, next): Promise<void> {
    const req = ctx.req
    // A Spanline layer outside Koa (traceRequests, zero-code) may already have
    // started this request's span: start() then returns its context and we only enrich.
    const context = http.start(req, ctx.res)
    http.setRouteSource(req, routeOf, ctx as RoutedContext)
    const proto = (ctx as { app?: { context?: KoaContextProto } }).app?.context
    if (proto !== undefined && proto[kRecordsErrors] !== true) recordErrorsOf(proto)
    return runWithContext(context, next) as Promise<void>
  }
}

/** What of `app.context` (every ctx's prototype) recordErrorsOf() uses. */
interface KoaContextProto {
  onerror?: (this: { req?: IncomingMessage }, err: unknown) => unknown
  [kRecordsErrors]?: true
}

const kRecordsErrors: unique symbol = Symbol.for('spanline.koa.recordsErrors')

/**
 * Koa hands every error that leaves the middleware chain (ctx.throw
 * included) to `ctx.onerror`, looked up on the app's `app.context`, before
 * it answers: that method is wrapped once per app (at its first traced
 * request) to record the error on the request's span first, then run the
 * app's own (Koa's, or one an app or koa-onerror set up before). The error
 * reaches the app unchanged. Koa also calls ctx.onerror from on-finished
 * when the connection failed (ECONNRESET after the client left): then the
 * socket is already destroyed, that is not the app's error, and the span
 * ends as aborted; so errors arriving on a destroyed socket are not
 * recorded. An error an app's own middleware catches and answers never
 * reaches Koa's handler, so it is not recorded either (the status code
 * still tells).
 */
function recordErrorsOf(proto: KoaContextProto): void {
  const original = proto.onerror
  Object.defineProperty(proto, kRecordsErrors, { value: true })
  if (typeof original !== 'function') return
  proto.onerror = function onerror(this: { req?: IncomingMessage }, err: unknown): unknown {
    const req = this.req
    if (err != null && req !== undefined && req.socket?.destroyed !== true) recordServerError(req, err)
    return Reflect.apply(original, this, arguments)
  }
}

/**
 * The template of the route that handled the request. `ctx._matchedRoute` is
 * the path of the last router layer that ran: the route's once its handler
 * ran, but a router middleware's path pattern (`/api/v1(?:\/|$)`) when that
 * middleware threw or answered first (an auth check's 401). So it is taken
 * only when it is one of the matched routes, else the router's own choice:
 * the last layer matching path and method (as @koa/router's
 * `_setMatchedRouteInfo`). Prefixes and nested routers are already in the path.
 */
function routeOf(ctx: RoutedContext): string | undefined {
  const matched = ctx.matched
  if (matched === undefined) return undefined
  const current = ctx._matchedRoute
  // The request's method from the request itself, not ctx.method: Koa makes
  // ctx's request properties with `delegates`, one accessor function
  // (`this[target][name]`) shared by all of them, so its two keyed loads are
  // megamorphic in every Koa app (callgrind, Node 20: ~190 instructions
  // each, per request). Same value, an override included: ctx.method's
  // setter writes req.method.
  const method = ctx.req.method ?? ''
  let route: string | RegExp | undefined
  for (let i = matched.length - 1; i >= 0; i--) {
    const layer = matched[i]!
    if (layer.methods.length === 0 || !layer.methods.includes(method)) continue
    if (layer.path === current) {
      route = current
      break
    }
    route ??= layer.path
  }
  return route === undefined || typeof route === 'string' ? route : String(route)
}
