// Child processes of the throughput benchmark: every one is tracked and
// killed when the benchmark exits, however it exits (end, error, Ctrl-C),
// so no server, sink or load generator outlives it.
import { spawn } from 'node:child_process'
import { accessSync, constants, readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { delimiter, join } from 'node:path'

const children = new Set()

function killAll() {
  for (const child of children) child.kill('SIGKILL')
  children.clear()
}
process.on('exit', killAll)
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killAll()
    process.exit(signal === 'SIGINT' ? 130 : 143)
  })
}

/** The full path of `name` on PATH, or undefined. */
export function which(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const file = join(dir, name)
    try {
      accessSync(file, constants.X_OK)
      return file
    } catch {}
  }
  return undefined
}

// The server gets core 0 to itself; load generator and sink share core 1.
// Without taskset or with a single core, nothing is pinned.
const taskset = availableParallelism() >= 2 ? which('taskset') : undefined
export const pinning = taskset !== undefined

/** `command args` prefixed with `taskset -c <core>` when pinning is possible. */
export function pinned(core, command, args) {
  return taskset ? [taskset, ['-c', String(core), command, ...args]] : [command, args]
}

/**
 * Spawns a tracked process. Output is kept (the last 8 kB of each stream)
 * for error messages; `exited` resolves with its exit code or signal.
 */
export function start(command, args, options = {}) {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  const proc = { child, pid: child.pid, stdout: '', stderr: '', exitCode: undefined }
  const keep = (stream, key) => {
    stream.setEncoding('utf8').on('data', (d) => {
      proc[key] = (proc[key] + d).slice(-8192)
    })
  }
  keep(child.stdout, 'stdout')
  keep(child.stderr, 'stderr')
  proc.exited = new Promise((resolve) => {
    child.on('error', (err) => {
      proc.stderr += `\n${err.message}`
      proc.exitCode = 'spawn error'
      children.delete(child)
      resolve(proc.exitCode)
    })
    child.on('exit', (code, signal) => {
      proc.exitCode = signal ?? code
      children.delete(child)
      resolve(proc.exitCode)
    })
  })
  return proc
}

/** Stops a tracked process (SIGTERM, then SIGKILL after `graceMs`) and waits for it. */
export async function stop(proc, graceMs = 3000) {
  if (proc.exitCode !== undefined) return
  proc.child.kill('SIGTERM')
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs)
  await proc.exited
  clearTimeout(timer)
}

/**
 * Waits for the "listening <port>" line of a bench server or the sink.
 * Rejects, with the process's stderr, when it exits first or takes longer
 * than `timeoutMs`.
 */
export function listeningPort(proc, timeoutMs = 20_000) {
  return new Promise((resolve, reject) => {
    const fail = (why) => {
      cleanup()
      const stderr = proc.stderr.trim()
      reject(new Error(`${why}${stderr ? `\n${stderr.split('\n').slice(-15).join('\n')}` : ''}`))
    }
    const onData = () => {
      const match = /^listening (\d+)$/m.exec(proc.stdout)
      if (match) {
        cleanup()
        resolve(Number(match[1]))
      }
    }
    const timer = setTimeout(() => fail(`not listening after ${timeoutMs} ms`), timeoutMs)
    const cleanup = () => {
      clearTimeout(timer)
      proc.child.stdout.off('data', onData)
    }
    proc.child.stdout.on('data', onData)
    proc.exited.then((code) => fail(`exited (${code}) before listening`))
    onData()
  })
}

/** Peak resident set size of a live process in kB (VmHWM), or undefined off Linux. */
export function peakRssKb(pid) {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match ? Number(match[1]) : undefined
  } catch {
    return undefined
  }
}

