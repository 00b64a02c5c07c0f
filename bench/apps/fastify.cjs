// Fastify 5 hello world for bench/throughput.mjs: one JSON route.
'use strict'
const Fastify = require('fastify')
const { variant, requestContext, benchTracer, announce } = require('./variant.cjs')

const app = Fastify()
// onRequest is the first hook; calling `done` inside the scope runs the rest
// of Fastify's pipeline in it (what @spanline/fastify does).
if (variant === 'context') app.addHook('onRequest', (request, reply, done) => requestContext.run({ request }, done))
if (variant === 'spanline') {
  const { tracing } = require('@spanline/fastify')
  app.register(tracing, { tracer: benchTracer('bench-fastify') })
}
app.get('/users/:id', async (request) => ({ id: request.params.id, name: 'Ada Lovelace' }))

app.listen({ port: 0, host: '127.0.0.1' }).then(
  () => announce(app.server),
  (err) => {
    console.error(err)
    process.exit(1)
  },
)
