// What a variant adds to bare, per request, function by function: the self
// time of each function in the servers' CPU profiles, divided by the requests
// each server answered, bare's subtracted.
//
//   node bench/throughput.mjs --frameworks fastify --variants bare,spanline --cpu-prof .cache/prof --json .cache/prof.json
//   node bench/profile-diff.mjs .cache/prof.json .cache/prof [--framework fastify] [--base bare] [--variant spanline] [--top 30]
//
// Why per request: a traced server answers fewer requests in the same time,
// so its profile's totals are not comparable with bare's, while the time per
// request is. This shows what profile-top.mjs cannot: the tracer's own
// functions, and also how much more time per request the framework, Node
// and the kernel's side of each syscall take when the tracer runs beside
// them (its work evicts theirs from the CPU caches, and a slower server
// answers fewer requests per turn of the event loop). The whole life of each
// server is profiled: start-up and the warm-up count too, spread over the
// requests; so does the profiler itself (it slows every variant alike).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { addSelfTimes } from './lib/cpu-profile.mjs'

const { values: args, positionals } = parseArgs({
  options: {
    framework: { type: 'string', default: 'fastify' },
    base: { type: 'string', default: 'bare' },
    variant: { type: 'string', default: 'spanline' },
    top: { type: 'string', default: '30' },
  },
  allowPositionals: true,
})
const [jsonFile, profileDir] = positionals
const top = Number(args.top)
if (jsonFile === undefined || profileDir === undefined || !Number.isInteger(top) || top < 1) {
  console.error('usage: node bench/profile-diff.mjs RUNS.json PROFILE_DIR [--framework F] [--base bare] [--variant spanline] [--top N >= 1]')
  process.exit(2)
}

const { runs } = JSON.parse(readFileSync(jsonFile, 'utf8'))
const profiles = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'))

/** Self µs per request by function over every server of `variant` that has a profile. */
function perRequest(variant) {
  // A server answers several slices (one record each): its profile counts
  // once, against all the requests it answered.
  const servedByPid = new Map()
  for (const run of runs) {
    if (run.framework !== args.framework || run.variant !== variant || run.error !== undefined) continue
    if (run.pid === undefined) throw new Error(`${jsonFile} names no server pids: it was written by an older throughput.mjs; run it again`)
    servedByPid.set(run.pid, (servedByPid.get(run.pid) ?? 0) + run.requestsServed)
  }
  const selfMicros = new Map()
  let busy = 0
  let requests = 0
  let used = 0
  for (const [pid, served] of servedByPid) {
    // Node names a profile CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile.
    const file = profiles.find((f) => f.split('.')[3] === String(pid))
    if (file === undefined) continue
    busy += addSelfTimes(join(profileDir, file), selfMicros).busy
    requests += served
    used++
  }
  if (used === 0) throw new Error(`no profiled ${args.framework} ${variant} run in ${jsonFile} and ${profileDir}`)
  for (const [key, micros] of selfMicros) selfMicros.set(key, micros / requests)
  return { selfMicros, busy: busy / requests, runs: used }
}

const base = perRequest(args.base)
const variant = perRequest(args.variant)
const rows = []
for (const key of new Set([...base.selfMicros.keys(), ...variant.selfMicros.keys()])) {
  const b = base.selfMicros.get(key) ?? 0
  const v = variant.selfMicros.get(key) ?? 0
  rows.push({ key, b, v, added: v - b })
}
rows.sort((x, y) => y.added - x.added)

const fmt = (us) => us.toFixed(3)
const signed = (us) => `${us >= 0 ? '+' : ''}${fmt(us)}`
console.log(`${args.framework}: ${args.variant} (${variant.runs} profile(s)) against ${args.base} (${base.runs}), busy CPU time per request: ` +
  `${fmt(base.busy)} -> ${fmt(variant.busy)} µs (${signed(variant.busy - base.busy)})\n`)
console.log(`| added µs/req | ${args.base} | ${args.variant} | function | file |`)
console.log('| ---: | ---: | ---: | --- | --- |')
// The most used, then the few that lost most (time the variant moved elsewhere, or noise).
const shown = [...rows.slice(0, top), ...rows.slice(Math.max(top, rows.length - 5)).filter((r) => r.added < 0)]
for (const { key, b, v, added } of shown) {
  const [name, where] = key.split('\t')
  console.log(`| ${signed(added)} | ${fmt(b)} | ${fmt(v)} | ${name} | ${where} |`)
}
