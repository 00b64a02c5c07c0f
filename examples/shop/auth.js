// auth: Koa with @koa/router and @spanline/koa. Turns a bearer token into a user.
import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import Koa from 'koa'
import Router from '@koa/router'
import { tracing } from '@spanline/koa'
import { listen, serviceTracer } from './lib.js'

export function startAuth() {
  const tracer = serviceTracer('auth')
  const sessions = new Map([['tok_ada', 'ada']])
  const app = new Koa()
  app.use(tracing({ tracer }))   // before the router
  const router = new Router()
  router.get('/session', async (ctx) => {
    const token = ctx.get('authorization').replace(/^Bearer /, '')
    const user = await tracer.trace('verify token', async () => {
      await sleep(10)
      return sessions.get(token)
    })
    ctx.assert(user, 401, 'unknown token')
    ctx.body = { user }
  })
  app.use(router.routes())
  return listen(createServer(app.callback()))
}
