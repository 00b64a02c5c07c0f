import type { IncomingMessage } from 'node:http'
import type { Middleware } from 'koa'
import { HttpServerTracing, runWithContext, type HttpServerOptions } from '@spanline/core'

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
  readonly method: string
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
  return async function tracingMiddleware(ctx, next): Promise<void> {
    const req = ctx.req
    // A Spanline layer outside Koa (traceRequests, zero-code) may already have
    // started this request's span: start() then returns its context and we only enrich.
    const downstream = runWithContext(http.start(req, ctx.res), next)
    // When nothing before the router awaits, it has matched by now (synchronously
    // inside next()): record the route already, so a request the client aborts
    // mid-handler (the span ends then, before our finally) still carries it.
    setRoute(http, req, ctx)
    const matched = (ctx as RoutedContext).matched
    const matchedLength = matched?.length
    const matchedRoute = (ctx as RoutedContext)._matchedRoute
    try {
      await downstream
    } catch (err) {
      // Koa's compose rethrows every downstream error (ctx.throw included) to
      // here before Koa's own onerror answers; core dedupes repeats.
      http.recordError(req, err)
      throw err
    } finally {
      // Koa's respond() and onerror() run after the chain, so the span (ended by
      // core when the response is finished) reads the final status; the route
      // only needs setting before. Again only if the router matched since.
      const now = ctx as RoutedContext
      if (now.matched !== matched || now.matched?.length !== matchedLength || now._matchedRoute !== matchedRoute) setRoute(http, req, ctx)
    }
  }
}

function setRoute(http: HttpServerTracing, req: IncomingMessage, ctx: RoutedContext): void {
  const route = routeOf(ctx)
  if (route !== undefined) http.setRoute(req, typeof route === 'string' ? route : String(route))
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
function routeOf(ctx: RoutedContext): string | RegExp | undefined {
  const matched = ctx.matched
  if (matched === undefined) return undefined
  const current = ctx._matchedRoute
  const method = ctx.method
  let route: string | RegExp | undefined
  for (let i = matched.length - 1; i >= 0; i--) {
    const layer = matched[i]!
    if (layer.methods.length === 0 || !layer.methods.includes(method)) continue
    if (layer.path === current) return current
    route ??= layer.path
  }
  return route
}
