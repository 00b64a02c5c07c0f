// Koa 3 + @koa/router hello world for bench/throughput.mjs: one JSON route.
'use strict'
const Koa = require('koa')
const { Router } = require('@koa/router')
const { variant, requestContext, benchTracer, announce } = require('./variant.cjs')

const app = new Koa()
if (variant === 'context') app.use((ctx, next) => requestContext.run({ ctx }, next))
if (variant === 'spanline') {
  const { tracing } = require('@spanline/koa')
  app.use(tracing({ tracer: benchTracer('bench-koa') }))
}
const router = new Router()
router.get('/users/:id', (ctx) => {
  ctx.body = { id: ctx.params.id, name: 'Ada Lovelace' }
})
app.use(router.routes()).use(router.allowedMethods())

const server = app.listen(0, '127.0.0.1', () => announce(server))
