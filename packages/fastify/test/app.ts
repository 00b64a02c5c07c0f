import type { Server } from 'node:http'
import { fastify as fastify4 } from 'fastify4'
import { fastify as fastify5, type FastifyInstance, type FastifyServerOptions } from 'fastify5'
import { getActiveSpan, getGlobalTracer, type Tracer } from '@spanline/core'
import { BoomError, type AdapterApp, type AdapterAppFactory } from '../../adapter-suite/src/contract.ts'
import { tracing, type FastifyTracingOptions } from '../src/index.ts'

export type FastifyMajor = 4 | 5

/** Fastify `major` (4 or 5) with the given server options; both typed as Fastify 5 for the tests. */
export function createFastify(major: FastifyMajor, options: FastifyServerOptions = {}): FastifyInstance {
  return major === 4 ? (fastify4(options as never) as unknown as FastifyInstance) : fastify5(options)
}

/**
 * Adds the contract routes (packages/adapter-suite/src/contract.ts) to `app`.
 * `tracer` makes the handlers' child spans (the global tracer by default).
 */
export function addContractRoutes(app: FastifyInstance, tracer: Tracer | undefined): void {
  const childTracer = tracer ?? getGlobalTracer()

  // The app's own error handler: answers BoomError('handled'), and hands
  // every other error on to Fastify's default handler (500) by rethrowing.
  app.setErrorHandler(function appErrorHandler(error, _request, reply) {
    if (error instanceof BoomError && error.message === 'handled') {
      return reply.code(400).send({ error: 'handled' })
    }
    throw error
  })

  app.get<{ Params: { id: string } }>('/users/:id', async (request) => {
    const id = request.params.id
    await sleep(Math.random() * 3)
    const span = getActiveSpan()
    span?.setAttribute('user.id', id)
    childTracer.startSpan('load user').end()
    return { id, spanId: span?.spanId }
  })
  app.get('/boom-sync', () => {
    throw new BoomError('sync boom')
  })
  app.get('/boom-async', async () => {
    await sleep(1)
    throw new BoomError('async boom')
  })
  // Fastify's own error path: reply.send(err).
  app.get('/boom-next', (_request, reply) => {
    reply.send(new BoomError('next boom'))
  })
  app.get('/handled', () => {
    throw new BoomError('handled')
  })
  app.get('/teapot', (_request, reply) => {
    reply.code(418).type('text/plain').send('short and stout')
  })
  app.get('/slow', async () => {
    await sleep(300)
    return 'slow'
  })
  app.get('/health', async () => {
    childTracer.startSpan('health child').end()
    return 'ok'
  })
  app.post('/echo', async (request) => request.body)
  app.get('/headers', (_request, reply) => {
    reply.header('x-response-id', 'r-1').send('ok')
  })

  // /api/v1/orders/:orderId: a plugin prefixed /api registering a child plugin prefixed /v1.
  app.register(async function api(instance) {
    await instance.register(async function v1(child) {
      child.get<{ Params: { orderId: string } }>('/orders/:orderId', async (request) => ({ orderId: request.params.orderId }))
    }, { prefix: '/v1' })
  }, { prefix: '/api' })
}

/**
 * The contract app on Fastify `major`, traced with `options` (or untraced,
 * when `options` is undefined: the twin the tests compare responses with).
 */
export async function buildFastifyApp(major: FastifyMajor, options: FastifyTracingOptions | undefined, serverOptions: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = createFastify(major, serverOptions)
  if (options !== undefined) await app.register(tracing, options)
  addContractRoutes(app, options?.tracer as Tracer | undefined)
  return app
}

/** Starts `app` on 127.0.0.1, port 0. */
export async function listen(app: FastifyInstance): Promise<AdapterApp> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    server: app.server as Server,
    close(): Promise<void> {
      app.server.closeAllConnections()
      return app.close()
    },
  }
}

/** The AdapterAppFactory of the shared suite, for Fastify `major`. */
export function createFastifyApp(major: FastifyMajor): AdapterAppFactory {
  return async function fastifyAppFactory(options) {
    const app = await buildFastifyApp(major, options)
    try {
      return await listen(app)
    } catch (err) {
      // A rejected registration (bad options) surfaces here; free the instance.
      await app.close().catch(() => undefined)
      throw err
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
