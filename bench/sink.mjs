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
import { countJsonSpans, countSpans } from './lib/otlp-count.mjs'

const { values: args } = parseArgs({ options: { port: { type: 'string', default: '0' } } })

// Distinct span names are bounded by the apps' routes; the cap only guards
// against a misbehaving exporter filling memory.
const MAX_NAMES = 200

let counters = fresh()
function fresh() {
  return { spans: 0, exports: 0, bytes: 0, failed: 0, names: new Map() }
}

// Receive buffers, reused: a body is copied into one as it arrives, rather
// than its chunks kept and concatenated. A fresh 100-200 KB buffer per
// export (some 70 exports a second from a fast server) is external memory
// that makes V8 collect garbage far more often: the sink then cost ~5 µs of
// CPU per span, on the core the load generator needs.
const free = []

function takeBuffer(size) {
  const buf = free.pop()
  return buf !== undefined && buf.length >= size ? buf : Buffer.allocUnsafeSlow(Math.max(size, 256 * 1024))
}

/** Reads the body, counts its spans; calls back with whether it was JSON, or an error. */
function receive(req, done) {
  const declared = Number(req.headers['content-length'])
  let buf = takeBuffer(Number.isInteger(declared) && declared > 0 ? declared : 0)
  let length = 0
  req.on('data', (chunk) => {
    if (length + chunk.length > buf.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(2 * buf.length, length + chunk.length))
      buf.copy(bigger, 0, 0, length)
      buf = bigger
    }
    chunk.copy(buf, length)
    length += chunk.length
  })
  req.on('error', (err) => {
    free.push(buf)
    done(err)
  })
  req.on('end', () => {
    counters.bytes += length
    const body = buf.subarray(0, length)
    if (/\bgzip\b/i.test(req.headers['content-encoding'] ?? '')) {
      gunzip(body, (err, inflated) => {
        free.push(buf)
        if (err) done(err)
        else count(req, inflated, done)
      })
      return
    }
    count(req, body, done)
    free.push(buf)
  })
}

/** Counts the spans of a (decompressed) body, synchronously; calls back with whether it was JSON, or the error. */
function count(req, body, done) {
  const json = /json/i.test(req.headers['content-type'] ?? '')
  const names = counters.names.size < MAX_NAMES ? counters.names : new Map()
  try {
    counters.spans += json ? countJsonSpans(body.toString('utf8'), names) : countSpans(body, names)
  } catch (err) {
    done(err)
    return
  }
  counters.exports++
  done(undefined, json)
}

const server = createServer((req, res) => {
  const path = (req.url ?? '').split('?')[0]
  if (req.method === 'POST' && path === '/v1/traces') {
    receive(req, (err, json) => {
      if (err !== undefined) {
        counters.failed++
        console.error(`sink: bad export: ${err.message}`)
        res.writeHead(400).end()
        return
      }
      res.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' })
      res.end(json ? '{}' : undefined)
    })
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
