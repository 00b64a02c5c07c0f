// Micro benchmarks, Spanline and OpenTelemetry JS in the same process and run:
//   - CPU ns per span end to end: start a SERVER span, set 4 attributes, end it,
//     through the batch processor and the OTLP protobuf encoder into a
//     transport that does nothing (so the network is not measured);
//   - the same without export (start, attributes, end only), to split the cost;
//   - ns per traceparent parse (extract) and inject;
//   - bytes per span exported, protobuf and JSON.
// Rounds alternate between the two libraries so that a slow phase of the
// machine hits both; each case times its own copy of the loop (lib/loops.mjs).
// A script, not a test:
//   node bench/micro.mjs [--json FILE] [--rounds N] [--spans N]
import { createRequire } from 'node:module'
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import {
  BatchSpanProcessor,
  createTracer,
  encodeJson,
  encodeProtobuf,
  ROOT_CONTEXT,
  SpanKind,
  W3CTraceContextPropagator,
} from '@spanline/core'
import { ensureOtel } from './lib/otel-deps.mjs'
import { loopsFor } from './lib/loops.mjs'
import { median } from './lib/stats.mjs'

const { values: args } = parseArgs({
  options: {
    json: { type: 'string' },
    rounds: { type: 'string', default: '7' },
    spans: { type: 'string', default: '200000' },
  },
})
const ROUNDS = Number(args.rounds)
const SPANS = Number(args.spans)
const BATCH = 512

ensureOtel()
const otelRequire = createRequire(new URL('./otel/package.json', import.meta.url))
const otelApi = otelRequire('@opentelemetry/api')
const otelBase = otelRequire('@opentelemetry/sdk-trace-base')
const otelCore = otelRequire('@opentelemetry/core')
const otelResources = otelRequire('@opentelemetry/resources')
const { ProtobufTraceSerializer, JsonTraceSerializer } = otelRequire('@opentelemetry/otlp-transformer')
const otelVersion = otelRequire('@opentelemetry/sdk-trace-base/package.json').version

// ---- Spanline -------------------------------------------------------------

/**
 * An exporter that encodes each batch as a real one would and sends nothing.
 * For protobuf it does what OtlpHttpExporter does: it takes exportProtobuf()
 * bodies, which the batch processor encodes span by span as they end (see
 * packages/core/src/export/otlp/span-queue.ts); other encodings get the span
 * objects in export().
 */
function spanlineExporter(encode) {
  const exporter = {
    encoded: 0,
    bytes: 0,
    async export(spans) {
      this.bytes += encode(spans).length
      this.encoded += spans.length
      return { ok: true }
    },
    async shutdown() {},
    async forceFlush() {},
  }
  if (encode === encodeProtobuf) {
    exporter.export = () => Promise.reject(new Error('export() called although exportProtobuf() is offered'))
    exporter.exportProtobuf = async (body, count) => {
      exporter.bytes += body.length
      exporter.encoded += count
      return { ok: true }
    }
  }
  return exporter
}

function spanlineTracer(exporter) {
  const processors = exporter === undefined
    ? [{ onStart() {}, onEnd() {}, async forceFlush() {}, async shutdown() {} }]
    : [new BatchSpanProcessor(exporter, { maxQueueSize: 1 << 20, maxExportBatchSize: BATCH, scheduledDelayMillis: 1 })]
  return createTracer({ env: {}, serviceName: 'bench', processors })
}

// ---- OpenTelemetry ---------------------------------------------------------

function otelExporter(encode) {
  return {
    encoded: 0,
    bytes: 0,
    export(spans, done) {
      this.bytes += encode(spans).length
      this.encoded += spans.length
      done({ code: 0 })
    },
    async shutdown() {},
    async forceFlush() {},
  }
}

function otelTracer(exporter) {
  const spanProcessors = exporter === undefined
    ? [{ onStart() {}, onEnd() {}, async forceFlush() {}, async shutdown() {} }]
    : [new otelBase.BatchSpanProcessor(exporter, { maxQueueSize: 1 << 20, maxExportBatchSize: BATCH, scheduledDelayMillis: 1 })]
  const provider = new otelBase.BasicTracerProvider({
    resource: otelResources.resourceFromAttributes({ 'service.name': 'bench' }),
    spanProcessors,
  })
  return { provider, tracer: provider.getTracer('bench') }
}

// ---- the loop under test ---------------------------------------------------

/**
 * A library's span loop (`name`: a key of ENCODERS): with `format` (one of
 * its ENCODERS), spans go through its batch processor into an exporter that
 * only encodes; without, into a processor that does nothing. Each call gets
 * its own copy of the loop (see lib/loops.mjs).
 */
async function setup(name, format) {
  const { spanRound } = await loopsFor(`${name}-${format ?? 'none'}`)
  const encode = format === undefined ? undefined : ENCODERS[name][format]
  if (name === 'spanline') {
    const exporter = encode === undefined ? undefined : spanlineExporter(encode)
    const tracer = spanlineTracer(exporter)
    const options = { kind: SpanKind.SERVER }
    return {
      exporter,
      run: (n) => spanRound((spanName) => tracer.startSpan(spanName, options), () => tracer.forceFlush(), n, BATCH),
    }
  }
  const exporter = encode === undefined ? undefined : otelExporter(encode)
  const { provider, tracer } = otelTracer(exporter)
  const options = { kind: otelApi.SpanKind.SERVER }
  return {
    exporter,
    run: (n) => spanRound((spanName) => tracer.startSpan(spanName, options), () => provider.forceFlush(), n, BATCH),
  }
}

const ENCODERS = {
  spanline: { protobuf: encodeProtobuf, json: (spans) => Buffer.from(encodeJson(spans)) },
  opentelemetry: {
    protobuf: (spans) => ProtobufTraceSerializer.serializeRequest(spans),
    json: (spans) => JsonTraceSerializer.serializeRequest(spans),
  },
}

async function compareSpans(withExport) {
  const libs = {
    spanline: await setup('spanline', withExport ? 'protobuf' : undefined),
    opentelemetry: await setup('opentelemetry', withExport ? 'protobuf' : undefined),
  }
  const times = { spanline: [], opentelemetry: [] }
  for (const lib of Object.values(libs)) await lib.run(SPANS / 2) // warm up
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, lib] of Object.entries(libs)) {
      const before = lib.exporter?.encoded ?? 0
      times[name].push(await lib.run(SPANS))
      // Proof that every span went through the encoder, for both.
      if (lib.exporter !== undefined && lib.exporter.encoded - before !== SPANS) {
        throw new Error(`${name}: ${lib.exporter.encoded - before} of ${SPANS} spans exported`)
      }
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, xs]) => [k, { median: median(xs), rounds: xs }]))
}

// ---- traceparent -----------------------------------------------------------

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

async function compareTraceparent() {
  const N = 1_000_000
  const ours = new W3CTraceContextPropagator()
  const theirs = new otelCore.W3CTraceContextPropagator()
  // A header object per iteration would dominate; reuse two, vary nothing
  // (the parsers keep no cache).
  const incoming = { traceparent: TRACEPARENT }
  const outgoing = {}
  const ourContext = ours.extract(ROOT_CONTEXT, incoming)
  const theirContext = theirs.extract(otelApi.ROOT_CONTEXT, incoming, otelApi.defaultTextMapGetter)
  const cases = {
    'spanline extract': () => ours.extract(ROOT_CONTEXT, incoming),
    'opentelemetry extract': () => theirs.extract(otelApi.ROOT_CONTEXT, incoming, otelApi.defaultTextMapGetter),
    'spanline inject': () => ours.inject(ourContext, outgoing),
    'opentelemetry inject': () => theirs.inject(theirContext, outgoing, otelApi.defaultTextMapSetter),
  }
  // A copy of the timing loop per case, as for spans (see lib/loops.mjs).
  const loops = {}
  for (const k of Object.keys(cases)) loops[k] = (await loopsFor(k)).timeLoop
  for (const [k, fn] of Object.entries(cases)) loops[k](N / 4, fn)
  const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]))
  for (let r = 0; r < ROUNDS; r++) for (const [k, fn] of Object.entries(cases)) times[k].push(loops[k](N, fn))
  if (outgoing.traceparent === undefined) throw new Error('inject wrote nothing')
  return Object.fromEntries(Object.entries(times).map(([k, xs]) => [k, median(xs)]))
}

// ---- bytes per span --------------------------------------------------------

async function bytesPerSpan() {
  const out = {}
  for (const [lib, formats] of Object.entries(ENCODERS)) {
    out[lib] = {}
    for (const format of Object.keys(formats)) {
      const { exporter, run } = await setup(lib, format)
      await run(BATCH * 20)
      out[lib][format] = exporter.bytes / exporter.encoded
    }
  }
  return out
}

// ---- main ------------------------------------------------------------------

const endToEnd = await compareSpans(true)
const spanOnly = await compareSpans(false)
const traceparent = await compareTraceparent()
const bytes = await bytesPerSpan()

const f0 = (x) => x.toFixed(0)
const ratio = (a, b) => (b / a).toFixed(1)
const lines = [
  `Node ${process.version}, OpenTelemetry sdk-trace-base ${otelVersion}; medians of ${ROUNDS} alternating rounds of ${SPANS} spans.`,
  '',
  '| per span | Spanline | OpenTelemetry JS | OpenTelemetry / Spanline |',
  '|---|---:|---:|---:|',
  `| start, 4 attributes, end, batch, protobuf encode (ns) | ${f0(endToEnd.spanline.median)} | ${f0(endToEnd.opentelemetry.median)} | ${ratio(endToEnd.spanline.median, endToEnd.opentelemetry.median)}x |`,
  `| start, 4 attributes, end, no export (ns) | ${f0(spanOnly.spanline.median)} | ${f0(spanOnly.opentelemetry.median)} | ${ratio(spanOnly.spanline.median, spanOnly.opentelemetry.median)}x |`,
  `| traceparent extract (ns) | ${f0(traceparent['spanline extract'])} | ${f0(traceparent['opentelemetry extract'])} | ${ratio(traceparent['spanline extract'], traceparent['opentelemetry extract'])}x |`,
  `| traceparent inject (ns) | ${f0(traceparent['spanline inject'])} | ${f0(traceparent['opentelemetry inject'])} | ${ratio(traceparent['spanline inject'], traceparent['opentelemetry inject'])}x |`,
  `| bytes per span, OTLP protobuf (batches of ${BATCH}) | ${f0(bytes.spanline.protobuf)} | ${f0(bytes.opentelemetry.protobuf)} | |`,
  `| bytes per span, OTLP JSON (batches of ${BATCH}) | ${f0(bytes.spanline.json)} | ${f0(bytes.opentelemetry.json)} | |`,
]
console.log(lines.join('\n'))
if (args.json) {
  writeFileSync(args.json, JSON.stringify({ node: process.version, otel: otelVersion, rounds: ROUNDS, spans: SPANS, endToEnd, spanOnly, traceparent, bytes }, null, 2))
}
