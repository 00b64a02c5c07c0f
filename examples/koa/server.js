// A traced Koa app with @koa/router. `node server.js` serves on 127.0.0.1,
// sends itself a few requests (one slow, one failing) and prints each trace
// as a waterfall. Point OTEL_EXPORTER_OTLP_ENDPOINT at a collector to send
// them there too.
import Koa from 'koa'
import Router from '@koa/router'
import { ConsoleSpanExporter, createTracer, getActiveSpan, OtlpHttpExporter, setGlobalTracer } from '@spanline/core'
import { tracing } from '@spanline/koa'
import { sendRequests, work } from '../shared/demo.js'

const exporters = [new ConsoleSpanExporter()]
if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT) exporters.push(new OtlpHttpExporter())
const tracer = createTracer({ serviceName: 'koa-shop', exporters })
setGlobalTracer(tracer)

const app = new Koa()
app.silent = true                          // the demo's failing checkout is expected
app.use(tracing({ ignore: '/health' }))   // the one line, before the router

const router = new Router({ prefix: '/api' })
router.get('/users/:id', async (ctx) => {
  getActiveSpan()?.setAttribute('user.id', ctx.params.id)
  ctx.body = { id: ctx.params.id, ...(await work(tracer, 'db.query users', 20)) }
})
router.get('/checkout', async () => {
  await work(tracer, 'payment.charge', 60)
  throw new Error('card declined')
})
app.use(router.routes())
app.use((ctx) => { if (ctx.path === '/health') ctx.body = 'ok' })

const server = app.listen(0, '127.0.0.1', async () => {
  await sendRequests(server.address().port, ['/api/users/42', '/api/checkout', '/health'])
  server.close()
  await tracer.shutdown()
})
