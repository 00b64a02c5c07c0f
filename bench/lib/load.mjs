// The load generator of the throughput benchmark: wrk when it is on PATH
// (C, a fraction of the CPU a Node client needs for the same rate, so the
// client saturates the server rather than itself), else autocannon from
// bench/otel/node_modules. Both run as separate processes, pinned with the
// sink, over keep-alive connections. Results are normalised to
// { requests, seconds, rps, p50Ms, p99Ms, errors }.
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureOtel } from './otel-deps.mjs'
import { pinned, start, which } from './processes.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const wrk = which('wrk')
export const loadGenerator = wrk ? 'wrk' : 'autocannon'

/** The one traceparent autocannon sends with --traceparent (it cannot vary a header per request; wrk can: see traceparent.lua). */
export const FIXED_TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'

/**
 * Sends GET `url` over `connections` keep-alive connections for `seconds`
 * (whole seconds: wrk's unit) from `core`; with `traceparent`, each request
 * with a traceparent header (wrk: 4,096 different ones in turn).
 */
export async function runLoad({ url, seconds, connections, core, traceparent = false }) {
  const header = traceparent ? (wrk ? ['-s', join(here, 'traceparent.lua')] : ['-H', `traceparent=${FIXED_TRACEPARENT}`]) : []
  const [command, args] = wrk
    ? pinned(core, wrk, ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...header, url])
    : pinned(core, process.execPath, [autocannonBin(), '-c', String(connections), '-d', String(seconds), '-j', '-n', ...header, url])
  const proc = start(command, args)
  const code = await proc.exited
  if (code !== 0) throw new Error(`${loadGenerator} exited (${code}): ${proc.stderr.trim() || proc.stdout.trim()}`)
  return wrk ? parseWrk(proc.stdout) : parseAutocannon(proc.stdout)
}

function autocannonBin() {
  const otelRequire = createRequire(ensureOtel())
  return join(dirname(otelRequire.resolve('autocannon/package.json')), 'autocannon.js')
}

const TIME_UNITS = { us: 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 }

/** "1.23ms" → 1.23 (ms). */
function wrkTime(text) {
  const match = /^([\d.]+)(us|ms|s|m|h)$/.exec(text)
  if (!match) throw new Error(`cannot read wrk time ${JSON.stringify(text)}`)
  return Number(match[1]) * TIME_UNITS[match[2]]
}

export function parseWrk(out) {
  const line = (re) => {
    const match = re.exec(out)
    if (!match) throw new Error(`unexpected wrk output (no ${re}):\n${out}`)
    return match
  }
  const [, requests, elapsed] = line(/^\s*(\d+) requests in ([\d.]+(?:us|ms|s|m|h)),/m)
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out)
  return {
    requests: Number(requests),
    seconds: wrkTime(elapsed) / 1e3,
    rps: Number(line(/^Requests\/sec:\s+([\d.]+)/m)[1]),
    p50Ms: wrkTime(line(/^\s+50%\s+(\S+)/m)[1]),
    p99Ms: wrkTime(line(/^\s+99%\s+(\S+)/m)[1]),
    errors: (socket ? socket.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0) + (non2xx ? Number(non2xx[1]) : 0),
  }
}

export function parseAutocannon(out) {
  const result = JSON.parse(out)
  return {
    requests: result.requests.total,
    seconds: result.duration,
    rps: result.requests.total / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
  }
}
