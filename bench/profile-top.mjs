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
import { parseArgs } from 'node:util'
import { addSelfTimes } from './lib/cpu-profile.mjs'

const { values: args, positionals: files } = parseArgs({
  options: { top: { type: 'string', default: '15' }, 'by-file': { type: 'boolean', default: false } },
  allowPositionals: true,
})
if (files.length === 0) {
  console.error('usage: node bench/profile-top.mjs FILE.cpuprofile... [--top N]')
  process.exit(2)
}

const selfMicros = new Map()
let busyMicros = 0
let idleMicros = 0
for (const file of files) {
  const { busy, idle } = addSelfTimes(file, selfMicros, args['by-file'])
  busyMicros += busy
  idleMicros += idle
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
