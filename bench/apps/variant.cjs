// What the three throughput apps share: which variant they run as, and how
// they report their port. The apps are CommonJS because OpenTelemetry's
// instrumentations patch Express and Koa through `require` hooks; an ES
// module app would need OpenTelemetry's loader (import-in-the-middle) as
// well, and every variant must run the very same app code.
//
// BENCH_VARIANT (set by bench/throughput.mjs):
//   bare      the app alone; also the app that spanline-auto and otel preload into
//   context   one AsyncLocalStorage scope per request and nothing else
//   spanline  the explicit Spanline adapter, exporting to BENCH_SINK_URL
'use strict'
const { AsyncLocalStorage } = require('node:async_hooks')

const variant = process.env.BENCH_VARIANT ?? 'bare'
if (!['bare', 'context', 'spanline'].includes(variant)) throw new Error(`unknown BENCH_VARIANT ${variant}`)

// The floor any context-propagating tracer pays: every framework adapter
// runs the rest of the request inside `als.run()`. The store is a fresh
// object per request, as a tracer's context would be.
const requestContext = new AsyncLocalStorage()

/** The tracer of the `spanline` variant: OTLP/HTTP protobuf to the sink, batched, sampling everything (no incoming traceparent: the default parent-based sampler's root is always on). */
function benchTracer(serviceName) {
  // Loaded only here, so `bare` and `context` never load Spanline.
  const { createTracer, OtlpHttpExporter } = require('@spanline/core')
  const url = process.env.BENCH_SINK_URL
  if (!url) throw new Error('BENCH_SINK_URL is not set')
  return createTracer({ serviceName, exporters: [new OtlpHttpExporter({ url })] })
}

/** Tells bench/throughput.mjs the port, once connections are accepted. */
function announce(server) {
  process.stdout.write(`listening ${server.address().port}\n`)
}

// A plain exit on SIGTERM, so that `--cpu-prof` writes its profile when the
// benchmark stops the server (a process killed by the signal writes nothing).
process.once('SIGTERM', () => process.exit(0))

module.exports = { variant, requestContext, benchTracer, announce }
