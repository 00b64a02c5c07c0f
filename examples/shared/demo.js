// What the framework examples share: a unit of traced work, and a client
// that calls the app and prints what it answered.
import { setTimeout as sleep } from 'node:timers/promises'

/** A child span of the active one that takes `ms`. */
export function work(tracer, name, ms) {
  return tracer.trace(name, async () => {
    await sleep(ms)
    return { name: 'Ada' }
  })
}

/** GETs each path in turn from 127.0.0.1:port and prints the status line. */
export async function sendRequests(port, paths) {
  for (const path of paths) {
    const res = await fetch(`http://127.0.0.1:${port}${path}`)
    console.log(`GET ${path} -> ${res.status} ${(await res.text()).replace(/\s+/g, ' ').slice(0, 60)}`)
  }
}
