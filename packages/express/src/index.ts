import type { IncomingMessage, ServerResponse } from 'node:http'
import { getServerSpan, HttpServerTracing, recordServerError, runWithContext, setServerRoute, type HttpServerOptions } from '@spanline/core'
// Builtins by process.getBuiltinModule(), not ES imports: start-up time (see @spanline/core's src/diag.ts).
const { debuglog } = process.getBuiltinModule('node:util')

const debug = debuglog('spanline')

/** Options of `tracing()`: the HTTP server options every Spanline adapter shares. */
export type ExpressTracingOptions = HttpServerOptions

/** What `tracing()` returns: typed on node:http, so it fits both Express 4 and 5 typings. */
export type ExpressTracingMiddleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void

// The few Express internals read below; Express 4 and router@2 (Express 5) agree on them.
type Next = (err?: unknown) => void
interface ExpressRequest extends IncomingMessage {
  readonly app?: ExpressApp
  readonly baseUrl?: string
  readonly params?: object
}
interface ExpressApp {
  use(fn: typeof tracingErrorTail): unknown
  readonly _router?: { readonly stack: Layer[] } // Express 4 (its `router` getter throws)
  readonly router?: { readonly stack: Layer[] } // Express 5
}
interface Layer {
  readonly handle: unknown
  readonly route?: { readonly path: unknown } | undefined
}
type HandleRequest = (this: Layer, req: ExpressRequest, res: ServerResponse, next: Next) => unknown
type HandleError = (this: Layer, err: unknown, req: ExpressRequest, res: ServerResponse, next: Next) => unknown

/**
 * Traces every request of an Express 4 or 5 app: one SERVER span per
 * request, named by its route template (`GET /users/:id`), active in every
 * later middleware and handler, ended when the response is finished. Options are
 * validated here, once; a bad one throws a TracingError.
 *
 * @example
 * const app = express()
 * app.use(tracing({ ignore: '/health' })) // first, before any route
 * app.get('/users/:id', (req, res) => res.json({ span: getActiveSpan()?.spanId }))
 */
export function tracing(options: ExpressTracingOptions = {}): ExpressTracingMiddleware {
  const server = new HttpServerTracing(options)
  return function tracingMiddleware(req, res, next) {
    const app = (req as ExpressRequest).app
    // Every time: routes added after the first request need the error tail moved.
    if (app !== undefined) instrument(app)
    // Started early (see startBeforeExpress), or by an outer layer: the
    // request already runs in its span's context.
    if (getServerSpan(req) !== undefined) return next()
    // Only for a middleware of the whole app: mounted on a path (or in a
    // mounted router or sub-app), it traces only the requests it sees.
    if (app !== undefined && !(req as ExpressRequest).baseUrl) startBeforeExpress(app, server, tracingMiddleware)
    runWithContext(server.start(req, res), next)
  }
}

/*
 * Express's app.handle() gives every request and response a new prototype
 * (Object.setPrototypeOf) before the first middleware runs. On Node 20 that
 * leaves V8 unable to cache property access on them: every read and write
 * of a request or response property in start() and at the end of the span
 * took the slow path, some 20 us per request more than the same work on the
 * untouched objects (measured: the explicit middleware +41.5 us of CPU per
 * request over bare, the zero-code preload, which starts the span before
 * Express runs, +18.8). So, from its first request on, the middleware
 * starts each request's span in a wrapper of the app's own handle(), before
 * Express changes the objects; the middleware then finds the span started.
 */
const kEarly = Symbol.for('spanline.express.handle')
type AppHandle = ((this: unknown, req: IncomingMessage, res: ServerResponse, callback?: unknown) => unknown) & { [kEarly]?: true }

function startBeforeExpress(app: ExpressApp, server: HttpServerTracing, middleware: ExpressTracingMiddleware): void {
  const handle = (app as { handle?: AppHandle }).handle
  if (typeof handle !== 'function' || handle[kEarly] === true) return
  // Calls of this wrapper in progress: the synchronous part of a request's
  // way through the app (see skipWhileStarted).
  let depth = 0
  const traced: AppHandle = function handleTraced(this: unknown, req, res, callback) {
    // What the middleware did on every request (it is skipped from now on).
    instrument(app)
    depth++
    try {
      return runWithContext(server.start(req, res), callHandle, handle, this, req, res, callback)
    } finally {
      depth--
    }
  }
  traced[kEarly] = true
  ;(app as { handle?: AppHandle }).handle = traced
  skipWhileStarted(app, middleware, () => depth > 0)
}

/*
 * From then on the middleware would only pass each request on, and a layer
 * costs Express's router as much as a small handler: matching the path
 * (allocating the match), the parameter step, trimming the mount path, one
 * more turn of next(). Express asks each layer `layer.match(path)`, and a
 * false skips it; the middleware's own layer answers false while a request
 * started by the wrapper is on its synchronous way through the app. Any
 * other time (a request that reaches the layer after an earlier middleware
 * awaited, or one that entered the app before the wrapper was installed) the
 * layer matches as before and the middleware sees the request as usual.
 * Not removed from the stack: requests in flight hold an index into it.
 */
function skipWhileStarted(app: ExpressApp, middleware: ExpressTracingMiddleware, started: () => boolean): void {
  const layer = (app._router ?? app.router)?.stack.find((l) => l.handle === middleware) as MatchingLayer | undefined
  const match = layer?.match
  if (layer === undefined || typeof match !== 'function') return
  layer.match = function matchUnlessStarted(this: MatchingLayer, path: string): unknown {
    return started() ? false : match.call(this, path)
  }
}

interface MatchingLayer extends Layer {
  match: (this: MatchingLayer, path: string) => unknown
}

function callHandle(handle: AppHandle, self: unknown, req: IncomingMessage, res: ServerResponse, callback: unknown): unknown {
  return handle.call(self, req, res, callback)
}

/**
 * Gives an Express app the route and error capture of `tracing()` without
 * the middleware: for a layer that starts the request's SERVER span itself
 * (the `@spanline/auto` preload). Idempotent and cheap per call; never throws.
 */
export function instrumentExpressApp(app: object): void {
  try {
    instrument(app as ExpressApp)
  } catch (err) {
    debug('could not instrument the Express app; spans get no route or exceptions: %o', err)
  }
}

/*
 * Routes and errors. Express has no hook for either, and wrapping our `next`
 * would see nothing: the router hands each layer a `next` of its own. But
 * every match and every error goes through one of two methods of the
 * router's Layer, patched once per copy of Express (found through the app's
 * stack on its first request): one extra call per layer, no allocation.
 * - handle_request (router@2: handleRequest) of a route's layer runs when the
 *   route matched, before its handlers, while req.baseUrl still holds what the
 *   enclosing routers matched. Routers restore it as errors and next() climb
 *   out, so reading req.route at 'finish' gets failing nested routes wrong
 *   (and an aborted request has no 'finish').
 * - handle_error (router@2: handleError) hands an error to each later
 *   matching layer: it is recorded on arrival, whether the app's error
 *   handler then answers it or not. So that a later layer always exists, a
 *   pass-through error handler stays last in the app's stack, and Express's
 *   final handler answers as without tracing. (router >= 2.3 also publishes
 *   errors on its `express.router.request` TracingChannel; subscribing costs
 *   a context object and a closure per layer per request, and Express 4 has
 *   no such channel.)
 */
function instrument(app: ExpressApp): void {
  const stack = (app._router ?? app.router)?.stack
  if (stack === undefined || stack[stack.length - 1]?.handle === tracingErrorTail) return
  try {
    patchLayer(Object.getPrototypeOf(stack[0]) as Record<string, unknown>)
    // Appended, never moved: moving would shift the layers of requests in flight.
    app.use(tracingErrorTail)
  } catch (err) {
    debug('could not instrument the Express app; spans get no route or exceptions: %o', err)
  }
}

const patched = new WeakSet<object>()
function patchLayer(proto: Record<string, unknown>): void {
  if (patched.has(proto)) return
  patched.add(proto)
  const modern = typeof proto.handleRequest === 'function'
  const requestKey = modern ? 'handleRequest' : 'handle_request'
  const errorKey = modern ? 'handleError' : 'handle_error'
  const handleRequest = proto[requestKey] as HandleRequest | undefined
  const handleError = proto[errorKey] as HandleError | undefined
  if (typeof handleRequest !== 'function' || typeof handleError !== 'function') {
    debug('unknown Express router layout: spans get no route or exceptions')
    return
  }
  proto[requestKey] = function handleRequestTraced(this: Layer, req: ExpressRequest, res: ServerResponse, next: Next): unknown {
    const route = this.route
    if (route !== undefined) nameRoute(req, route.path)
    // Cheapest test first: most layers are the app's own middleware, with no
    // mount path (and req.params is a dictionary, slow to enumerate).
    else if (req.baseUrl && !Object.hasOwn(this, 'method') && hasParams(req.params)) markParamMount(req)
    return handleRequest.call(this, req, res, next)
  } satisfies HandleRequest
  proto[errorKey] = function handleErrorTraced(this: Layer, err: unknown, req: ExpressRequest, res: ServerResponse, next: Next): unknown {
    recordServerError(req, err)
    return handleError.call(this, err, req, res, next)
  } satisfies HandleError
}

/** The last layer of a traced app: errors pass it (and handleErrorTraced) on their way to Express's final handler. */
function tracingErrorTail(err: unknown, _req: IncomingMessage, _res: ServerResponse, next: Next): void {
  next(err)
}

function nameRoute(req: ExpressRequest, path: unknown): void {
  // Array and RegExp routes have no single template: the span keeps the method alone.
  if (typeof path !== 'string') return
  const base = req.baseUrl ?? ''
  if (base === '') return setServerRoute(req, path)
  if (paramMounts !== undefined && isUnder(base, paramMounts.get(req))) return
  setServerRoute(req, path === '/' ? base : base + path)
}

/*
 * req.baseUrl holds what mount paths matched, not their templates: under
 * `app.use('/users/:id/posts', router)` it is `/users/42/posts`, and neither
 * Express 4 nor router@2 keeps the template where a request can reach it. So
 * routes below such a mount get no route rather than one with ids in it: a
 * `use` layer that matched parameters marks the request (a plain middleware
 * does too, harmlessly: its prefix is gone once it calls next()). The map
 * exists only once some app has such a mount.
 */
let paramMounts: WeakMap<IncomingMessage, string> | undefined

function markParamMount(req: ExpressRequest): void {
  const base = req.baseUrl
  if (base === undefined || base === '') return
  paramMounts ??= new WeakMap()
  // Keep the outermost such prefix: whatever lies below it is covered.
  if (!isUnder(base, paramMounts.get(req))) paramMounts.set(req, base)
}

function hasParams(params: object | undefined): boolean {
  if (params === undefined) return false
  for (const _ in params) return true
  return false
}

/** Whether `base` is `prefix` or lies below it. */
function isUnder(base: string, prefix: string | undefined): boolean {
  if (prefix === undefined || !base.startsWith(prefix)) return false
  return base.length === prefix.length || base.charCodeAt(prefix.length) === 47 /* / */
}
