import type { Server } from 'node:http'
import type { HttpServerOptions } from '@spanline/core'

/**
 * What every adapter's test app must provide, so one suite can run the same
 * assertions against Express 4/5, Koa 2/3 and Fastify 4/5. Each route below
 * must exist with exactly this behaviour; the comments give the route
 * template the span must carry.
 *
 *   GET  /users/:id                  200 JSON { id, spanId }: spanId is getActiveSpan()?.spanId read in the
 *                                    handler after `await sleep(random 0..3 ms)`; the handler also calls
 *                                    getActiveSpan()?.setAttribute('user.id', id) and starts+ends a child span
 *                                    named 'load user' with the test tracer (options.tracer).
 *                                    route: /users/:id
 *   GET  /api/v1/orders/:orderId     200 JSON { orderId }, served by a router mounted at /api whose own child
 *                                    router is mounted at /v1 (framework's nesting/prefix mechanism).
 *                                    route: /api/v1/orders/:orderId
 *   GET  /boom-sync                  handler throws `new BoomError('sync boom')` synchronously → the framework's
 *                                    default 500. route: /boom-sync
 *   GET  /boom-async                 async handler rejects with `new BoomError('async boom')` after an await → 500.
 *                                    route: /boom-async
 *   GET  /boom-next                  the framework's own error path with `new BoomError('next boom')`: Express
 *                                    next(err), Koa ctx.throw / ctx.app.emit? (use `throw` inside a downstream
 *                                    middleware of the router), Fastify reply.send(err) → 500. route: /boom-next
 *   GET  /handled                    throws `new BoomError('handled')` but an app error handler answers 400 JSON
 *                                    { error: 'handled' }: the app's own error handling must still work exactly.
 *                                    route: /handled
 *   GET  /teapot                     418 text 'short and stout'. route: /teapot
 *   GET  /slow                       waits 300 ms then 200 'slow' (for the client-abort test). route: /slow
 *   GET  /health                     200 'ok'; inside, starts+ends a span 'health child' with options.tracer
 *                                    (it must not be recorded when /health is ignored). route: /health
 *   POST /echo                       200 JSON of the request body (JSON). route: /echo
 *   GET  /headers                    sets response header `x-response-id: r-1` and 200 'ok'. route: /headers
 *   anything else                    the framework's default 404 (no route matched).
 *
 * `class BoomError extends Error {}` is exported from this package (index.ts) so the suite can check exception.type.
 */
export interface AdapterApp {
  /** A started server listening on 127.0.0.1 (port 0). */
  readonly server: Server
  close(): Promise<void>
}

/** Builds the app above with the adapter installed, passing `options` to the adapter unchanged. */
export type AdapterAppFactory = (options: HttpServerOptions) => Promise<AdapterApp>

export class BoomError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'BoomError'
  }
}
