// Throughput and latency overhead of tracing, for Express 5, Koa 3 (with
// @koa/router) and Fastify 5 hello-world apps (bench/apps/), each run as
//
//   bare           the app alone
//   context        plus one AsyncLocalStorage scope per request: Node's floor
//   spanline       plus the explicit Spanline adapter, OTLP/HTTP protobuf to a local sink
//   spanline-auto  the bare app under `node --import @spanline/auto`, configured by OTEL_* only
//   otel           the bare app under OpenTelemetry JS 2.x (bench/lib/otel-preload.cjs)
//
// For each framework, every variant's server is started once (with the
// Node running this script), each with an OTLP sink of its own, and warmed
// up for --warmup seconds. Then come --rounds rounds: in each, every variant
// in turn (bare, context, ..., otel) gets --duration seconds of load while
// the others idle. Ratios are taken within a round, between slices seconds
// apart, so that a machine whose speed drifts or jumps (a shared VM's does,
// by 2x from one minute to the next) moves bare and the variant alike; the
// median over rounds then discards the rounds a jump fell in. At the end,
// the run waits for each tracer's last batch to reach its sink and reads the
// span count.
//
//   node bench/throughput.mjs [--rounds 10] [--duration 3] [--warmup 5] [--connections 50]
//                             [--frameworks express,koa,fastify] [--variants bare,context,...]
//                             [--retries 2] [--traceparent] [--json FILE] [--cpu-prof DIR]
//
// --traceparent sends every request with a traceparent header (with wrk a
// different one each, from bench/lib/traceparent.lua; autocannon repeats
// one), to every variant, bare included: the server span is then a child of
// a remote parent, as in every service but the first. Without it no request
// carries one.
//
// A slice during which other processes took more than a tenth of the
// server's core (the "others" figure) measured the machine, not the variant:
// it is loaded again, at once, up to --retries times, and the least
// disturbed attempt counts. (Seen on a shared VM: one run of a round
// at 48% of the server's core, the others of the same variant near 100%,
// turning a median of three into a coin toss.)
//
// --cpu-prof DIR passes `--cpu-prof --cpu-prof-dir DIR` to each server (list
// the hottest functions with `node bench/profile-top.mjs DIR/*.cpuprofile`,
// or what a variant adds to bare, per request, with bench/profile-diff.mjs).
// Prints a markdown table on stdout, progress on stderr; exits non-zero when
// any slice failed.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { request } from 'node:http'
import { cpus, platform, arch } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { FIXED_TRACEPARENT, loadGenerator, runLoad } from './lib/load.mjs'
import { ensureOtel } from './lib/otel-deps.mjs'
import { coreBusySeconds, processCpuSeconds } from './lib/cpu.mjs'
import { parseOptions } from './lib/options.mjs'
import { listeningPort, peakRssKb, pinned, pinning, start, stop } from './lib/processes.mjs'
import { median } from './lib/stats.mjs'
import { FRAMEWORKS, VARIANTS, serverCommand as variantCommand } from './lib/servers.mjs'
import { markdown, summarize } from './lib/throughput-report.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const SERVER_CORE = 0
const CLIENT_CORE = 1 // load generator and sink
// Both tracers' default batch delay (OTEL_BSP_SCHEDULE_DELAY): the last,
// partial batch of a run reaches the sink at most this long after the load.
const BATCH_DELAY_MS = 5000

const cli = parseOptions('throughput.mjs', {
    rounds: { type: 'string', default: '10' },
    duration: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    frameworks: { type: 'string', default: FRAMEWORKS.join(',') },
    variants: { type: 'string', default: VARIANTS.join(',') },
    retries: { type: 'string', default: '2' },
    json: { type: 'string' },
    'cpu-prof': { type: 'string' },
    traceparent: { type: 'boolean', default: false },
})
const args = cli.values

const rounds = cli.integer('rounds', 1)
const retries = cli.integer('retries', 0)
/** Share of the server's core that other processes may take before a slice is repeated. */
const MAX_OTHERS = 0.1
const duration = cli.integer('duration', 1)
const warmup = cli.integer('warmup', 0)
const connections = cli.integer('connections', 1)
const frameworks = cli.list('frameworks', FRAMEWORKS)
const variants = cli.list('variants', VARIANTS)
const cpuProfDir = args['cpu-prof'] === undefined ? undefined : resolve(args['cpu-prof'])

if (variants.includes('otel')) ensureOtel()

// ---- the sinks ---------------------------------------------------------------

/** A small HTTP call to 127.0.0.1 without keep-alive; resolves with the status and body. */
function call(url, method = 'GET', headers = {}) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false, timeout: 5000 }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d) => (body += d)).on('end', () => resolve({ status: res.statusCode, body }))
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)))
    req.on('error', reject).end()
  })
}

/**
 * An OTLP sink of its own for one server (bench/sink.mjs, on the client
 * core): the servers of a framework run side by side, and each traced one's
 * spans must be counted apart.
 */
async function startSink() {
  const proc = start(...pinned(CLIENT_CORE, process.execPath, [join(here, 'sink.mjs')]), { cwd: here })
  return { proc, base: `http://127.0.0.1:${await listeningPort(proc)}` }
}

async function sinkCounts(base) {
  const { status, body } = await call(`${base}/count`)
  if (status !== 200) throw new Error(`sink answered ${status}`)
  return JSON.parse(body)
}

/**
 * The sink's counts once the server's last batch has arrived: for traced
 * variants at least one batch delay after the load (the last partial batch
 * waits for the timer), then no change for 1 s; never longer than two batch
 * delays.
 */
async function settledSinkCounts(base, traced) {
  const begin = Date.now()
  const minWait = traced ? BATCH_DELAY_MS + 500 : 0
  const maxWait = traced ? 2 * BATCH_DELAY_MS : 3000
  let last = await sinkCounts(base)
  let stableSince = Date.now()
  for (;;) {
    await sleep(250)
    const now = await sinkCounts(base)
    if (now.spans !== last.spans || now.exports !== last.exports) stableSince = Date.now()
    last = now
    const t = Date.now()
    if ((t - begin >= minWait && t - stableSince >= 1000) || t - begin >= maxWait) return last
  }
}

// ---- the servers -------------------------------------------------------------

/** Node arguments and environment of one framework × variant (with --cpu-prof when asked). */
function serverCommand(framework, variant, sinkBase) {
  const { args: nodeArgs, env } = variantCommand(framework, variant, sinkBase)
  const profile = cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfDir] : []
  return { args: [...profile, ...nodeArgs], env }
}

/** One request before the load: the route answers 200 with the user, so no variant measures an error page. */
async function checkRoute(url) {
  // With --traceparent, this request too (the sink's tally of spans with a parent then holds every request).
  const { status, body } = await call(url, 'GET', args.traceparent ? { traceparent: FIXED_TRACEPARENT } : {})
  if (status !== 200 || JSON.parse(body).id !== '42') throw new Error(`GET /users/42 answered ${status} ${body.slice(0, 200)}`)
}

/**
 * Starts one variant's server (and its sink), checks its route and warms it
 * up. Returns its state for the slices; `error` is set if it could not start.
 */
async function startServer(framework, variant) {
  const s = { framework, variant, traced: !['bare', 'context'].includes(variant), served: 0 }
  try {
    s.sink = await startSink()
    const { args: nodeArgs, env } = serverCommand(framework, variant, s.sink.base)
    s.proc = start(...pinned(SERVER_CORE, process.execPath, nodeArgs), { cwd: here, env })
    s.url = `http://127.0.0.1:${await listeningPort(s.proc)}/users/42`
    await checkRoute(s.url)
    s.served = 1
    if (warmup > 0) {
      const warm = await runLoad({ url: s.url, seconds: warmup, connections, core: CLIENT_CORE, traceparent: args.traceparent })
      // The requests in flight on each connection when the load stops are answered too.
      s.served += warm.requests + connections
      s.warmupErrors = warm.errors
    }
  } catch (err) {
    s.error = err.message
  }
  return s
}

/** One slice of load on a running server: what the load generator and the CPU accounting saw. */
async function measureSlice(s, round) {
  // The pid names the server's profile with --cpu-prof (Node puts it in the file name): see profile-diff.mjs.
  const run = { round, framework: s.framework, variant: s.variant, pid: s.proc?.pid }
  if (s.error !== undefined) return { ...run, error: s.error }
  if (s.proc.exitCode !== undefined) return { ...run, error: `server exited (${s.proc.exitCode})` }
  try {
    const pid = s.proc.pid
    const serverCpuBefore = processCpuSeconds(pid)
    const serverCoreBefore = coreBusySeconds(SERVER_CORE)
    const clientCoreBefore = coreBusySeconds(CLIENT_CORE)
    const load = await runLoad({ url: s.url, seconds: duration, connections, core: CLIENT_CORE, traceparent: args.traceparent })
    const serverCpu = processCpuSeconds(pid) - serverCpuBefore
    const serverCoreBusy = coreBusySeconds(SERVER_CORE) - serverCoreBefore
    const clientCoreBusy = coreBusySeconds(CLIENT_CORE) - clientCoreBefore
    if (s.proc.exitCode !== undefined) throw new Error(`server exited (${s.proc.exitCode}) during the load`)
    Object.assign(run, {
      rps: load.rps,
      p50Ms: load.p50Ms,
      p99Ms: load.p99Ms,
      requests: load.requests,
      seconds: load.seconds,
      // The requests this slice made the server answer: those the load
      // generator counted, plus the one in flight on each connection when
      // it stopped. Summed over a server's slices (the first also counts
      // the route check and the warm-up), they are every request it served.
      requestsServed: load.requests + connections,
      // The share of its core the server used (below ~95% it was not the
      // bottleneck: the load generator could not keep it busy, or other
      // processes took the core), what other processes used of that core
      // (the other variants' servers are idle meanwhile), how busy the
      // client core was (load generator, sinks, and others), and the
      // server's requests per CPU second, which moves less than req/s on a
      // machine that is not quiet.
      serverCpuShare: serverCpu / load.seconds,
      othersOnServerCore: Math.max(0, serverCoreBusy - serverCpu) / load.seconds,
      clientCoreBusy: clientCoreBusy / load.seconds,
      requestsPerCpuSecond: load.requests / serverCpu,
      loadErrors: load.errors,
    })
  } catch (err) {
    run.error = err.message
  }
  return run
}

/**
 * After the last slice: the spans the server's sink received (once its
 * last batch arrived), per request it answered, and its peak RSS, written
 * into every slice record of the server (the span names into the last one
 * only, since the report sums them over records). Then stops both.
 */
async function finishServer(s, records) {
  try {
    if (s.error !== undefined) return
    const peak = peakRssKb(s.proc.pid)
    const counts = await settledSinkCounts(s.sink.base, s.traced)
    if (s.proc.exitCode !== undefined) throw new Error(`server exited (${s.proc.exitCode}) while flushing`)
    const ok = records.filter((r) => r.error === undefined)
    if (ok.length === 0) return
    ok[0].requestsServed += s.served
    ok[0].loadErrors += s.warmupErrors ?? 0
    const served = ok.reduce((sum, r) => sum + r.requestsServed, 0)
    for (const r of ok) {
      Object.assign(r, {
        peakRssKb: peak,
        spans: counts.spans,
        spansPerRequest: counts.spans / served,
        exports: counts.exports,
        exportBytes: counts.bytes,
        badExports: counts.failed,
      })
    }
    ok.at(-1).spanNames = counts.names
  } catch (err) {
    for (const r of records) r.error ??= err.message
  } finally {
    if (s.proc !== undefined) {
      await stop(s.proc)
      const stderr = s.proc.stderr.trim()
      if (stderr) records.at(-1).serverStderr = stderr.slice(-2000)
    }
    if (s.sink !== undefined) await stop(s.sink.proc)
  }
}

// ---- the rounds ----------------------------------------------------------------

const percent = (x) => (Number.isFinite(x) ? `${Math.round(x * 100)}%` : 'n/a')

function interference(shares) {
  return shares.length ? { median: median(shares), max: Math.max(...shares) } : undefined
}

/** The versions measured: the frameworks as the apps load them, and OpenTelemetry's when it ran. */
function versions() {
  // From the package's entry point up to its package.json: not every
  // package exports `./package.json` (@koa/router does not).
  const version = (require, name) => {
    try {
      for (let dir = dirname(require.resolve(name)); dir !== dirname(dir); dir = dirname(dir)) {
        const pkg = join(dir, 'package.json')
        if (existsSync(pkg)) {
          const { name: found, version } = JSON.parse(readFileSync(pkg, 'utf8'))
          if (found === name) return version
        }
      }
    } catch {}
    return undefined
  }
  const appRequire = createRequire(join(here, 'apps', 'variant.cjs'))
  const found = Object.fromEntries(['express', 'koa', '@koa/router', 'fastify'].map((name) => [name, version(appRequire, name)]))
  if (variants.includes('otel')) {
    const otelRequire = createRequire(ensureOtel())
    for (const name of ['@opentelemetry/sdk-trace-node', '@opentelemetry/instrumentation-http', '@opentelemetry/instrumentation-express', '@opentelemetry/instrumentation-koa', '@fastify/otel']) {
      found[name] = version(otelRequire, name)
    }
  }
  return found
}

const runs = []
const total = rounds * frameworks.length * variants.length
console.error(
  `throughput: Node ${process.version}, ${loadGenerator}, ${frameworks.join(',')} × ${variants.join(',')}, ` +
    `${args.traceparent ? 'every request with a traceparent, ' : ''}${warmup} s warm-up per server, then ${rounds} round(s) of ${duration} s per variant, ${total} slices${pinning ? ', pinned' : ''}`,
)

function logSlice(run) {
  const label = `[${runs.length}/${total}] round ${run.round} ${run.framework} ${run.variant}`
  if (run.error !== undefined) {
    console.error(`${label}: FAILED: ${run.error}`)
    return
  }
  console.error(
    `${label}: ${Math.round(run.rps)} req/s, p50 ${run.p50Ms.toFixed(2)} ms, p99 ${run.p99Ms.toFixed(2)} ms, ` +
      `server CPU ${percent(run.serverCpuShare)} (others ${percent(run.othersOnServerCore)}, client core ${percent(run.clientCoreBusy)}), ` +
      `${Math.round(run.requestsPerCpuSecond)} req/CPU-s` +
      (run.loadErrors ? `, ${run.loadErrors} load errors` : '') +
      (run.repeats ? `, ${run.repeats} repeat(s)` : ''),
  )
}

for (const framework of frameworks) {
  // Every variant's server at once, each warmed up in turn, then the slices:
  // round after round, each variant loaded for --duration seconds in turn
  // while the others idle. Compared with a fresh server per run, the
  // variants' slices of a round lie seconds apart, not minutes, so that a
  // VM whose speed changes from minute to minute (seen: 2x) shifts bare and
  // the variant it is compared with alike; and every slice measures a warm
  // server.
  const servers = []
  for (const variant of variants) {
    const s = await startServer(framework, variant)
    if (s.error !== undefined) console.error(`${framework} ${variant}: could not start: ${s.error}`)
    servers.push(s)
  }
  const records = new Map(servers.map((s) => [s, []]))
  for (let round = 1; round <= rounds; round++) {
    for (const s of servers) {
      let run = await measureSlice(s, round)
      let repeats = 0
      while (run.error === undefined && run.othersOnServerCore > MAX_OTHERS && repeats < retries) {
        repeats++
        console.error(`  round ${round} ${framework} ${s.variant}: others took ${percent(run.othersOnServerCore)} of the server's core; loading it again`)
        const again = await measureSlice(s, round)
        if (again.error !== undefined) {
          // Not silently dropped: the variant did fail to run.
          run = again
          break
        }
        // Every slice was answered by the server and counts in its requests served; only one is measured.
        if (again.othersOnServerCore < run.othersOnServerCore) {
          again.requestsServed += run.requestsServed
          run = again
        } else run.requestsServed += again.requestsServed
      }
      run.repeats = repeats
      runs.push(run)
      records.get(s).push(run)
      logSlice(run)
    }
  }
  // The servers' last batches, flushed on their timers, at once.
  await Promise.all(servers.map((s) => finishServer(s, records.get(s))))
  for (const s of servers) {
    const ok = records.get(s).filter((r) => r.error === undefined)
    const last = records.get(s).at(-1)
    if (ok.length) {
      console.error(
        `${framework} ${s.variant}: ${ok[0].spansPerRequest?.toFixed(2) ?? 'n/a'} spans/req, peak RSS ` +
          `${ok[0].peakRssKb === undefined ? 'n/a' : `${(ok[0].peakRssKb / 1024).toFixed(0)} MB`}` +
          (ok[0].badExports ? `, ${ok[0].badExports} exports the sink could not read` : ''),
      )
    }
    if (last?.serverStderr) console.error(`  server stderr: ${last.serverStderr.split('\n').slice(0, 5).join('\n  ')}`)
  }
}

const meta = {
  node: process.version,
  platform: `${platform()} ${arch()}`,
  cpus: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}`,
  loadGenerator: loadGenerator === 'wrk' ? 'wrk -t1' : 'autocannon',
  connections,
  traceparent: args.traceparent,
  rounds,
  durationSeconds: duration,
  warmupSeconds: warmup,
  pinned: pinning,
  batchDelayMs: BATCH_DELAY_MS,
  // How much of the server's core other processes took, over all slices.
  othersOnServerCore: interference(runs.map((r) => r.othersOnServerCore).filter(Number.isFinite)),
  // Slices repeated because others took more than MAX_OTHERS of the server's core.
  repeated: { runs: runs.filter((r) => r.repeats > 0).length, threshold: MAX_OTHERS, retries },
  versions: versions(),
  date: new Date().toISOString(),
}

const summary = summarize(runs, frameworks, variants)
console.log(markdown(summary, meta))

if (args.json) writeFileSync(args.json, `${JSON.stringify({ meta, summary, runs }, null, 2)}\n`)

const failures = runs.filter((r) => r.error !== undefined)
if (failures.length) {
  console.error(`\n${failures.length} of ${runs.length} slices failed:`)
  for (const r of failures) console.error(`  round ${r.round} ${r.framework} ${r.variant}: ${r.error.split('\n')[0]}`)
  process.exitCode = 1
}
