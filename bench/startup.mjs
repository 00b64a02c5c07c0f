// Start-up cost of the zero-code preloads, and what they add to node_modules.
//
//   node bench/startup.mjs [runs] [--json FILE] [--no-footprint]     (default 20 runs)
//
// Time: from spawning `node` (process.execPath: run it with Node 24 to measure
// Node 24) to the app's "listening" line, for a small Express app
// (startup-app.mjs, and its CommonJS twin startup-app.cjs), plain and under
// each preload, every variant once per round (the order rotating), after one
// unmeasured warm-up run each. "added" is the median over rounds of the
// variant's time minus its plain app's time in the same round, so a machine
// that drifts affects both sides of each difference alike.
//
// Each preload runs the way its documentation shows: Spanline's with
// `--import` and `--require` (ES module and CommonJS app), OpenTelemetry's
// auto-instrumentations-node with `--require` and a CommonJS app (its README
// documents `node --require @opentelemetry/auto-instrumentations-node/register
// app.js`). Both are told to export nothing (OTEL_TRACES_EXPORTER,
// OTEL_METRICS_EXPORTER, OTEL_LOGS_EXPORTER=none); OpenTelemetry's resource
// detectors are limited to the local ones (OTEL_NODE_RESOURCE_DETECTORS), so
// that no run probes a cloud metadata endpoint: its detector packages still
// load as by default, only their network probes are left out. OpenTelemetry
// JS comes from bench/otel (pinned; installed on first use).
//
// Footprint: what `npm install` adds to an empty project, counted in its
// node_modules (packages, and disk usage as `du` counts it). For Spanline, the
// workspace packages behind @spanline/auto are packed with pnpm (as they
// would be published: workspace: ranges replaced) and the tarballs installed
// with npm; for OpenTelemetry, the auto-instrumentations-node version pinned
// in bench/otel, from the registry. Both with --ignore-scripts.
import { execFileSync, spawn } from 'node:child_process'
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ensureOtel } from './lib/otel-deps.mjs'
import { median } from './lib/stats.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..')
const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: { json: { type: 'string' }, 'no-footprint': { type: 'boolean', default: false } },
})
const runs = Number(positionals[0] ?? 20)
if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a positive integer, got ${positionals[0]}`)

const INSTALL = ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--prefer-offline', '--loglevel=error']
const OTEL_REGISTER = '@opentelemetry/auto-instrumentations-node/register'
const otelRegister = createRequire(ensureOtel()).resolve(OTEL_REGISTER)

const env = { ...process.env }
for (const k of Object.keys(env)) if (k === 'NODE_OPTIONS' || k.startsWith('SPANLINE_') || k.startsWith('OTEL_')) delete env[k]
Object.assign(env, {
  OTEL_TRACES_EXPORTER: 'none',
  OTEL_METRICS_EXPORTER: 'none',
  OTEL_LOGS_EXPORTER: 'none',
  OTEL_NODE_RESOURCE_DETECTORS: 'env,host,os,process,serviceinstance,container',
})

/** name: the command as a user types it; args: what is spawned (OpenTelemetry's register by its resolved path); plain: the baseline. */
const variants = [
  { name: 'node startup-app.mjs', args: ['startup-app.mjs'] },
  { name: 'node --import @spanline/auto startup-app.mjs', args: ['--import', '@spanline/auto', 'startup-app.mjs'], plain: 'node startup-app.mjs' },
  { name: 'node --require @spanline/auto startup-app.mjs', args: ['--require', '@spanline/auto', 'startup-app.mjs'], plain: 'node startup-app.mjs' },
  { name: 'node startup-app.cjs', args: ['startup-app.cjs'] },
  { name: 'node --require @spanline/auto startup-app.cjs', args: ['--require', '@spanline/auto', 'startup-app.cjs'], plain: 'node startup-app.cjs' },
  { name: `node --require ${OTEL_REGISTER} startup-app.cjs`, args: ['--require', otelRegister, 'startup-app.cjs'], plain: 'node startup-app.cjs' },
]

function timeToListening(args) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint()
    const child = spawn(process.execPath, args, { cwd: here, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    let at
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d
      if (at === undefined && out.includes('listening')) at = Number(process.hrtime.bigint() - start) / 1e6
    })
    child.stderr.setEncoding('utf8').on('data', (d) => { err += d })
    child.on('error', reject)
    child.on('exit', (code) => (code === 0 && at !== undefined ? resolve(at) : reject(new Error(`node ${args.join(' ')} exited ${code}\n${out}${err}`))))
  })
}

const times = new Map(variants.map((v) => [v.name, []]))
for (const v of variants) await timeToListening(v.args) // warm the file cache
for (let round = 0; round < runs; round++) {
  for (let i = 0; i < variants.length; i++) {
    const v = variants[(i + round) % variants.length]
    times.get(v.name)[round] = await timeToListening(v.args)
  }
}

const medianMs = {}
const addedMs = {}
for (const v of variants) {
  medianMs[v.name] = median(times.get(v.name))
  if (v.plain !== undefined) addedMs[v.name] = median(times.get(v.name).map((t, round) => t - times.get(v.plain)[round]))
}

const signed = (ms) => `${ms >= 0 ? '+' : '−'}${Math.abs(ms).toFixed(1)}`

let footprint
let footprintError
if (!opts['no-footprint']) {
  try {
    footprint = measureFootprints()
  } catch (err) {
    footprintError = err.message
    process.stderr.write(`startup: footprint not measured: ${err.message}\n`)
  }
}

const lines = [
  `Node ${process.version}, ${runs} rounds: spawn to "listening", median; added: median of the per-round difference to the plain app.`,
  '',
  '| command | median ms | added ms |',
  '| --- | ---: | ---: |',
  ...variants.map((v) => `| \`${v.name}\` | ${medianMs[v.name].toFixed(0)} | ${v.plain === undefined ? '' : signed(addedMs[v.name])} |`),
]
if (footprint !== undefined) {
  lines.push('', '| `npm install` into an empty project | packages | MB on disk |', '| --- | ---: | ---: |')
  for (const [name, f] of Object.entries(footprint)) lines.push(`| \`${f.spec}\` | ${f.packages} | ${f.mb.toFixed(1)} |`)
} else if (footprintError !== undefined) {
  lines.push('', `Install footprint not measured: ${footprintError.split('\n')[0]}`)
}
console.log(lines.join('\n'))

if (opts.json !== undefined) {
  writeFileSync(opts.json, JSON.stringify({
    node: process.version,
    runs,
    medianMs,
    addedMs,
    baseline: Object.fromEntries(variants.filter((v) => v.plain !== undefined).map((v) => [v.name, v.plain])),
    footprint: footprint ?? null,
    ...(footprintError !== undefined && { footprintError }),
  }, null, 2) + '\n')
}
if (footprintError !== undefined) process.exitCode = 1

// ---- install footprint ------------------------------------------------------

function measureFootprints() {
  const dir = mkdtempSync(join(tmpdir(), 'spanline-footprint-'))
  try {
    return {
      '@spanline/auto': spanlineFootprint(join(dir, 'spanline')),
      '@opentelemetry/auto-instrumentations-node': otelFootprint(join(dir, 'otel')),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function npm(args, cwd) {
  try {
    execFileSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })
  } catch (err) {
    throw new Error(`npm ${args.join(' ')} failed in ${cwd}: ${err.stderr || err.message}`)
  }
}

function emptyProject(dir) {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'footprint', version: '1.0.0', private: true }))
}

function spanlineFootprint(dir) {
  const pkgOf = (name) => JSON.parse(readFileSync(join(root, 'packages', name.slice('@spanline/'.length), 'package.json'), 'utf8'))
  // @spanline/auto and every workspace package it depends on (dependencies and peers).
  const closure = new Set()
  const visit = (name) => {
    if (closure.has(name)) return
    closure.add(name)
    const pkg = pkgOf(name)
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.peerDependencies })) if (dep.startsWith('@spanline/')) visit(dep)
  }
  visit('@spanline/auto')
  const tarballs = join(dir, 'tarballs')
  mkdirSync(tarballs, { recursive: true })
  const pnpm = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).packageManager
  for (const name of closure) {
    npm(['exec', '--yes', `--package=${pnpm}`, '--', 'pnpm', 'pack', '--pack-destination', tarballs], join(root, 'packages', name.slice('@spanline/'.length)))
  }
  const project = join(dir, 'project')
  emptyProject(project)
  npm([...INSTALL, ...readdirSync(tarballs).map((f) => join(tarballs, f))], project)
  // Every @spanline package must be one of the tarballs, never a registry package of that name.
  const lock = JSON.parse(readFileSync(join(project, 'node_modules', '.package-lock.json'), 'utf8'))
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path.includes('@spanline/') && !String(entry.resolved).startsWith('file:')) throw new Error(`${path} came from ${entry.resolved}, not from the packed workspace`)
  }
  return { spec: '@spanline/auto', ...count(join(project, 'node_modules')) }
}

function otelFootprint(dir) {
  const version = JSON.parse(readFileSync(join(here, 'otel', 'package.json'), 'utf8')).dependencies['@opentelemetry/auto-instrumentations-node']
  const spec = `@opentelemetry/auto-instrumentations-node@${version}`
  emptyProject(dir)
  npm([...INSTALL, spec], dir)
  return { spec, ...count(join(dir, 'node_modules')) }
}

/** Packages (folders with a package.json at node_modules/<name> or node_modules/@scope/<name>, nested too) and disk usage in MiB. */
function count(nodeModules) {
  let packages = 0
  let bytes = 0
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      bytes += lstatSync(path).blocks * 512
      if (entry.isDirectory()) walk(path)
    }
  }
  const packagesIn = (modules) => {
    for (const entry of readdirSync(modules, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue
      const path = join(modules, entry.name)
      if (entry.name.startsWith('@')) {
        for (const scoped of readdirSync(path, { withFileTypes: true })) if (scoped.isDirectory()) onePackage(join(path, scoped.name))
      } else onePackage(path)
    }
  }
  const onePackage = (path) => {
    try {
      lstatSync(join(path, 'package.json'))
      packages++
    } catch {
      return
    }
    try {
      packagesIn(join(path, 'node_modules'))
    } catch {
      // no nested node_modules
    }
  }
  packagesIn(nodeModules)
  bytes += lstatSync(nodeModules).blocks * 512
  walk(nodeModules)
  return { packages, mb: bytes / 2 ** 20 }
}
