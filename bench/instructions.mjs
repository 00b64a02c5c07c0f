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
//                               [--json FILE]
//
// Each server runs under `valgrind --tool=callgrind` (needs valgrind; about
// 100x slower than normal) with `--perf-basic-prof`, so the JIT's code can
// be named. A client in this process sends --warmup requests over 8
// keep-alive connections, then --windows windows of --requests requests,
// asking callgrind for a dump (`callgrind_control --dump`) after each. The
// last window counts: the earlier ones still hold optimising compilations.
// Spans go to bench/sink.mjs, outside valgrind, as in throughput.mjs.
//
// Prints, per framework, a table of instructions per request by variant
// (all threads of the server: main thread, GC helpers, compiler threads),
// then for each traced variant the JavaScript functions it adds or grows
// (JIT code mapped to functions through the perf map; a function's inlined
// callees count as its own).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ensureOtel } from './lib/otel-deps.mjs'
import { listeningPort, start, stop, which } from './lib/processes.mjs'
import { FRAMEWORKS, VARIANTS, serverCommand } from './lib/servers.mjs'

const here = dirname(fileURLToPath(import.meta.url))

const { values: args } = parseArgs({
  options: {
    frameworks: { type: 'string', default: 'fastify' },
    variants: { type: 'string', default: 'bare,context,spanline' },
    warmup: { type: 'string', default: '8000' },
    requests: { type: 'string', default: '4000' },
    windows: { type: 'string', default: '2' },
    top: { type: 'string', default: '25' },
    json: { type: 'string' },
  },
})

function usage(message) {
  console.error(`instructions.mjs: ${message}`)
  process.exit(2)
}
function positiveInt(name) {
  const n = Number(args[name])
  if (!Number.isInteger(n) || n < 1) usage(`--${name} must be a positive integer, got ${args[name]}`)
  return n
}
function list(name, known) {
  const items = args[name].split(',').map((s) => s.trim()).filter(Boolean)
  const unknown = items.filter((s) => !known.includes(s))
  if (unknown.length || items.length === 0) usage(`--${name}: unknown ${unknown.join(', ') || '(empty)'}; known: ${known.join(', ')}`)
  return known.filter((k) => items.includes(k))
}

const frameworks = list('frameworks', FRAMEWORKS)
const variants = list('variants', VARIANTS)
const warmup = positiveInt('warmup')
const perWindow = positiveInt('requests')
const windows = positiveInt('windows')
const top = positiveInt('top')
for (const tool of ['valgrind', 'callgrind_control', 'callgrind_annotate']) {
  if (which(tool) === undefined) usage(`needs ${tool} on PATH (valgrind's callgrind; e.g. apt-get install valgrind)`)
}
if (variants.includes('otel')) ensureOtel()

/** `count` GET /users/42 over 8 keep-alive connections, one request at a time on each. */
async function load(port, count) {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 })
  let sent = 0
  const one = () =>
    new Promise((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/users/42', agent }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`GET /users/42 answered ${res.statusCode}`))
        res.resume().on('end', resolve)
      }).on('error', reject).end()
    })
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (sent < count) {
      sent++
      await one()
    }
  }))
  agent.destroy()
}

/** Self instructions by function from one callgrind dump: `[name, Ir][]`, names as callgrind_annotate prints them. */
function annotate(file) {
  const out = execFileSync('callgrind_annotate', ['--threshold=100', '--inclusive=no', file], { maxBuffer: 256 << 20 }).toString()
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
  let total = 0
  let unmapped = 0
  for (const [name, ir] of rows) {
    if (name === 'PROGRAM TOTALS') {
      total = ir / n
      continue
    }
    let key
    const jit = /^\?\?\?:0x([0-9a-f]+)(?:'\d+)? \[\?\?\?\]$/.exec(name)
    if (jit) {
      const js = lookup(map, parseInt(jit[1], 16))
      if (js === undefined) {
        unmapped += ir
        continue
      }
      key = jsName(js)
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
  return { total, fns }
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
    '--tool=callgrind', '--smc-check=all-non-file', `--callgrind-out-file=${join(dir, 'cg.out')}`,
    process.execPath, '--perf-basic-prof', ...nodeArgs,
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
    // Dumps are numbered in order: cg.out.1 is the warm-up, then one per window.
    const files = readdirSync(dir).filter((f) => /^cg\.out\.\d+$/.test(f)).sort((a, b) => Number(a.split('.')[2]) - Number(b.split('.')[2]))
    if (files.length < windows + 1) throw new Error(`callgrind wrote ${files.length} dumps, expected ${windows + 1}`)
    const results = files.slice(1, windows + 1).map((f) => perRequest(join(dir, f), map, perWindow))
    return { windows: results.map((r) => r.total), last: results.at(-1) }
  } finally {
    await stop(server, 30_000)
    rmSync(dir, { recursive: true, force: true })
  }
}

const sink = start(process.execPath, [join(here, 'sink.mjs')], { cwd: here })
const sinkBase = `http://127.0.0.1:${await listeningPort(sink)}`
const report = { node: process.version, warmup, requests: perWindow, windows, frameworks: {} }
const lines = []
try {
  for (const framework of frameworks) {
    const measured = {}
    for (const variant of variants) {
      console.error(`${framework} ${variant}: under callgrind...`)
      measured[variant] = await measure(framework, variant, sinkBase)
      console.error(`  Ir/request by window: ${measured[variant].windows.map((x) => x.toFixed(0)).join(', ')}`)
    }
    report.frameworks[framework] = Object.fromEntries(Object.entries(measured).map(([v, m]) => [v, { windows: m.windows, functions: Object.fromEntries(m.last.fns) }]))
    const base = measured.bare?.last
    lines.push(`### ${framework}`, '', `| variant | instructions / request | added to bare | windows |`, '| --- | ---: | ---: | --- |')
    for (const variant of variants) {
      const m = measured[variant]
      lines.push(`| ${variant} | ${m.last.total.toFixed(0)} | ${base ? (m.last.total - base.total).toFixed(0) : ''} | ${m.windows.map((x) => x.toFixed(0)).join(', ')} |`)
    }
    lines.push('', 'By kind of code (instructions / request, last window):', '', `| variant | ${CATEGORIES.join(' | ')} |`, `| --- |${' ---: |'.repeat(CATEGORIES.length)}`)
    for (const variant of variants) {
      const cats = byCategory(measured[variant].last.fns)
      lines.push(`| ${variant} | ${CATEGORIES.map((c) => cats[c].toFixed(0)).join(' | ')} |`)
    }
    lines.push('')
    for (const variant of variants) {
      if (variant === 'bare' || base === undefined) continue
      const fns = measured[variant].last.fns
      const grown = [...new Set([...fns.keys(), ...base.fns.keys()])]
        .map((k) => [k, (fns.get(k) ?? 0) - (base.fns.get(k) ?? 0), fns.get(k) ?? 0])
        .sort((a, b) => b[1] - a[1]).slice(0, top)
      lines.push(`${variant}: what it adds to bare, by function (instructions / request)`, '', '| added | total | function |', '| ---: | ---: | --- |')
      for (const [k, added, total] of grown) lines.push(`| ${added.toFixed(0)} | ${total.toFixed(0)} | \`${k.replaceAll('|', '\\|')}\` |`)
      lines.push('')
    }
  }
} finally {
  await stop(sink)
}
console.log(`Instructions per request (callgrind), Node ${process.version}, after ${warmup} requests of warm-up, last of ${windows} windows of ${perWindow}\n`)
console.log(lines.join('\n'))
if (args.json) writeFileSync(args.json, JSON.stringify(report, null, 2) + '\n')
