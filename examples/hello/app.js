// A small traced app, instrumented by hand with @spanline/core: a client
// calls a server over real HTTP on 127.0.0.1, the trace context crosses in
// the traceparent header, and the finished trace is printed as a waterfall.
// With OTEL_EXPORTER_OTLP_ENDPOINT set, the spans also go to that backend.
// Run it with `node examples/hello/app.js` from the repository root.
import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  ConsoleSpanExporter, createTracer, incomingHeadersGetter, OtlpHttpExporter, runWithContext, runWithSpan,
  setGlobalTracer, SpanKind, SpanStatusCode,
} from '@spanline/core'

const exporters = [new ConsoleSpanExporter()]
if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT) exporters.push(new OtlpHttpExporter())
const tracer = createTracer({ serviceName: 'hello', exporters })
setGlobalTracer(tracer)

// The server side: continue the caller's trace from the incoming headers.
const server = createServer((req, res) => {
  const parent = tracer.extract(req.headers, undefined, incomingHeadersGetter)
  const span = runWithContext(parent, () => tracer.startSpan(`${req.method} /users/:id`, {
    kind: SpanKind.SERVER,
    attributes: { 'http.request.method': req.method, 'url.path': req.url, 'http.route': '/users/:id' },
  }))
  runWithSpan(span, handle, req, res).finally(() => {
    span.setAttribute('http.response.status_code', res.statusCode)
    if (res.statusCode >= 500) span.setStatus(SpanStatusCode.ERROR)
    span.end()
  })
})

async function handle(req, res) {
  const user = await tracer.trace('db.query users', async (span) => {
    span.setAttribute('db.system.name', 'postgresql')
    await sleep(15)
    return { id: req.url.split('/').pop(), name: 'Ada' }
  })
  await tracer.trace('render', () => sleep(3))
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify(user))
}

await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
const { port } = server.address()

// The client side: a root span, and a CLIENT span whose context is injected.
await tracer.trace('checkout', async () => {
  await tracer.trace('GET', async (span) => {
    const headers = {}
    tracer.inject(headers)
    const url = `http://127.0.0.1:${port}/users/42`
    span.setAttributes({ 'http.request.method': 'GET', 'url.full': url })
    const res = await fetch(url, { headers })
    span.setAttribute('http.response.status_code', res.status)
    console.log(`response: ${await res.text()}`)
  }, { kind: SpanKind.CLIENT })
})

server.close()
// Prints the waterfall (and sends the spans, if a backend is configured).
await tracer.shutdown()
