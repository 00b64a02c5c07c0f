// OpenTelemetry JS 2.x set up the documented way for a CommonJS app, as the
// `otel` variant of bench/throughput.mjs:
//
//   node --require ./bench/lib/otel-preload.cjs app.cjs
//
// NodeTracerProvider with a BatchSpanProcessor (its defaults: 2048 queue,
// 512 per batch, 5000 ms) around the OTLP/HTTP protobuf exporter, the
// default sampler (ParentBased(AlwaysOn): every request is a root, so 100%),
// and the instrumentations one would register for these frameworks, with
// their default options: HTTP, Express, Koa, and @fastify/otel (registered
// on each new Fastify instance through `registerOnInitialization`, as its
// README says for setups that do not touch the app). Each only patches the
// framework the app loads.
//
// The packages live in bench/otel/node_modules, outside the pnpm workspace
// (see otel-deps.mjs), so they are resolved from there with createRequire:
// plain `require` from bench/lib would not find them, and NODE_PATH would
// also leak them into the app's own resolution. The frameworks stay the
// app's (bench/node_modules): OpenTelemetry's require hook matches them by
// module name wherever they are installed.
//
// Environment: BENCH_SINK_URL (the traces URL), OTEL_SERVICE_NAME.
'use strict'
const { createRequire } = require('node:module')
const { join } = require('node:path')

const otelRequire = createRequire(join(__dirname, '..', 'otel', 'package.json'))
const { NodeTracerProvider, BatchSpanProcessor } = otelRequire('@opentelemetry/sdk-trace-node')
const { OTLPTraceExporter } = otelRequire('@opentelemetry/exporter-trace-otlp-proto')
const { resourceFromAttributes } = otelRequire('@opentelemetry/resources')
const { registerInstrumentations } = otelRequire('@opentelemetry/instrumentation')
const { HttpInstrumentation } = otelRequire('@opentelemetry/instrumentation-http')
const { ExpressInstrumentation } = otelRequire('@opentelemetry/instrumentation-express')
const { KoaInstrumentation } = otelRequire('@opentelemetry/instrumentation-koa')
const { FastifyOtelInstrumentation } = otelRequire('@fastify/otel')

const url = process.env.BENCH_SINK_URL
if (!url) throw new Error('BENCH_SINK_URL is not set')

const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ 'service.name': process.env.OTEL_SERVICE_NAME ?? 'bench-otel' }),
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }))],
})
provider.register()

registerInstrumentations({
  tracerProvider: provider,
  instrumentations: [
    new HttpInstrumentation(),
    new ExpressInstrumentation(),
    new KoaInstrumentation(),
    new FastifyOtelInstrumentation({ registerOnInitialization: true }),
  ],
})
