// Start-up cost of the zero-code preload: time from spawning `node` to the
// app's "listening" line, for a small Express app, with and without
// `--import @spanline/auto`, alternating, N runs each; prints the medians.
// A script, not a test: `node bench/startup.mjs [runs]` (default 30).
// For reference, OpenTelemetry's auto-instrumentations-node preload is
// reported at ~660 ms for the same kind of app.
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const runs = Number(process.argv[2] ?? 30)
const env = { ...process.env, OTEL_TRACES_EXPORTER: 'none' }
for (const k of Object.keys(env)) if (k === 'NODE_OPTIONS' || k.startsWith('SPANLINE_')) delete env[k]

const variants = {
  'node app.mjs': ['startup-app.mjs'],
  'node --import @spanline/auto app.mjs': ['--import', '@spanline/auto', 'startup-app.mjs'],
  'node --require @spanline/auto app.mjs': ['--require', '@spanline/auto', 'startup-app.mjs'],
}

function timeToListening(args) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint()
    const child = spawn(process.execPath, args, { cwd: here, env, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    let at
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d
      if (at === undefined && out.includes('listening')) at = Number(process.hrtime.bigint() - start) / 1e6
    })
    child.on('exit', (code) => (code === 0 && at !== undefined ? resolve(at) : reject(new Error(`${args.join(' ')} exited ${code}: ${out}`))))
  })
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

const times = Object.fromEntries(Object.keys(variants).map((k) => [k, []]))
for (const args of Object.values(variants)) await timeToListening(args) // warm the file cache
for (let i = 0; i < runs; i++) {
  for (const [name, args] of Object.entries(variants)) times[name].push(await timeToListening(args))
}

const base = median(times['node app.mjs'])
console.log(`Node ${process.version}, ${runs} runs each, time from spawn to "listening" (median, min-max):`)
for (const [name, xs] of Object.entries(times)) {
  const m = median(xs)
  const extra = name === 'node app.mjs' ? '' : `  (+${(m - base).toFixed(1)} ms)`
  console.log(`  ${name.padEnd(40)} ${m.toFixed(1).padStart(7)} ms  [${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)}]${extra}`)
}
