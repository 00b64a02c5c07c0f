import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { createServer as createNetServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { startOtlpReceiver, type OtlpReceiver } from '@spanline/core/testing'
import { assertBuilt, CLIENT, getJson, SERVER, serverSpans, startApp, stopAll, waitFor } from './helpers.ts'

/**
 * Configuration by the environment, in real preloaded processes: what
 * OTEL_SDK_DISABLED, bad values, OTEL_LOG_LEVEL, the default endpoint and
 * the SPANLINE_* variables do.
 */
const BSP = { OTEL_BSP_SCHEDULE_DELAY: '20' }

let receiver: OtlpReceiver
let echo: Server
let echoUrl: string
const received: IncomingHttpHeaders[] = []

beforeAll(async () => {
  assertBuilt()
  receiver = await startOtlpReceiver()
  // An untraced callee that records the headers it gets.
  echo = createServer((req, res) => {
    received.push(req.headers)
    res.end('ok')
  })
  echo.listen(0, '127.0.0.1')
  await once(echo, 'listening')
  echoUrl = `http://127.0.0.1:${(echo.address() as AddressInfo).port}`
})

afterAll(async () => {
  await stopAll()
  await receiver.close()
  echo.closeAllConnections()
  await new Promise((r) => echo.close(r))
})

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** The stderr lines, without Node's one-time "(Use `node --trace-warnings ...`)" hint. */
function stderrLines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('(Use `node --trace-warnings'))
}

/** A port on localhost that refuses connections. */
async function closedPort(): Promise<number> {
  const s = createNetServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as AddressInfo).port
  await new Promise((r) => s.close(r))
  return port
}

describe('OTEL_SDK_DISABLED=true', () => {
  it('produces no spans and sends no traceparent', async () => {
    const before = received.length
    const app = await startApp('express.mjs', {
      flag: '--import',
      env: { ...BSP, OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, CALLEE_URL: echoUrl },
    })
    const res = await getJson(`${app.url}/call`)
    expect(res).toEqual({ status: 200, body: { fetch: 200, http: 200 } })
    const users = await getJson(`${app.url}/users/1`)
    expect(users.body).toEqual({ id: '1', traceId: null, spanId: null })
    await sleep(300)
    expect(receiver.requests).toHaveLength(0)
    const calls = received.slice(before)
    expect(calls).toHaveLength(2)
    for (const headers of calls) {
      expect(headers.traceparent).toBeUndefined()
      expect(headers.baggage).toBeUndefined()
    }
    expect(app.stderr()).toBe('')
    await app.stop()
  })
})

describe('bad values', () => {
  it('are reported once each, naming the variable, and the app runs traced with the defaults', async () => {
    const local = await startOtlpReceiver()
    const bad = {
      OTEL_TRACES_SAMPLER: 'sometimes',
      OTEL_BSP_MAX_QUEUE_SIZE: 'lots',
      OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: '-1',
      OTEL_PROPAGATORS: 'tracecontext,carrier-pigeon',
      OTEL_LOG_LEVEL: 'loud',
      OTEL_SDK_DISABLED: 'maybe',
      SPANLINE_DISABLED_INSTRUMENTATIONS: 'expresss',
      SPANLINE_IGNORE_PATHS: 'health',
      OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_REQUEST_HEADERS: 'bad header',
      OTEL_INSTRUMENTATION_HTTP_CLIENT_CAPTURE_REQUEST_HEADERS: 'x request id',
    }
    const app = await startApp('express.cjs', {
      flag: '--require',
      env: { ...BSP, ...bad, OTEL_EXPORTER_OTLP_ENDPOINT: local.endpoint, CALLEE_URL: echoUrl },
    })
    for (let i = 0; i < 3; i++) expect((await getJson(`${app.url}/users/${i}`)).status).toBe(200)
    const spans = await waitFor(() => local.spans(), (s) => s.length >= 3, 10000, 'three spans')
    expect(spans.map((s) => s.name)).toEqual(['GET /users/:id', 'GET /users/:id', 'GET /users/:id'])
    const lines = stderrLines(app.stderr())
    for (const name of Object.keys(bad)) {
      const mentioning = lines.filter((l) => l.includes(name))
      expect({ name, mentioning }).toEqual({ name, mentioning: [expect.stringContaining('SpanlineWarning')] })
    }
    expect(lines).toHaveLength(Object.keys(bad).length)
    await app.stop()
    await local.close()
  })
})

describe('with nothing configured', () => {
  it('exports to http://localhost:4318; when nothing answers, one line says so and how to print traces instead', async () => {
    // Only meaningful when nothing listens on 4318 here.
    const probe = createNetServer()
    const free = await new Promise<boolean>((resolve) => {
      probe.once('error', () => resolve(false))
      probe.listen(4318, 'localhost', () => resolve(true))
    })
    if (free) await new Promise((r) => probe.close(r))
    else return console.warn('skipped: something listens on localhost:4318')
    const app = await startApp('http.mjs', { flag: '--import', env: BSP })
    for (let i = 0; i < 3; i++) await getJson(`${app.url}/users/${i}`)
    await waitFor(() => app.stderr(), (e) => e.includes('cannot reach'), 10000, 'the unreachable warning')
    for (let i = 0; i < 5; i++) await getJson(`${app.url}/users/${i}`)
    await sleep(400)
    const lines = stderrLines(app.stderr())
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain('SpanlineWarning: cannot reach the OTLP endpoint http://localhost:4318/v1/traces')
    expect(lines[0]).toContain('OTEL_TRACES_EXPORTER=console')
    await app.stop()
  })
})

describe('OTEL_LOG_LEVEL', () => {
  it('none keeps Spanline off stderr: no unreachable-endpoint line, no bad-value line', async () => {
    const app = await startApp('http.cjs', {
      flag: '--require',
      env: { ...BSP, OTEL_LOG_LEVEL: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await closedPort()}`, OTEL_TRACES_SAMPLER: 'sometimes', SPANLINE_IGNORE_PATHS: 'health' },
    })
    for (let i = 0; i < 3; i++) await getJson(`${app.url}/users/${i}`)
    await sleep(500)
    expect(app.stderr()).toBe('')
    await app.stop()
  })

  it('debug prints what was instrumented, and why a framework was not', async () => {
    const app = await startApp('express.mjs', {
      flag: '--import',
      env: { ...BSP, OTEL_LOG_LEVEL: 'debug', OTEL_TRACES_EXPORTER: 'none' },
    })
    await getJson(`${app.url}/users/1`)
    const lines = stderrLines(app.stderr())
    expect(lines).toContainEqual(expect.stringMatching(/^spanline debug: service .*: instrumented http-server, express, koa \(module hooks: (module\.registerHooks|Module\.prototype\.load)\), fastify \(fastify\.initialization\), fetch, http-client$/))
    expect(lines).toContainEqual(expect.stringMatching(/^spanline debug: express 5\.\d+\.\d+: instrumented$/))
    await app.stop()
  })
})

describe('SPANLINE_IGNORE_PATHS and header capture', () => {
  it('ignored paths get no span; the OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_* headers become attributes', async () => {
    const local = await startOtlpReceiver()
    const app = await startApp('express.mjs', {
      flag: '--import',
      env: {
        ...BSP,
        OTEL_EXPORTER_OTLP_ENDPOINT: local.endpoint,
        CALLEE_URL: echoUrl,
        SPANLINE_IGNORE_PATHS: '/users/1, /static/**',
        OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_REQUEST_HEADERS: 'X-Tenant',
        OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_RESPONSE_HEADERS: 'content-type',
      },
    })
    const before = received.length
    await getJson(`${app.url}/users/1`)
    await getJson(`${app.url}/static/css/app.css`)
    // An ignored request's outgoing calls are untraced too.
    await getJson(`${app.url}/users/2`, { 'x-tenant': 'acme' })
    const spans = await waitFor(() => local.spans(), (s) => s.length >= 1, 10000, 'a span')
    await sleep(200)
    expect(local.spans()).toHaveLength(1)
    expect(spans[0]!.attributes['url.path']).toBe('/users/2')
    expect(spans[0]!.attributes['http.request.header.x-tenant']).toEqual(['acme'])
    expect(spans[0]!.attributes['http.response.header.content-type']).toEqual(['application/json; charset=utf-8'])
    expect(received.length).toBe(before)
    await app.stop()
    await local.close()
  })
})

describe('SPANLINE_DISABLED_INSTRUMENTATIONS', () => {
  it('http-server off: framework apps still get their one SERVER span, started by the framework layer; plain node:http gets none', async () => {
    const local = await startOtlpReceiver()
    const env = { ...BSP, OTEL_EXPORTER_OTLP_ENDPOINT: local.endpoint, CALLEE_URL: echoUrl, SPANLINE_DISABLED_INSTRUMENTATIONS: 'http-server' }
    const scripts = ['express.cjs', 'koa.mjs', 'fastify.cjs', 'http.mjs']
    const apps = await Promise.all(scripts.map((script) => startApp(script, { flag: '--import', env: { ...env, OTEL_SERVICE_NAME: script } })))
    for (const app of apps) {
      expect((await getJson(`${app.url}/users/7`)).status).toBe(200)
      expect((await fetch(`${app.url}/boom`)).status).toBe(500)
    }
    const spans = await waitFor(() => local.spans(), (s) => s.length >= 6, 10000, 'six spans')
    await sleep(200)
    const by = (service: string): string[] => local.spans().filter((s) => s.resource['service.name'] === service).map((s) => s.name).sort()
    expect(by('express.cjs')).toEqual(['GET /boom', 'GET /users/:id'])
    expect(by('koa.mjs')).toEqual(['GET /boom', 'GET /users/:id'])
    expect(by('fastify.cjs')).toEqual(['GET /boom', 'GET /users/:id'])
    expect(by('http.mjs')).toEqual([])
    expect(spans.every((s) => s.kind === SERVER)).toBe(true)
    await Promise.all(apps.map((a) => a.stop()))
    await local.close()
  })

  it('express and fetch off: the node:http layer alone names the span; only node:http calls are traced', async () => {
    const local = await startOtlpReceiver()
    const before = received.length
    const app = await startApp('express.mjs', {
      flag: '--import',
      env: { ...BSP, OTEL_EXPORTER_OTLP_ENDPOINT: local.endpoint, CALLEE_URL: echoUrl, SPANLINE_DISABLED_INSTRUMENTATIONS: 'Express, fetch' },
    })
    await getJson(`${app.url}/call`)
    const spans = await waitFor(() => local.spans(), (s) => s.some((x) => x.kind === SERVER), 10000, 'the SERVER span')
    await sleep(200)
    const server = serverSpans(local.spans(), '/call')
    expect(server.map((s) => s.name)).toEqual(['GET'])
    const clients = local.spans().filter((s) => s.kind === CLIENT)
    expect(clients.map((c) => new URL(String(c.attributes['url.full'])).pathname)).toEqual(['/from-http'])
    const calls = received.slice(before)
    expect(calls.map((h) => h.traceparent === undefined)).toEqual([true, false])
    expect(spans.length).toBeGreaterThan(0)
    await app.stop()
    await local.close()
  })
})

describe('an app that also uses the explicit adapter', () => {
  it.each(['explicit-express.mjs', 'explicit-koa.cjs', 'explicit-fastify.mjs'])('%s still gets exactly one SERVER span per request', async (script) => {
    const local = await startOtlpReceiver()
    const app = await startApp(script, { flag: '--import', env: { ...BSP, OTEL_EXPORTER_OTLP_ENDPOINT: local.endpoint, CALLEE_URL: echoUrl } })
    const res = await getJson(`${app.url}/users/3`)
    expect((await fetch(`${app.url}/boom`)).status).toBe(500)
    await getJson(`${app.url}/call`)
    await waitFor(() => local.spans(), (s) => s.filter((x) => x.kind === SERVER).length >= 3, 10000, 'three SERVER spans')
    await sleep(200)
    const servers = local.spans().filter((s) => s.kind === SERVER)
    expect(servers.map((s) => s.name).sort()).toEqual(['GET /boom', 'GET /call', 'GET /users/:id'])
    const user = servers.find((s) => s.name === 'GET /users/:id')!
    expect(res.body.spanId).toBe(user.spanId)
    const boom = servers.find((s) => s.name === 'GET /boom')!
    expect(((boom.raw.events ?? []) as { name: string }[]).filter((e) => e.name === 'exception')).toHaveLength(1)
    expect(local.spans().filter((s) => s.kind === CLIENT)).toHaveLength(2)
    await app.stop()
    await local.close()
  })
})

describe('previous majors: Express 4, Koa 2, Fastify 4', () => {
  it('one SERVER span per request with the route template and the error, as for the current majors', async () => {
    const local = await startOtlpReceiver()
    const app = await startApp('legacy.cjs', { flag: '--require', env: { ...BSP, OTEL_EXPORTER_OTLP_ENDPOINT: local.endpoint } })
    const ports = JSON.parse(/listening \d+ (\{.*\})/.exec(app.stdout())![1]!) as Record<string, number>
    for (const [name, port] of Object.entries(ports)) {
      const res = await getJson(`http://127.0.0.1:${port}/users/${name}`)
      expect(res.status).toBe(200)
      expect((await fetch(`http://127.0.0.1:${port}/boom`)).status).toBe(500)
    }
    await waitFor(() => local.spans(), (s) => s.length >= 6, 10000, 'six spans')
    await sleep(200)
    const spans = local.spans()
    expect(spans).toHaveLength(6)
    for (const name of Object.keys(ports)) {
      const port = ports[name]
      const mine = spans.filter((s) => s.attributes['server.port'] === port)
      expect({ name, spans: mine.map((s) => s.name).sort() }).toEqual({ name, spans: ['GET /boom', 'GET /users/:id'] })
      const boom = mine.find((s) => s.name === 'GET /boom')!
      expect(((boom.raw.events ?? []) as { name: string }[]).filter((e) => e.name === 'exception')).toHaveLength(1)
    }
    await app.stop()
    await local.close()
  })
})

describe('node:https', () => {
  it('requests on an https server get their SERVER span too, active in the listener', async () => {
    const local = await startOtlpReceiver()
    const app = await startApp('https.mjs', { flag: '--import', env: { ...BSP, OTEL_EXPORTER_OTLP_ENDPOINT: local.endpoint } })
    const ca = readFileSync(join(__dirname, '..', '..', 'core', 'test', 'fixtures', 'tls', 'cert.pem'))
    const body = await new Promise<string>((resolve, reject) => {
      httpsRequest(`https://127.0.0.1:${app.port}/users/9`, { ca }, (res) => {
        let text = ''
        res.setEncoding('utf8').on('data', (d: string) => { text += d }).on('end', () => resolve(text))
      }).on('error', reject).end()
    })
    const [span] = await waitFor(() => local.spans(), (s) => s.length >= 1, 10000, 'the span')
    expect(span!.kind).toBe(SERVER)
    expect(span!.attributes['url.scheme']).toBe('https')
    expect(JSON.parse(body)).toEqual({ id: '9', traceId: span!.traceId, spanId: span!.spanId })
    await app.stop()
    await local.close()
  })
})

describe('frameworks loaded before the preload', () => {
  it('Express and Koa already in the module cache are instrumented when @spanline/auto starts', async () => {
    const local = await startOtlpReceiver()
    const app = await startApp('late.mjs', { env: { ...BSP, OTEL_EXPORTER_OTLP_ENDPOINT: local.endpoint } })
    const koaPort = Number(/koa (\d+)/.exec(await waitFor(() => app.stdout(), (o) => /koa \d+/.test(o), 10000, 'koa'))![1])
    await getJson(`${app.url}/users/5`)
    await getJson(`http://127.0.0.1:${koaPort}/items/6`)
    const spans = await waitFor(() => local.spans(), (s) => s.length >= 2, 10000, 'two spans')
    expect(spans.map((s) => s.name).sort()).toEqual(['GET /items/:id', 'GET /users/:id'])
    await app.stop()
    await local.close()
  })
})

describe('flushing', () => {
  it('installs no signal handlers; shutdown() from the app\'s own SIGTERM handler exports what is queued', async () => {
    const local = await startOtlpReceiver()
    // A schedule delay longer than the test: only shutdown() can have sent the spans.
    const app = await startApp('sigterm.mjs', { flag: '--import', env: { OTEL_BSP_SCHEDULE_DELAY: '60000', OTEL_EXPORTER_OTLP_ENDPOINT: local.endpoint } })
    expect(app.stdout()).toContain('SIGTERM listeners before the app\'s own: 0, SIGINT: 0')
    await fetch(app.url).then((r) => r.text())
    expect(local.spans()).toHaveLength(0)
    app.signal('SIGTERM')
    expect(await app.exited).toBe(0)
    expect(app.stdout()).toContain('flushed')
    expect(local.spans().map((s) => s.name).sort()).toEqual(['GET', 'work'])
    await local.close()
  })

  it('flushes on beforeExit when the app ends by itself', async () => {
    const local = await startOtlpReceiver()
    const app = await startApp('exit.cjs', { flag: '--require', env: { OTEL_BSP_SCHEDULE_DELAY: '60000', OTEL_EXPORTER_OTLP_ENDPOINT: local.endpoint } })
    await fetch(app.url).then((r) => r.text())
    expect(await app.exited).toBe(0)
    expect(local.spans().map((s) => s.name)).toEqual(['GET'])
    await local.close()
  })
})
