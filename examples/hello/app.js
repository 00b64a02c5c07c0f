// A small traced app, instrumented by hand with @spanline/core: a client
// calls a server over real HTTP on 127.0.0.1, the trace context crosses in
// the traceparent header, and the finished trace is printed as a tree.
// Run it with `npm start` at the repository root.
import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  createTracer, incomingHeadersGetter, runWithContext, runWithSpan, setGlobalTracer,
  SimpleSpanProcessor, SpanKind, SpanStatusCode, toEpochMillis,
} from '@spanline/core'
import { InMemorySpanExporter } from '@spanline/core/testing'

const exporter = new InMemorySpanExporter()
const tracer = createTracer({ serviceName: 'hello', processors: [new SimpleSpanProcessor(exporter)] })
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
await tracer.forceFlush()

// Print the trace as a tree, children under their parent, by start time.
const spans = exporter.getFinishedSpans()
const children = new Map()
for (const s of spans) {
  const list = children.get(s.parentSpanId) ?? []
  list.push(s)
  children.set(s.parentSpanId, list)
}
const root = spans.find((s) => s.parentSpanId === undefined)
const t0 = root.startTime
const kinds = ['', 'internal', 'server', 'client', 'producer', 'consumer']
console.log(`\ntrace ${root.traceId}`)
;(function print(span, depth) {
  const offset = (span.startTime - t0).toFixed(1).padStart(6)
  const duration = (span.endTime - span.startTime).toFixed(1).padStart(6)
  console.log(`${offset} ms ${duration} ms  ${'  '.repeat(depth)}${span.name} [${kinds[span.kind]}] ${span.resource.attributes['service.name']}`)
  for (const child of (children.get(span.spanId) ?? []).sort((a, b) => a.startTime - b.startTime)) print(child, depth + 1)
})(root, 0)
console.log(`\n${spans.length} spans, one trace; started ${new Date(toEpochMillis(t0)).toISOString()}`)
