// Instructions per request, counted by valgrind's callgrind: what each
// variant of the throughput apps (bench/apps/, the same servers as
// throughput.mjs) executes per request once warm, and which JavaScript
// functions execute it.
//
// Why: requests per second on a shared, throttled VM move by 15-30% from one
// run to the next, more than the tracer costs. An instruction count does not
// depend on the machine's load: the same build measured twice agrees to a
// few percent (what remains is the JIT and the garbage collector deciding
// differently), so a change of a few hundred instructions per request is
// visible, and where they went is named. It is not time: cache misses, the
// kernel (syscalls, the network stack) and the amplification a slower server
// suffers under load are not counted. Use it to find and check work, and
// throughput.mjs for what the user sees.
//
//   node bench/instructions.mjs [--frameworks fastify] [--variants bare,context,spanline]
//                               [--warmup 8000] [--requests 4000] [--windows 2] [--top 25]
//                               [--jobs 1] [--event Ir] [--traceparent] [--out FILE.md] [--json FILE]
//   node bench/instructions.mjs --render FILE.json [--out FILE.md]   (the report of a saved --json run)
//
// --traceparent sends every request with a `traceparent` header of its own
// (a new trace id and parent id each time, sampled), as a service behind
// another traced one receives them: the server span is then a child of a
// remote parent, which takes other paths (the header's parsing, the remote
// parent's ids) than the root spans of requests without one.
//
// --event I1mr counts L1 instruction-cache misses instead of instructions
// (D1mr: L1 data-cache read misses), with callgrind's cache simulation of
// this machine's caches (slower still). Why: a server runs a request's code
// once between much other code, so a tracer's code is fetched afresh from
// the next cache level for every request, and those misses can cost as
// much time as its instructions (Fastify on Node 20: Spanline's own
// JavaScript ran ~7.4k instructions and missed the L1 instruction cache
// ~280 times per request, some 18 KB of code). Work moved off the request's
// path into a batch (as the encoder's runs of spans) shows as fewer misses
// at about the same instruction count.
//
// Each server runs under `valgrind --tool=callgrind` (needs valgrind; about
// 100x slower than normal) with `--perf-basic-prof`, so the JIT's code can
// be named. A client in this process sends --warmup requests over 8
// keep-alive connections, then --windows windows of --requests requests,
// asking callgrind for a dump (`callgrind_control --dump`) after each. The
// last window counts: the earlier ones hold more of the optimising
// compilations (done on the main thread here, see below, and left out).
// Spans go to bench/sink.mjs, outside valgrind, as in throughput.mjs.
// --jobs N runs N servers under callgrind at once (counts do not change,
// only the wall time); --out writes the markdown report to a file as well.
//
// Prints, per framework, a table of instructions per request by variant
// (all threads of the server: main thread, GC helpers, compiler threads),
// then for each traced variant the JavaScript functions it adds or grows
// (JIT code mapped to functions through the perf map; a function's inlined
// callees count as its own).
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureOtel } from './lib/otel-deps.mjs'
import { parseOptions } from './lib/options.mjs'
import { listeningPort, start, stop, which } from './lib/processes.mjs'
import { FRAMEWORKS, VARIANTS, serverCommand } from './lib/servers.mjs'

const here = dirname(fileURLToPath(import.meta.url))

const cli = parseOptions('instructions.mjs', {
    frameworks: { type: 'string', default: 'fastify' },
    variants: { type: 'string', default: 'bare,context,spanline' },
    warmup: { type: 'string', default: '8000' },
    requests: { type: 'string', default: '4000' },
    windows: { type: 'string', default: '2' },
    top: { type: 'string', default: '25' },
    json: { type: 'string' },
    out: { type: 'string' },
    render: { type: 'string' },
    jobs: { type: 'string', default: '1' },
    event: { type: 'string', default: 'Ir' },
    traceparent: { type: 'boolean', default: false },
})
const args = cli.values

const frameworks = cli.list('frameworks', FRAMEWORKS)
const variants = cli.list('variants', VARIANTS)
const warmup = cli.integer('warmup', 1)
const perWindow = cli.integer('requests', 1)
const windows = cli.integer('windows', 1)
const top = cli.integer('top', 1)
const jobs = cli.integer('jobs', 1)
const rendering = args.render !== undefined
/** What --event can count, as the report names it. */
const EVENTS = { Ir: 'instructions', I1mr: 'L1 instruction-cache misses', D1mr: 'L1 data-cache read misses' }
if (!Object.hasOwn(EVENTS, args.event)) cli.usage(`--event must be one of ${Object.keys(EVENTS).join(', ')}, got "${args.event}"`)
const event = args.event
for (const tool of rendering ? [] : ['valgrind', 'callgrind_control', 'callgrind_annotate']) {
  if (which(tool) === undefined) cli.usage(`needs ${tool} on PATH (valgrind's callgrind; e.g. apt-get install valgrind)`)
}
if (!rendering && variants.includes('otel')) ensureOtel()

/** A sampled `traceparent` with a random trace id and parent id (never all zeros: the first digit is 1-f). */
function randomTraceparent() {
  const hex = randomBytes(24).toString('hex')
  return `00-${(1 + (hex.charCodeAt(0) % 15)).toString(16)}${hex.slice(1, 32)}-${(1 + (hex.charCodeAt(32) % 15)).toString(16)}${hex.slice(33)}-01`
}

/** `count` GET /users/42 over 8 keep-alive connections, one request at a time on each (with --traceparent, each its own). */
async function load(port, count) {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 })
  let sent = 0
  const one = () =>
    new Promise((resolve, reject) => {
      const headers = args.traceparent ? { traceparent: randomTraceparent() } : undefined
      const req = request({ host: '127.0.0.1', port, path: '/users/42', agent, headers }, (res) => {
        res.on('error', reject)
        if (res.statusCode !== 200) reject(new Error(`GET /users/42 answered ${res.statusCode}`))
        res.resume().on('end', resolve)
      })
      req.on('error', reject).end()
    })
  // Under valgrind a pause of the server (a full GC) can last longer than its
  // keep-alive timeout, which then closes a connection whose next request is
  // already sent: that GET is sent again (at most twice), not counted twice.
  const oneWithRetries = async () => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await one()
      } catch (err) {
        if (attempt === 2 || !['ECONNRESET', 'EPIPE'].includes(err.code)) throw err
      }
    }
  }
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (sent < count) {
      sent++
      await oneWithRetries()
    }
  }))
  agent.destroy()
}

/** Self counts of --event by function from one callgrind dump: `[name, count][]`, names as callgrind_annotate prints them. */
function annotate(file) {
  const out = execFileSync('callgrind_annotate', ['--threshold=100', '--inclusive=no', `--show=${event}`, `--sort=${event}`, file], { maxBuffer: 256 << 20 }).toString()
  const rows = []
  for (const line of out.split('\n')) {
    const m = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$/.exec(line)
    if (m) rows.push([m[2], Number(m[1].replaceAll(',', ''))])
  }
  return rows
}

/** The perf map Node wrote for `pid` (--perf-basic-prof): sorted [start, end, name]. */
function perfMap(pid) {
  const file = join(tmpdir(), `perf-${pid}.map`)
  const text = readFileSync(file, 'utf8')
  rmSync(file, { force: true })
  return text.trim().split('\n').map((l) => {
    const [a, s, ...name] = l.split(' ')
    const startAddr = parseInt(a, 16)
    return [startAddr, startAddr + parseInt(s, 16), name.join(' ')]
  }).sort((x, y) => x[0] - y[0])
}

function lookup(map, addr) {
  let lo = 0
  let hi = map.length - 1
  let best = -1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (map[mid][0] <= addr) {
      best = mid
      lo = mid + 1
    } else hi = mid - 1
  }
  // Code objects are not nested, but a re-compiled function's old code may overlap in the map: look back a little.
  for (let i = best; i >= 0 && i > best - 64; i--) if (addr < map[i][1]) return map[i][2]
  return undefined
}

/** Strips V8's tier marks and the repository's location from a perf map name. */
function jsName(name) {
  return name.replace(/^(JS|LazyCompile|Function):/, '').replace(/^[*~+^']+/, '').replace(/file:\/\//, '')
    .replace(dirname(here) + '/', '').replace(/node_modules\/\.pnpm\/[^/]+\/node_modules\//, '').replace(/:\d+:\d+$/, '')
}

/**
 * One dump as Ir per request: the total, and by function. JIT code (callgrind
 * names it by address) is named through the perf map; builtins and C++
 * keep callgrind's name; threads other than main add up under their entry.
 */
function perRequest(file, map, n) {
  const rows = annotate(file)
  const fns = new Map()
  // Spanline's own JavaScript by the tier of the code that ran it (see TIERS).
  const tiers = Object.fromEntries(Object.values(TIERS).map((t) => [t, 0]))
  let total = 0
  let unmapped = 0
  for (const [name, ir] of rows) {
    // The total is the sum of what is listed below (callgrind's own total
    // also counts the frames skipped here), so tables and totals agree.
    if (name === 'PROGRAM TOTALS') continue
    let key
    const jit = /^\?\?\?:0x([0-9a-f]+)(?:'\d+)? \[\?\?\?\]$/.exec(name)
    if (jit) {
      const js = lookup(map, parseInt(jit[1], 16))
      if (js === undefined) {
        unmapped += ir
        continue
      }
      key = jsName(js)
      if (category(key) === 'Spanline JS') tiers[tierOf(js)] += ir / n
    } else {
      // Frames every sample passes through (main, the event loop) are not self cost of anything useful.
      if (/(below main)|libc_start|__libc_start_main|:main |node::Start|NodeMainInstance|SpinEventLoop|0x000000000001ab70|pthread_create.c:start_thread|clone\.S:clone/.test(name)) continue
      key = name.replace(/^\?\?\?:/, '').replace(/ \[[^\]]*\]$/, '').replaceAll('(anonymous namespace)', '{anon}').replace(/\(.*$/, '()').replace(/'\d+$/, '')
      // Template arguments (compiler passes spell out dozens) say nothing here.
      while (/<[^<>]*>/.test(key)) key = key.replace(/<[^<>]*>/g, '')
    }
    fns.set(key, (fns.get(key) ?? 0) + ir / n)
  }
  if (unmapped > 0) fns.set('(JIT code not in the perf map)', unmapped / n)
  for (const ir of fns.values()) total += ir
  return { total, fns, tiers }
}

/**
 * V8's tier marks in perf map names (`JS:*'name`). Under valgrind V8 may
 * not have moved a function to TurboFan by the measured window although it
 * does within seconds at full speed (seen with Spanline's encoder, which a
 * server runs in bursts): that function then counts at a lower tier's cost.
 * The report says how much of Spanline's own code that was.
 */
const TIERS = { '*': 'TurboFan', '+': 'Maglev', '^': 'Sparkplug', '~': 'interpreter' }
function tierOf(perfName) {
  return TIERS[/^(?:JS|LazyCompile|Function):([*+^~]?)/.exec(perfName)?.[1]] ?? 'interpreter'
}

/**
 * Where a function's instructions belong: Spanline's own JavaScript, other
 * JavaScript (Node's, the framework's, OpenTelemetry's), V8's builtins (ICs,
 * Map, string compares...), the garbage collector, the optimising compilers
 * (still at work after the warm-up under valgrind's slowness: read it as
 * noise), and other native code (libuv, llhttp, the C library, V8's runtime).
 */
const CATEGORIES = ['Spanline JS', 'other JS', 'builtins', 'GC', 'compiler', 'other native']
function category(name) {
  if (/(?:^|\s)packages\/[^/]+\/(?:dist|src)\/\S+$/.test(name)) return 'Spanline JS'
  if (/^Builtins_/.test(name)) return 'builtins'
  if (/Scaveng|Heap::|GCTracer|Marking|MarkCompact|Sweep|IterateObjectCache|BodyDescriptor|SlotCallbackResult|Evacuat|MemoryAllocator|MinorMS|ConcurrentMark/.test(name)) return 'GC'
  if (/compiler::|maglev::|turboshaft|Turbofan|OptimizingCompile|Pipeline|BytecodeGraph|Zone::/.test(name)) return 'compiler'
  if (/(?:^|\s)(?:node:\S+|\S+\.[cm]?js)$/.test(name) || /^RegExp/.test(name)) return 'other JS'
  return 'other native'
}

function byCategory(fns) {
  const out = Object.fromEntries(CATEGORIES.map((c) => [c, 0]))
  for (const [name, ir] of fns) out[category(name)] += ir
  return out
}

/** Runs one framework × variant under callgrind; Ir per request of each window. */
async function measure(framework, variant, sinkBase) {
  const dir = mkdtempSync(join(tmpdir(), 'spanline-callgrind-'))
  const { args: nodeArgs, env } = serverCommand(framework, variant, sinkBase)
  const server = start('valgrind', [
    // One dump per thread: the main thread serves the requests; the others
    // mark and sweep concurrently (and compile what the flags below leave to
    // background threads).
    '--tool=callgrind', '--smc-check=all-non-file', '--separate-threads=yes', `--callgrind-out-file=${join(dir, 'cg.out')}`,
    ...(event === 'Ir' ? [] : ['--cache-sim=yes']),
    // --perf-basic-prof also starts V8's log: into the temporary directory, not the working one.
    process.execPath, '--perf-basic-prof', `--logfile=${join(dir, 'v8.log')}`, '--no-logfile-per-isolate',
    // Optimising compilation on the main thread, as soon as a function is hot.
    // Concurrently, under valgrind (which runs one thread at a time) the
    // compiler threads finished some functions during the warm-up and others
    // not even by the last window: the same build counted its own functions
    // at different tiers from run to run (Maglev's keyed stores through IC
    // builtins in one run, TurboFan's inline stores in the next). At full
    // speed those compilations take milliseconds; what is measured here is
    // the code they produce.
    '--no-concurrent-recompilation', '--no-concurrent-osr', '--no-concurrent-sparkplug', ...nodeArgs,
  ], { cwd: here, env })
  try {
    const port = await listeningPort(server, 300_000)
    const dump = (label) => execFileSync('callgrind_control', ['--dump=' + label, String(server.pid)], { stdio: 'ignore' })
    await load(port, warmup)
    dump('warmup')
    for (let w = 1; w <= windows; w++) {
      await load(port, perWindow)
      dump(`window${w}`)
    }
    const map = perfMap(server.pid)
    // cg.out.<dump>-<thread>: dump 1 is the warm-up, then one per window; thread 1 is the main thread.
    const parts = new Map()
    for (const f of readdirSync(dir)) {
      const m = /^cg\.out\.(\d+)-(\d+)$/.exec(f)
      if (m === null) continue
      const part = Number(m[1])
      if (!parts.has(part)) parts.set(part, [])
      parts.get(part).push({ file: join(dir, f), main: Number(m[2]) === 1 })
    }
    const results = []
    for (let part = 2; part <= windows + 1; part++) {
      const files = parts.get(part)
      if (files === undefined || !files.some((x) => x.main)) throw new Error(`callgrind wrote no main-thread dump for window ${part - 1}`)
      const main = perRequest(files.find((x) => x.main).file, map, perWindow)
      const others = files.filter((x) => !x.main).reduce((sum, x) => sum + perRequest(x.file, map, perWindow).total, 0)
      results.push({ main, others })
    }
    return { windows: results.map((r) => r.main.total), otherThreads: results.at(-1).others, last: results.at(-1).main }
  } finally {
    await stop(server, 30_000)
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Runs every framework × variant, --jobs at a time; the report render() reads. */
async function measureAll() {
  const sink = start(process.execPath, [join(here, 'sink.mjs')], { cwd: here })
  const sinkBase = `http://127.0.0.1:${await listeningPort(sink)}`
  const runs = frameworks.flatMap((framework) => variants.map((variant) => ({ framework, variant })))
  const report = { node: process.version, date: new Date().toISOString().slice(0, 10), event, traceparent: args.traceparent, warmup, requests: perWindow, windows, frameworks: {} }
  try {
    // Instruction counts do not depend on the machine's load: more jobs change only the wall time.
    let next = 0
    await Promise.all(Array.from({ length: Math.min(jobs, runs.length) }, async () => {
      while (next < runs.length) {
        const { framework, variant } = runs[next++]
        console.error(`${framework} ${variant}: under callgrind...`)
        const m = await measure(framework, variant, sinkBase)
        console.error(`${framework} ${variant}: main thread's ${EVENTS[event]}/request by window ${m.windows.map((x) => x.toFixed(0)).join(', ')}, other threads ${m.otherThreads.toFixed(0)}`)
        report.frameworks[framework] ??= {}
        report.frameworks[framework][variant] = { windows: m.windows, otherThreads: m.otherThreads, functions: Object.fromEntries(m.last.fns), spanlineTiers: m.last.tiers }
      }
    }))
  } finally {
    await stop(sink)
  }
  return report
}

const fmt = (n) => Math.round(n).toLocaleString('en-US')

/**
 * The markdown report. Figures are the main thread's (it serves the
 * requests), without the optimising compiler's share of it: under valgrind
 * V8 still optimises functions that become hot late, thousands of requests
 * after start (with concurrent compilation and all threads counted, a bare
 * server's compiler share moved from 1k to 135k instructions per request
 * between two runs), work a server at full speed has long finished. The
 * other threads (GC helpers) are shown apart.
 */
function render(report) {
  // In the usual order, not the order --jobs finished them in.
  const fws = FRAMEWORKS.filter((f) => report.frameworks[f] !== undefined)
  const vs = VARIANTS.filter((v) => fws.some((f) => report.frameworks[f][v] !== undefined))
  const steady = (m) => Object.entries(m.functions).reduce((sum, [name, ir]) => sum + (category(name) === 'compiler' ? 0 : ir), 0)
  const get = (f, v) => report.frameworks[f][v]
  // (Reports saved before --event existed counted instructions.)
  const what = EVENTS[report.event ?? 'Ir']
  const flag = (report.event ?? 'Ir') === 'Ir' ? '' : ` --event ${report.event}`
  const headerFlag = report.traceparent === true ? ' --traceparent' : ''
  const lines = [
    `# ${what[0].toUpperCase()}${what.slice(1)} per request (callgrind)`,
    '',
    `Node ${report.node}, ${report.date}: \`node bench/instructions.mjs --frameworks ${fws.join(',')} --variants ${vs.join(',')}${flag}${headerFlag}\`` +
      (headerFlag === '' ? '' : ' Every request carries a traceparent of its own.') +
      ` (${report.warmup} requests of warm-up, then ${report.windows} windows of ${report.requests}; the last window counts).` +
      ` The main thread's ${what} (it serves the requests), without the optimising compiler's share (still at work under` +
      ' valgrind long after it would have finished at full speed).' +
      (flag === '' ? ' Not time: cache misses and the kernel are not counted.' : ' Simulated caches of this machine\'s sizes; not time, and the kernel is not counted.') +
      ' See bench/README.md.',
    '',
  ]
  if (vs.includes('bare') && vs.length > 1) {
    lines.push('## Added to bare', '', `| variant | ${fws.join(' | ')} |`, `| --- |${' ---: |'.repeat(fws.length)}`)
    for (const v of vs) {
      lines.push(`| ${v} | ${fws.map((f) => v === 'bare' ? `${fmt(steady(get(f, 'bare')))} (bare)` : fmt(steady(get(f, v)) - steady(get(f, 'bare')))).join(' | ')} |`)
    }
    if (vs.includes('otel')) {
      for (const v of ['spanline', 'spanline-auto'].filter((x) => vs.includes(x))) {
        const ratio = (f) => ((steady(get(f, 'otel')) - steady(get(f, 'bare'))) / (steady(get(f, v)) - steady(get(f, 'bare')))).toFixed(1)
        lines.push(`| OpenTelemetry's added / ${v}'s | ${fws.map((f) => `${ratio(f)}x`).join(' | ')} |`)
      }
    }
    lines.push('')
  }
  for (const f of fws) {
    const base = get(f, 'bare')
    lines.push(`## ${f}`, '', `| variant | ${what} / request | added to bare | main thread's compiling (left out) | other threads (left out) |`, '| --- | ---: | ---: | ---: | ---: |')
    for (const v of vs) {
      const m = get(f, v)
      const all = Object.values(m.functions).reduce((a, b) => a + b, 0)
      lines.push(`| ${v} | ${fmt(steady(m))} | ${base ? fmt(steady(m) - steady(base)) : ''} | ${fmt(all - steady(m))} | ${fmt(m.otherThreads ?? 0)} |`)
    }
    lines.push('', 'By kind of code:', '', `| variant | ${CATEGORIES.join(' | ')} |`, `| --- |${' ---: |'.repeat(CATEGORIES.length)}`)
    for (const v of vs) {
      const cats = byCategory(Object.entries(get(f, v).functions))
      lines.push(`| ${v} | ${CATEGORIES.map((c) => fmt(cats[c])).join(' | ')} |`)
    }
    lines.push('')
    // (Reports saved before the tiers were recorded have none.)
    const tiered = vs.filter((v) => get(f, v).spanlineTiers !== undefined && Object.values(get(f, v).spanlineTiers).some((x) => x > 0))
    if (tiered.length > 0) {
      const tierNames = Object.values(TIERS)
      lines.push('Spanline JS by the tier of the code that ran it (not yet in TurboFan under valgrind is slower than at full speed):', '',
        `| variant | ${tierNames.join(' | ')} |`, `| --- |${' ---: |'.repeat(tierNames.length)}`)
      for (const v of tiered) lines.push(`| ${v} | ${tierNames.map((t) => fmt(get(f, v).spanlineTiers[t])).join(' | ')} |`)
      lines.push('')
    }
    for (const v of vs) {
      if (v === 'bare' || base === undefined) continue
      const fns = get(f, v).functions
      const grown = [...new Set([...Object.keys(fns), ...Object.keys(base.functions)])]
        .filter((k) => category(k) !== 'compiler')
        .map((k) => [k, (fns[k] ?? 0) - (base.functions[k] ?? 0), fns[k] ?? 0])
        .sort((a, b) => b[1] - a[1]).slice(0, top)
      lines.push(`### ${f} ${v}: what it adds to bare, by function`, '', '| added | total | function |', '| ---: | ---: | --- |')
      for (const [k, added, total] of grown) lines.push(`| ${fmt(added)} | ${fmt(total)} | \`${k.replaceAll('|', '\\|')}\` |`)
      lines.push('')
    }
  }
  return lines.join('\n')
}

const report = rendering ? JSON.parse(readFileSync(args.render, 'utf8')) : await measureAll()
const markdownText = render(report)
console.log(markdownText)
if (args.out) writeFileSync(args.out, markdownText)
if (args.json && !rendering) writeFileSync(args.json, JSON.stringify(report, null, 2) + '\n')
