// A traced Fastify app. `node server.js` serves on 127.0.0.1, sends itself a
// few requests (one slow, one failing) and prints each trace as a waterfall.
// Point OTEL_EXPORTER_OTLP_ENDPOINT at a collector to send them there too.
import Fastify from 'fastify'
import { ConsoleSpanExporter, createTracer, getActiveSpan, OtlpHttpExporter, setGlobalTracer } from '@spanline/core'
import { tracing } from '@spanline/fastify'
import { sendRequests, work } from '../shared/demo.js'

const exporters = [new ConsoleSpanExporter()]
if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT) exporters.push(new OtlpHttpExporter())
const tracer = createTracer({ serviceName: 'fastify-shop', exporters })
setGlobalTracer(tracer)

const app = Fastify()
await app.register(tracing, { ignore: '/health' })   // the one line, before the routes

await app.register(async (api) => {
  api.get('/users/:id', async (request) => {
    getActiveSpan()?.setAttribute('user.id', request.params.id)
    return { id: request.params.id, ...(await work(tracer, 'db.query users', 20)) }
  })
  api.get('/checkout', async () => {
    await work(tracer, 'payment.charge', 60)
    throw new Error('card declined')
  })
}, { prefix: '/api' })
app.get('/health', async () => 'ok')

await app.listen({ port: 0, host: '127.0.0.1' })
await sendRequests(app.server.address().port, ['/api/users/42', '/api/checkout', '/health'])
await app.close()
await tracer.shutdown()
