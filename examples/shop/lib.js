// What the services share: how each one gets its tracer, and small HTTP helpers.
import { once } from 'node:events'
import { text } from 'node:stream/consumers'
import { ConsoleSpanExporter, createTracer, OtlpHttpExporter } from '@spanline/core'

// ONE console exporter for all six tracers: it groups spans by trace id, so a
// checkout prints as one waterfall although six services made its spans.
// main.js prints each trace itself (forceFlush) once the checkout and its
// background notification are done; the long quiet period only makes sure
// the exporter does not print a trace on its own before that.
export const consoleExporter = new ConsoleSpanExporter({ quietPeriodMs: 5000 })

const tracers = []

/** A tracer of its own per service (its service.name), as in separate processes. */
export function serviceTracer(serviceName) {
  const exporters = [consoleExporter]
  // Set OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://localhost:4318) to see the same traces in Jaeger or Tempo.
  if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT) exporters.push(new OtlpHttpExporter())
  const tracer = createTracer({ serviceName, exporters })
  tracers.push(tracer)
  return tracer
}

/** Flushes every tracer: prints what is left, sends the OTLP batches. */
export async function shutdownTracers() {
  await Promise.all(tracers.map((tracer) => tracer.shutdown()))
}

/** Listens on a free port of 127.0.0.1; resolves to { url, close() }. */
export async function listen(server) {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  }
}

export async function readJson(req) {
  return JSON.parse(await text(req))
}

export function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}
