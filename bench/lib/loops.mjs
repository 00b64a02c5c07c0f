// The timed loops of micro.mjs. micro.mjs imports this module once per
// library and case, each time under its own URL (`loops.mjs?spanline-export`),
// so every case runs its own copy of the loops: V8 keeps type feedback and
// optimised code per copy, and one library's spans never pass through the
// call sites that time the other's. In a real process only one tracer runs;
// a loop shared by both would time polymorphic calls that no app makes
// (measured on Node 20: Spanline's span without export 368 ns shared, ~215
// alone).

/**
 * Start a SERVER span, set the four attributes an HTTP server span always
 * has, end it; every `batch` spans yield, as a server does between requests,
 * so the batch processor's export runs inside the round. Returns CPU ns per
 * span: CPU time of the process (all its threads, so GC helpers count), not
 * wall time, as the rounds yield to the event loop and the processors'
 * timers, and idle time there is not a cost of the library.
 */
export async function spanRound(startSpan, flush, n, batch) {
  const c0 = process.cpuUsage()
  for (let i = 0; i < n; i++) {
    const span = startSpan('GET /users/:id')
    span.setAttribute('http.request.method', 'GET')
    span.setAttribute('url.path', '/users/42')
    span.setAttribute('http.route', '/users/:id')
    span.setAttribute('http.response.status_code', 200)
    span.end()
    if ((i & (batch - 1)) === batch - 1) await new Promise(setImmediate)
  }
  await flush()
  const c = process.cpuUsage(c0)
  return ((c.user + c.system) * 1000) / n
}

/** Wall ns per call of fn, over n calls. */
export function timeLoop(n, fn) {
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) fn(i)
  return Number(process.hrtime.bigint() - t0) / n
}

/** A fresh copy of this module, under its own URL (see above). */
export function loopsFor(key) {
  return import(`${import.meta.url.split('?')[0]}?${encodeURIComponent(key)}`)
}
