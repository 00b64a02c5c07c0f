import { createServer, type IncomingMessage } from 'node:http'
import Koa2 from 'koa2'
import Koa3 from 'koa3'
import type { Context, Middleware, Next } from 'koa'
import { Router } from '@koa/router'
import { getActiveSpan, getGlobalTracer, type HttpServerOptions, type Tracer } from '@spanline/core'
import { BoomError, type AdapterApp, type AdapterAppFactory } from '../../adapter-suite/src/contract.ts'
import { tracing } from '../src/index.ts'

export type KoaMajor = 2 | 3

/**
 * The contract app (packages/adapter-suite/src/contract.ts) on Koa 2 or 3
 * with @koa/router, with `middleware` (the tracing one, or none for the
 * untraced twin) installed first. `tracer` makes the handlers' child spans.
 */
export function buildKoaApp(major: KoaMajor, middleware: Middleware | undefined, tracer: Tracer | undefined): Koa3 {
  const app: Koa3 = major === 2 ? new Koa2() : new Koa3()
  app.silent = true // Koa would log every 500 to stderr
  if (middleware !== undefined) app.use(middleware)
  app.use(handleErrors)

  const childTracer = tracer ?? getGlobalTracer()
  const router = new Router()
  router.get('/users/:id', async (ctx) => {
    const id = ctx.params.id!
    await sleep(Math.random() * 3)
    const span = getActiveSpan()
    span?.setAttribute('user.id', id)
    childTracer.startSpan('load user').end()
    ctx.body = { id, spanId: span?.spanId }
  })
  router.get('/boom-sync', () => {
    throw new BoomError('sync boom')
  })
  router.get('/boom-async', async () => {
    await sleep(1)
    throw new BoomError('async boom')
  })
  // Koa's own error path: ctx.throw() in a downstream middleware of the route.
  router.get('/boom-next', passThrough, (ctx) => {
    ctx.throw(500, new BoomError('next boom'))
  })
  router.get('/handled', () => {
    throw new BoomError('handled')
  })
  router.get('/teapot', (ctx) => {
    ctx.status = 418
    ctx.body = 'short and stout'
  })
  router.get('/slow', async (ctx) => {
    await sleep(300)
    ctx.body = 'slow'
  })
  router.get('/health', (ctx) => {
    childTracer.startSpan('health child').end()
    ctx.body = 'ok'
  })
  router.post('/echo', async (ctx) => {
    ctx.body = await readJson(ctx.req)
  })
  router.get('/headers', (ctx) => {
    ctx.set('x-response-id', 'r-1')
    ctx.body = 'ok'
  })

  // /api/v1/orders/:orderId: a router prefixed /api mounting a child router at /v1.
  const v1 = new Router()
  v1.get('/orders/:orderId', (ctx) => {
    ctx.body = { orderId: ctx.params.orderId }
  })
  const api = new Router({ prefix: '/api' })
  api.use('/v1', v1.routes())

  app.use(router.routes())
  app.use(api.routes())
  return app
}

/** The AdapterAppFactory of the shared suite, for Koa `major`. */
export function createKoaApp(major: KoaMajor): AdapterAppFactory {
  return function koaAppFactory(options: HttpServerOptions): Promise<AdapterApp> {
    // tracing() runs here, synchronously: bad options reject the factory's promise.
    return Promise.resolve().then(() => listen(buildKoaApp(major, tracing(options), options.tracer as Tracer | undefined)))
  }
}

/** Serves `app` on 127.0.0.1, port 0. */
export async function listen(app: Koa3): Promise<AdapterApp> {
  const server = createServer(app.callback())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    server,
    close(): Promise<void> {
      return new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
  }
}

/** The app's error handler: answers BoomError('handled') itself, leaves the rest to Koa. */
async function handleErrors(ctx: Context, next: Next): Promise<void> {
  try {
    await next()
  } catch (err) {
    if (!(err instanceof BoomError) || err.message !== 'handled') throw err
    ctx.status = 400
    ctx.body = { error: 'handled' }
  }
}

async function passThrough(_ctx: Context, next: Next): Promise<void> {
  await next()
}

/** No body parser is installed: read the stream. */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown
  } catch {
    const error = new Error('invalid JSON body') as Error & { status: number; expose: boolean }
    error.status = 400
    error.expose = true
    throw error
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
