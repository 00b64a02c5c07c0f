// A traced Express app. `node server.js` serves on 127.0.0.1, sends itself a
// few requests (one slow, one failing) and prints each trace as a waterfall.
// Point OTEL_EXPORTER_OTLP_ENDPOINT at a collector to send them there too.
import express from 'express'
import { ConsoleSpanExporter, createTracer, getActiveSpan, OtlpHttpExporter, setGlobalTracer } from '@spanline/core'
import { tracing } from '@spanline/express'
import { sendRequests, work } from '../shared/demo.js'

const exporters = [new ConsoleSpanExporter()]
if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT) exporters.push(new OtlpHttpExporter())
const tracer = createTracer({ serviceName: 'express-shop', exporters })
setGlobalTracer(tracer)

const app = express()
app.use(tracing({ ignore: '/health' }))   // the one line

const users = express.Router()
users.get('/:id', async (req, res) => {
  getActiveSpan()?.setAttribute('user.id', req.params.id)
  const user = await work(tracer, 'db.query users', 20)
  res.json({ id: req.params.id, ...user })
})
app.use('/api/users', users)
app.get('/api/checkout', async () => {
  await work(tracer, 'payment.charge', 60)
  throw new Error('card declined')
})
app.get('/health', (req, res) => res.send('ok'))
app.use((err, req, res, next) => res.status(500).json({ error: err.message }))

const server = app.listen(0, '127.0.0.1', async () => {
  await sendRequests(server.address().port, ['/api/users/42', '/api/checkout', '/health'])
  server.close()
  await tracer.shutdown()
})
