// Express 5 hello world for bench/throughput.mjs: one JSON route.
'use strict'
const express = require('express')
const { variant, requestContext, benchTracer, announce } = require('./variant.cjs')

const app = express()
if (variant === 'context') app.use((req, res, next) => requestContext.run({ req }, next))
if (variant === 'spanline') {
  const { tracing } = require('@spanline/express')
  app.use(tracing({ tracer: benchTracer('bench-express') }))
}
app.get('/users/:id', (req, res) => {
  res.json({ id: req.params.id, name: 'Ada Lovelace' })
})

const server = app.listen(0, '127.0.0.1', () => announce(server))
