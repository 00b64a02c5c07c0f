// The functions with the most self time in V8 CPU profiles (`node --cpu-prof`,
// or `bench/throughput.mjs --cpu-prof DIR`), summed over all the files given:
//
//   node bench/profile-top.mjs .cache/prof/*.cpuprofile [--top 15] [--by-file]
//
// Self time is the time a sample was taken in the function itself (not in
// what it called): where the CPU actually went. Percentages are of the busy
// time: `(idle)` (the event loop waiting, e.g. between the load and the
// flush) is left out of them. Functions are grouped by name, file and line;
// paths are shown from their node_modules package or relative to the
// working directory, to keep the lines short. With --by-file, the self time
// is summed per file instead (which of Spanline's modules costs what).
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const { values: args, positionals: files } = parseArgs({
  options: { top: { type: 'string', default: '15' }, 'by-file': { type: 'boolean', default: false } },
  allowPositionals: true,
})
if (files.length === 0) {
  console.error('usage: node bench/profile-top.mjs FILE.cpuprofile... [--top N]')
  process.exit(2)
}

function shortPath(url) {
  if (url === '') return ''
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  const inModules = path.lastIndexOf('node_modules/')
  if (inModules >= 0) return path.slice(inModules + 'node_modules/'.length).replace(/^\.pnpm\/[^/]+\/node_modules\//, '')
  return path.startsWith('/') ? relative(process.cwd(), path) : path
}

const selfMicros = new Map()
let busyMicros = 0
let idleMicros = 0
for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  // samples[i] was taken timeDeltas[i] after the previous one; that interval
  // is charged to the function on top of the stack.
  profile.samples.forEach((id, i) => {
    const { functionName, url, lineNumber } = byId.get(id).callFrame
    const key = args['by-file']
      ? `\t${shortPath(url) || functionName}`
      : `${functionName || '(anonymous)'}\t${shortPath(url)}${url ? `:${lineNumber + 1}` : ''}`
    const micros = profile.timeDeltas[i] ?? 0
    if (functionName === '(idle)') {
      idleMicros += micros
      return
    }
    selfMicros.set(key, (selfMicros.get(key) ?? 0) + micros)
    busyMicros += micros
  })
}

const top = [...selfMicros].sort((a, b) => b[1] - a[1]).slice(0, Number(args.top))
console.log(`${files.length} profile(s): ${(busyMicros / 1e6).toFixed(1)} s busy, ${(idleMicros / 1e6).toFixed(1)} s idle\n`)
console.log(args['by-file'] ? '| self % | self ms | file |' : '| self % | self ms | function | file |')
console.log(args['by-file'] ? '| ---: | ---: | --- |' : '| ---: | ---: | --- | --- |')
for (const [key, micros] of top) {
  const [name, where] = key.split('\t')
  const columns = args['by-file'] ? [where] : [name, where]
  console.log(`| ${((100 * micros) / busyMicros).toFixed(1)} | ${(micros / 1e3).toFixed(0)} | ${columns.join(' | ')} |`)
}
