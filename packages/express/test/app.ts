import { createServer } from 'node:http'
import express4 from 'express4'
import express5 from 'express5'
import type { Express, NextFunction, Request, Response } from 'express'
import { getActiveSpan, getGlobalTracer, type HttpServerOptions, type Tracer } from '@spanline/core'
import { BoomError, type AdapterApp, type AdapterAppFactory } from '../../adapter-suite/src/contract.ts'
import { tracing, type ExpressTracingMiddleware } from '../src/index.ts'

export type ExpressMajor = 4 | 5

/** The express() of the given major. */
export function expressOf(major: ExpressMajor): typeof express5 {
  return major === 4 ? express4 : express5
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * The contract app (packages/adapter-suite/src/contract.ts) on Express 4 or
 * 5, with `middleware` (the tracing one, or none for the untraced twin)
 * installed first. `tracer` makes the handlers' child spans; `express` may
 * be a separately loaded copy of the same major.
 */
export function buildExpressApp(
  major: ExpressMajor,
  middleware: ExpressTracingMiddleware | undefined,
  tracer: Tracer | undefined,
  express: typeof express5 = expressOf(major),
): Express {
  const app = express()
  if (middleware !== undefined) app.use(middleware)
  const childTracer = tracer ?? getGlobalTracer()

  app.get('/users/:id', (req, res, next) => {
    // Express 4 does not catch rejections: every async handler forwards them.
    getUser(req, res, childTracer).catch(next)
  })

  const api = express.Router()
  const v1 = express.Router()
  v1.get('/orders/:orderId', (req, res) => {
    res.json({ orderId: req.params.orderId })
  })
  api.use('/v1', v1)
  app.use('/api', api)

  app.get('/boom-sync', () => {
    throw new BoomError('sync boom')
  })
  if (major === 5) {
    app.get('/boom-async', async () => {
      await sleep(1)
      throw new BoomError('async boom')
    })
  } else {
    app.get('/boom-async', (_req, _res, next) => {
      sleep(1).then(() => {
        throw new BoomError('async boom')
      }).catch(next)
    })
  }
  app.get('/boom-next', (_req, _res, next) => {
    next(new BoomError('next boom'))
  })
  app.get('/handled', () => {
    throw new BoomError('handled')
  })
  app.get('/teapot', (_req, res) => {
    res.status(418).type('text/plain').send('short and stout')
  })
  app.get('/slow', (_req, res) => {
    setTimeout(() => res.send('slow'), 300)
  })
  app.get('/health', (_req, res) => {
    childTracer.startSpan('health child').end()
    res.send('ok')
  })
  app.post('/echo', express.json(), (req, res) => {
    res.json(req.body)
  })
  app.get('/headers', (_req, res) => {
    res.set('x-response-id', 'r-1').send('ok')
  })
  // The app's own error handler: answers the one error it knows, passes the rest on.
  app.use(function handleKnownErrors(err: unknown, _req: Request, res: Response, next: NextFunction) {
    if (err instanceof BoomError && err.message === 'handled') res.status(400).json({ error: 'handled' })
    else next(err)
  })
  return app
}

async function getUser(req: Request, res: Response, tracer: Tracer): Promise<void> {
  const id = req.params.id!
  await sleep(Math.random() * 3)
  const span = getActiveSpan()
  span?.setAttribute('user.id', id)
  tracer.startSpan('load user').end()
  res.json({ id, spanId: span?.spanId })
}

/** Serves `app` on 127.0.0.1, port 0. */
export async function serve(listener: Parameters<typeof createServer>[1] & object): Promise<AdapterApp> {
  const server = createServer(listener)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    server,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }),
  }
}

/** The factory the shared adapter suite runs: the contract app with `tracing(options)` first. */
export function createExpressApp(major: ExpressMajor): AdapterAppFactory {
  return async function createApp(options: HttpServerOptions): Promise<AdapterApp> {
    return serve(buildExpressApp(major, tracing(options), options.tracer as Tracer | undefined))
  }
}
