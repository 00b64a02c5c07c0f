// Turns the per-run results of bench/throughput.mjs into medians per
// framework × variant and a markdown table with its footnotes.
import { median, quartiles } from './stats.mjs'

/**
 * One row per framework × variant. The ratio to bare is taken within each
 * round (both runs minutes apart at most) and then the median over rounds,
 * so that a machine that slows down between rounds does not skew it.
 */
export function summarize(runs, frameworks, variants) {
  const rows = []
  for (const framework of frameworks) {
    for (const variant of variants) {
      const all = runs.filter((r) => r.framework === framework && r.variant === variant)
      const ok = all.filter((r) => r.error === undefined)
      const bareOf = (r) => runs.find((b) => b.framework === framework && b.variant === 'bare' && b.round === r.round && b.error === undefined)
      const ratios = (metric) => ok.flatMap((r) => (bareOf(r) ? [r[metric] / bareOf(r)[metric]] : []))
      // Server CPU per request beyond bare's in the same round, in microseconds.
      const addedMicros = ok.flatMap((r) => (bareOf(r) ? [1e6 / r.requestsPerCpuSecond - 1e6 / bareOf(r).requestsPerCpuSecond] : []))
      const rss = ok.map((r) => r.peakRssKb).filter((kb) => kb !== undefined)
      rows.push({
        framework,
        variant,
        runs: ok.length,
        failed: all.length - ok.length,
        rps: median(ok.map((r) => r.rps)),
        ratioToBare: median(ratios('rps')),
        ratioQuartiles: quartiles(ratios('rps')),
        p50Ms: median(ok.map((r) => r.p50Ms)),
        p99Ms: median(ok.map((r) => r.p99Ms)),
        peakRssMb: rss.length ? Math.max(...rss) / 1024 : undefined,
        spansPerRequest: median(ok.map((r) => r.spansPerRequest)),
        serverCpuShare: median(ok.map((r) => r.serverCpuShare)),
        othersOnServerCore: median(ok.map((r) => r.othersOnServerCore)),
        clientCoreBusy: median(ok.map((r) => r.clientCoreBusy)),
        requestsPerCpuSecond: median(ok.map((r) => r.requestsPerCpuSecond)),
        cpuRatioToBare: median(ratios('requestsPerCpuSecond')),
        addedCpuMicros: median(addedMicros),
        loadErrors: ok.reduce((sum, r) => sum + r.loadErrors, 0),
        spanNames: spanNamesPerRequest(ok),
      })
    }
  }
  return rows
}

/** Which spans the sink received per request, over all rounds: [{ scope, name, child, perRequest }]. */
function spanNamesPerRequest(runs) {
  const requests = runs.reduce((sum, r) => sum + r.requestsServed, 0)
  const counts = new Map()
  for (const run of runs) for (const [key, n] of Object.entries(run.spanNames ?? {})) counts.set(key, (counts.get(key) ?? 0) + n)
  return [...counts]
    .map(([key, n]) => {
      // (Saved runs from before the parent was tallied have no third part.)
      const [scope, name, parent] = key.split('\t')
      return { scope, name, child: parent === 'child', perRequest: n / requests }
    })
    .sort((a, b) => b.perRequest - a.perRequest || a.scope.localeCompare(b.scope) || a.name.localeCompare(b.name) || Number(a.child) - Number(b.child))
}

const fixed = (digits) => (x) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a')
const percent = (x) => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : 'n/a')
const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a')

// Why OpenTelemetry's numbers differ: what its instrumentations make for
// these apps, with their default options.
const OTEL_SPANS = {
  express:
    '@opentelemetry/instrumentation-http makes the SERVER span; @opentelemetry/instrumentation-express adds an INTERNAL span for every ' +
    'router layer the request passes through (middleware, routers, request handlers): in this app the one `request handler` ' +
    '(Express 5 no longer has the built-in `query` and `expressInit` middleware, each a span more on Express 4).',
  koa:
    '@opentelemetry/instrumentation-http makes the SERVER span; @opentelemetry/instrumentation-koa adds an INTERNAL span for every Koa ' +
    'middleware the request passes through, the @koa/router dispatch included: here `router - /users/:id` (the route answers, so ' +
    '`allowedMethods()` behind it never runs).',
  fastify:
    '@opentelemetry/instrumentation-http makes the SERVER span; @fastify/otel adds a span of its own for the request (`request`), one ' +
    'for the route handler (`handler - fastify -> @fastify/otel`) and one per lifecycle hook the route has (none in this app).',
}

/** The markdown table and its footnotes. */
export function markdown(summary, meta) {
  const lines = [
    `Node ${meta.node} (${meta.platform}, ${meta.cpus}), ${meta.loadGenerator} with ${meta.connections} keep-alive connections on GET /users/42` +
      `${meta.traceparent ? ' (every request with a traceparent header: server spans are children of a remote parent)' : ''}; ` +
      `each variant's server started once and warmed up for ${meta.warmupSeconds} s, then ${meta.rounds} round(s) of ` +
      `${meta.durationSeconds} s of load on every variant in turn (the other servers idle); ` +
      (meta.pinned ? 'servers pinned to core 0, load generator and OTLP sinks to core 1.' : 'no CPU pinning.'),
    ...(meta.versions ? ['', Object.entries(meta.versions).filter(([, v]) => v).map(([name, v]) => `${name} ${v}`).join(', ')] : []),
    '',
    '| framework | variant | req/s | vs bare ¹ | p50 ms | p99 ms | peak RSS MB | spans/req ² | server CPU ³ | req/CPU-s ³ | vs bare per CPU-s ³ | added CPU µs/req ⁴ |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const row of summary) {
    const failed = row.failed ? ` (${row.failed} slice(s) failed)` : ''
    const bare = row.variant === 'bare' && row.runs > 0
    const ratio = bare ? '1.00' : fixed(2)(row.ratioToBare)
    const cpuRatio = bare ? '1.00' : fixed(2)(row.cpuRatioToBare)
    const added = bare ? '0' : fixed(1)(row.addedCpuMicros)
    lines.push(
      `| ${row.framework} | ${row.variant}${failed} | ${int(row.rps)} | ${ratio} | ${fixed(2)(row.p50Ms)} | ${fixed(2)(row.p99Ms)} | ` +
        `${fixed(0)(row.peakRssMb)} | ${fixed(2)(row.spansPerRequest)} | ${percent(row.serverCpuShare)} | ${int(row.requestsPerCpuSecond)} | ${cpuRatio} | ${added} |`,
    )
  }
  lines.push(
    '',
    '¹ Throughput divided by bare\'s in the same round, median over rounds. `context` is one `AsyncLocalStorage.run()` per request and nothing else: ' +
      'the floor for any tracer that keeps a span active across the request.',
    '',
    '² Spans the OTLP sink received, divided by the requests the server answered (warm-up included, and the one request in flight on ' +
      'each connection when the load generator stops). Spanline makes one SERVER span per request; below 1 would mean spans dropped ' +
      '(queue full). What the traced variants sent, per request ("with a parent": the span has a parent span id, a local span\'s or, ' +
      'for a server span, the caller\'s from the traceparent header):',
    '',
  )
  for (const row of summary) {
    if (row.spanNames.length === 0) continue
    const names = row.spanNames.map((s) => `\`${s.name}\` ${s.perRequest.toFixed(2)} (${s.scope || 'no scope'}${s.child ? ', with a parent' : ''})`).join(', ')
    lines.push(`   - ${row.framework} ${row.variant}: ${names}`)
  }
  const otelFrameworks = summary.filter((r) => r.variant === 'otel' && r.runs > 0).map((r) => r.framework)
  if (otelFrameworks.length) {
    lines.push('', '   OpenTelemetry makes more than one span per request, with its default options:')
    for (const framework of otelFrameworks) lines.push(`   - ${framework}: ${OTEL_SPANS[framework]}`)
  }
  lines.push(
    '',
    '³ Server CPU: the CPU time the server used during the measured load, per second (median). Near 100% the server was the ' +
      'bottleneck, as it should be; well below, the load generator could not keep it busy (it shares its core with the sinks, and with ' +
      'whatever else runs on the machine) or other processes took the server\'s core, and req/s then reads what the client managed ' +
      'rather than what the server can do. Requests per CPU second of the server, and their ratio to bare\'s in the same round ' +
      '(median), are the steadier figures then; they still count a little more CPU per request for a server that is not saturated.' +
      (meta.othersOnServerCore
        ? ` Other processes used ${percent(meta.othersOnServerCore.median)} of the server's core in the median slice ` +
          `(${percent(meta.othersOnServerCore.max)} at most).`
        : '') +
      (meta.repeated
        ? ` A slice during which they took more than ${percent(meta.repeated.threshold)} was loaded again (up to ${meta.repeated.retries} ` +
          `times, the least disturbed attempt counting): ${meta.repeated.runs} of this table's slices were.`
        : ''),
  )
  lines.push(
    '',
    '⁴ Server CPU per request beyond bare\'s in the same round (1/req-per-CPU-s minus bare\'s), median, in microseconds: what a ' +
      'variant costs per request, to compare with the budgets a ratio allows (a ratio r to bare costs (1/r - 1) × bare\'s CPU per ' +
      'request). It is more than the tracer\'s own work: with more CPU per request the server answers fewer requests per turn of the ' +
      'event loop, so each pays a larger share of the loop\'s syscalls and wake-ups. Measured once while developing Spanline (a 2-core ' +
      'VM, Fastify, Node 24; not by this run): a plain busy-wait of 4.4 µs per request, no allocation and no I/O, added 8.1 µs.',
  )
  const withErrors = summary.filter((r) => r.loadErrors > 0)
  if (withErrors.length) {
    lines.push('', `Load generator errors (socket errors or non-2xx): ${withErrors.map((r) => `${r.framework} ${r.variant} ${r.loadErrors}`).join(', ')}.`)
  }
  return lines.join('\n')
}
