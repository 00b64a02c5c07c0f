// The test service for the official W3C Trace Context test suite
// (https://github.com/w3c/trace-context/tree/main/test), for every Spanline
// adapter and both outgoing clients:
//
//   node examples/w3c-harness/server.js --framework express|koa|fastify|http --client fetch|http [--port 5000]
//
// It listens on 127.0.0.1 and implements the suite's contract: POST /test
// with a JSON list of actions `{ url, arguments }`; for each action, in
// order, it POSTs `arguments` as JSON to `url` with the chosen client (the
// call is made inside the request's SERVER span, so @spanline/http's
// instrument() adds traceparent/tracestate), then answers 200. Nothing here
// touches a trace header: what the suite sees is what Spanline did.
//
// Spans are recorded and then discarded (the suite only looks at the
// headers); `--record none` uses a tracer without processors instead, whose
// spans are non-recording but propagate all the same.
import http from 'node:http'
import { parseArgs } from 'node:util'
import { createTracer, getActiveSpan, setGlobalTracer, SimpleSpanProcessor, traceRequests } from '@spanline/core'
import { instrument, uninstrument } from '@spanline/http'

const FRAMEWORKS = ['express', 'koa', 'fastify', 'http']
const CLIENTS = ['fetch', 'http']
const USAGE = 'usage: node server.js --framework express|koa|fastify|http --client fetch|http [--port 5000] [--host 127.0.0.1] [--record all|none] [--verbose]'

let args
try {
  args = parseArgs({
    options: {
      framework: { type: 'string' },
      client: { type: 'string' },
      port: { type: 'string', default: '5000' },
      host: { type: 'string', default: '127.0.0.1' },
      record: { type: 'string', default: 'all' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values
} catch (err) {
  fail(err.message)
}
if (args.help) {
  console.log(USAGE)
  process.exit(0)
}
if (!FRAMEWORKS.includes(args.framework)) fail(`--framework must be one of ${FRAMEWORKS.join(', ')}`)
if (!CLIENTS.includes(args.client)) fail(`--client must be one of ${CLIENTS.join(', ')}`)
if (!['all', 'none'].includes(args.record)) fail('--record must be all or none')
const port = Number(args.port)
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`--port must be a port number, got ${args.port}`)

function fail(message) {
  console.error(`${message}\n${USAGE}`)
  process.exit(2)
}

// Records every span and throws it away (OTEL_TRACES_EXPORTER=none, but
// with the recording path exercised).
const discard = { export: async () => ({ ok: true }), shutdown: async () => {} }
const tracer = createTracer({
  serviceName: 'w3c-harness',
  processors: args.record === 'all' ? [new SimpleSpanProcessor(discard)] : [],
})
setGlobalTracer(tracer)
instrument({ tracer, fetch: args.client === 'fetch', http: args.client === 'http' })

const verbose = args.verbose
  ? (req, ...rest) => {
      const raw = []
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
        if (/^trace(parent|state)$/i.test(req.rawHeaders[i])) raw.push(`${req.rawHeaders[i]}: ${JSON.stringify(req.rawHeaders[i + 1])}`)
      }
      const span = getActiveSpan()
      console.error(`[w3c-harness] in: ${raw.join(' | ') || '(no trace headers)'} -> span ${span?.traceId}-${span?.spanId}`, ...rest)
    }
  : () => {}

/** The suite's body: a list of actions (a lone action is accepted, as the suite's own server does). */
function actionsOf(body) {
  if (body === null || body === undefined) return []
  return Array.isArray(body) ? body : [body]
}

/** POSTs `payload` as JSON to `url` with the chosen client; resolves once the response body has been read. */
function post(url, payload) {
  const body = JSON.stringify(payload ?? [])
  if (args.client === 'fetch') {
    return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
      .then((res) => res.arrayBuffer().then(() => res.status))
  }
  return new Promise((resolve, reject) => {
    // Headers as an object: @spanline/http can only add its own to those.
    const req = http.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Runs the actions one after the other; returns [status, JSON body] for the answer. */
async function runActions(body) {
  const results = []
  for (const action of actionsOf(body)) {
    if (action === null || typeof action !== 'object' || typeof action.url !== 'string') {
      return [400, { error: 'each action must be an object with a url', results }]
    }
    try {
      results.push({ url: action.url, status: await post(action.url, action.arguments) })
    } catch (err) {
      console.error(`[w3c-harness] callback to ${action.url} failed: ${err?.cause?.message ?? err?.message ?? err}`)
      return [500, { error: String(err?.cause?.message ?? err?.message ?? err), results }]
    }
  }
  return [200, { results }]
}

/** The raw body of a node:http request, parsed as JSON. */
function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('error', reject)
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      try {
        resolve(text === '' ? null : JSON.parse(text))
      } catch (err) {
        reject(Object.assign(err, { status: 400 }))
      }
    })
  })
}

async function startExpress() {
  const { default: express } = await import('express')
  const { tracing } = await import('@spanline/express')
  const app = express()
  app.use(tracing({ tracer }))
  app.use(express.json({ strict: false }))
  app.post('/test', async (req, res) => {
    verbose(req)
    const [status, body] = await runActions(req.body)
    res.status(status).json(body)
  })
  return listen(http.createServer(app))
}

async function startKoa() {
  const { default: Koa } = await import('koa')
  const { default: Router } = await import('@koa/router')
  const { tracing } = await import('@spanline/koa')
  const app = new Koa()
  app.use(tracing({ tracer }))
  const router = new Router()
  router.post('/test', async (ctx) => {
    verbose(ctx.req)
    const [status, body] = await runActions(await readJson(ctx.req))
    ctx.status = status
    ctx.body = body
  })
  app.use(router.routes())
  return listen(http.createServer(app.callback()))
}

async function startFastify() {
  const { default: Fastify } = await import('fastify')
  const { tracing } = await import('@spanline/fastify')
  const app = Fastify()
  await app.register(tracing, { tracer })
  app.post('/test', async (request, reply) => {
    verbose(request.raw)
    const [status, body] = await runActions(request.body)
    reply.code(status)
    return body
  })
  await app.listen({ port, host: args.host })
  return app.server
}

async function startHttp() {
  const server = http.createServer(traceRequests(async (req, res) => {
    let status = 404
    let body = { error: 'not found' }
    try {
      if (req.method === 'POST' && new URL(req.url, 'http://x').pathname === '/test') {
        verbose(req)
        ;[status, body] = await runActions(await readJson(req))
      } else req.resume()
    } catch (err) {
      status = err.status ?? 500
      body = { error: err.message }
    }
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }, { tracer }))
  return listen(server)
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, args.host, () => resolve(server))
  })
}

const start = { express: startExpress, koa: startKoa, fastify: startFastify, http: startHttp }[args.framework]
const server = await start()
const address = server.address()
console.log(`w3c-harness: ${args.framework} server, ${args.client} client, listening on http://${args.host}:${address.port}/test`)

async function stop() {
  server.close()
  server.closeAllConnections?.()
  uninstrument()
  await tracer.shutdown()
  process.exit(0)
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
