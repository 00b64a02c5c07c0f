// Self time by function in a V8 CPU profile (`node --cpu-prof`), shared by
// profile-top.mjs and profile-diff.mjs.
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'

/** A script's path from its node_modules package, or relative to the working directory, to keep lines short. */
export function shortPath(url) {
  if (url === '') return ''
  const path = url.startsWith('file://') ? fileURLToPath(url) : url
  const inModules = path.lastIndexOf('node_modules/')
  if (inModules >= 0) return path.slice(inModules + 'node_modules/'.length).replace(/^\.pnpm\/[^/]+\/node_modules\//, '')
  return path.startsWith('/') ? relative(process.cwd(), path) : path
}

/**
 * Adds one profile's self time, in microseconds, to `selfMicros` (a Map from
 * `name\twhere`, or `\tfile` with byFile) and returns { busy, idle }.
 * Self time is the time a sample was taken in the function itself (not in
 * what it called): samples[i] was taken timeDeltas[i] after the previous
 * one, and that interval is charged to the function on top of the stack.
 * `(idle)` (the event loop waiting) is counted apart, not as a function.
 */
export function addSelfTimes(file, selfMicros, byFile = false) {
  const profile = JSON.parse(readFileSync(file, 'utf8'))
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  let busy = 0
  let idle = 0
  profile.samples.forEach((id, i) => {
    const { functionName, url, lineNumber } = byId.get(id).callFrame
    const micros = profile.timeDeltas[i] ?? 0
    if (functionName === '(idle)') {
      idle += micros
      return
    }
    const key = byFile
      ? `\t${shortPath(url) || functionName}`
      : `${functionName || '(anonymous)'}\t${shortPath(url)}${url ? `:${lineNumber + 1}` : ''}`
    selfMicros.set(key, (selfMicros.get(key) ?? 0) + micros)
    busy += micros
  })
  return { busy, idle }
}
