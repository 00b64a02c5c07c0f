// The OTLP/HTTP sink of the throughput benchmark: a process of its own (so
// its work never lands on the server's core) that accepts POST /v1/traces,
// counts the spans and answers 200 with an empty ExportTraceServiceResponse
// (a zero-length protobuf message), keeping nothing.
//
//   GET  /count   {"spans", "exports", "bytes", "failed", "names": {"scope\tname": n}}
//   POST /reset   zero the counters (between runs)
//
// Prints "listening <port>" on stdout once it accepts connections.
// Usage: node bench/sink.mjs [--port N]   (default 0: any free port, on 127.0.0.1)
import { createServer } from 'node:http'
import { parseArgs } from 'node:util'
import { gunzip } from 'node:zlib'
import { promisify } from 'node:util'
import { countJsonSpans, countSpans } from './lib/otlp-count.mjs'

const { values: args } = parseArgs({ options: { port: { type: 'string', default: '0' } } })
const gunzipAsync = promisify(gunzip)

// Distinct span names are bounded by the apps' routes; the cap only guards
// against a misbehaving exporter filling memory.
const MAX_NAMES = 200

let counters = fresh()
function fresh() {
  return { spans: 0, exports: 0, bytes: 0, failed: 0, names: new Map() }
}

async function receive(req) {
  const chunks = []
  for await (const chunk of req) chunks.push(chunk)
  let body = Buffer.concat(chunks)
  counters.bytes += body.length
  if (/\bgzip\b/i.test(req.headers['content-encoding'] ?? '')) body = await gunzipAsync(body)
  const names = counters.names.size < MAX_NAMES ? counters.names : new Map()
  const json = /json/i.test(req.headers['content-type'] ?? '')
  counters.spans += json ? countJsonSpans(body.toString('utf8'), names) : countSpans(body, names)
  counters.exports++
  return json
}

const server = createServer((req, res) => {
  const path = (req.url ?? '').split('?')[0]
  if (req.method === 'POST' && path === '/v1/traces') {
    receive(req).then(
      (json) => {
        res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' })
        res.end(json ? '{}' : undefined)
      },
      (err) => {
        counters.failed++
        console.error(`sink: bad export: ${err.message}`)
        res.writeHead(400).end()
      },
    )
  } else if (req.method === 'GET' && path === '/count') {
    const { names, ...rest } = counters
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ ...rest, names: Object.fromEntries(names) }))
  } else if (req.method === 'POST' && path === '/reset') {
    counters = fresh()
    req.resume()
    res.writeHead(204).end()
  } else {
    req.resume()
    res.writeHead(404).end()
  }
})

server.keepAliveTimeout = 60_000 // exporters keep their connection between batches
server.listen(Number(args.port), '127.0.0.1', () => console.log(`listening ${server.address().port}`))
