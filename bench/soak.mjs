// The long soak (not part of `npm test`): a traced Express app serves
// 1,000,000 requests (SOAK_REQUESTS) over keep-alive connections while its
// spans are exported with OTLP to a local sink, or to a dead port with
// `--sink down` (queue full, every span dropped and counted). Prints the heap
// after GC at each tenth; the heap must stay flat.
//
//   node --expose-gc bench/soak.mjs            # sink up
//   node --expose-gc bench/soak.mjs --sink down
//   ... --json FILE                             # also write the results as JSON (bench/run.mjs)
import { Agent, createServer as createHttpServer, request } from 'node:http'
import { createServer } from 'node:net'
import { writeFileSync } from 'node:fs'
import express from 'express'
import { createTracer, OtlpHttpExporter } from '@spanline/core'
import { tracing } from '@spanline/express'

const TOTAL = Number(process.env.SOAK_REQUESTS ?? 1_000_000)
const CONCURRENCY = 50
const down = process.argv.includes('--sink') && process.argv[process.argv.indexOf('--sink') + 1] === 'down'

// The sink reads and discards every request (the test receiver keeps what
// it receives, for assertions: here that would be the leak), so the soak
// measures the app, not the sink.
let url
let sink
if (down) {
  const s = createServer()
  await new Promise((r) => s.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${s.address().port}/v1/traces`
  await new Promise((r) => s.close(r))
} else {
  sink = createHttpServer((req, res) => {
    req.resume()
    req.on('end', () => res.end())
  })
  await new Promise((r) => sink.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${sink.address().port}/v1/traces`
}

const tracer = createTracer({ serviceName: 'soak', exporters: [new OtlpHttpExporter({ url })] })
const app = express()
app.use(tracing({ tracer }))
app.get('/users/:id', (req, res) => res.json({ id: req.params.id }))
const server = app.listen(0, '127.0.0.1')
await new Promise((r) => server.once('listening', r))
const port = server.address().port
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY })

function get(i) {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: `/users/${i}`, agent }, (res) => {
      res.resume()
      res.on('end', resolve)
    }).on('error', reject).end()
  })
}

const heap = () => {
  global.gc?.()
  return process.memoryUsage().heapUsed / 1048576
}
const rows = []
let next = 0
const step = TOTAL / 10
let mark = step
const t0 = Date.now()
async function worker() {
  while (next < TOTAL) {
    const i = next++
    await get(i)
    if (i + 1 >= mark) {
      mark += step
      rows.push({ requests: i + 1, heapMB: heap().toFixed(1), rssMB: (process.memoryUsage().rss / 1048576).toFixed(0), ...tracer.stats().dropped, exported: tracer.stats().exported })
      console.log(JSON.stringify(rows.at(-1)))
    }
  }
}
const start = heap()
await Promise.all(Array.from({ length: CONCURRENCY }, worker))
const seconds = (Date.now() - t0) / 1000
await tracer.shutdown()
const growth = Number(rows.at(-1).heapMB) - Number(rows[0].heapMB)
console.log(`\n${TOTAL} requests in ${seconds.toFixed(0)} s (${(TOTAL / seconds).toFixed(0)} req/s), sink ${down ? 'down' : 'up'}`)
console.log(`heap after GC: ${start.toFixed(1)} MB at start, ${rows[0].heapMB} MB after the first tenth, ${rows.at(-1).heapMB} MB at the end (${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MB)`)
console.log(`spans: ${JSON.stringify(tracer.stats())}`)
console.log(growth < 10 ? 'flat: yes' : 'flat: NO')
const jsonAt = process.argv.indexOf('--json')
if (jsonAt !== -1) {
  writeFileSync(process.argv[jsonAt + 1], JSON.stringify({
    node: process.version,
    sink: down ? 'down' : 'up',
    requests: TOTAL,
    seconds,
    startHeapMB: start,
    rows,
    heapGrowthMB: growth,
    peakRssMB: process.resourceUsage().maxRSS / 1024,
    stats: tracer.stats(),
    flat: growth < 10,
  }, null, 2))
}
server.close()
agent.destroy()
sink?.close()
process.exit(growth < 10 ? 0 : 1)
