import { startOtlpReceiver, type OtlpReceiver } from '@spanline/core/testing'
import { assertBuilt, CLIENT, getJson, serverSpans, startApp, stopAll, waitFor, type App, type Flag } from './helpers.ts'

/**
 * Unchanged apps, one per framework × module format × preload flag, each
 * started as `node <flag> @spanline/auto <app>` in its own process and
 * exporting over OTLP to a receiver of its own. All 16 (and the callee)
 * start at once in beforeAll, so the suite costs about one start-up.
 */
const FRAMEWORKS = ['express', 'koa', 'fastify', 'http'] as const
const FORMATS = ['mjs', 'cjs'] as const
const FLAGS: readonly Flag[] = ['--import', '--require']

type Framework = (typeof FRAMEWORKS)[number]
interface Combo {
  readonly framework: Framework
  readonly format: (typeof FORMATS)[number]
  readonly flag: Flag
  readonly name: string
}
const combos: Combo[] = []
for (const framework of FRAMEWORKS) {
  for (const format of FORMATS) {
    for (const flag of FLAGS) combos.push({ framework, format, flag, name: `${framework}.${format} ${flag}` })
  }
}

const BSP = { OTEL_BSP_SCHEDULE_DELAY: '20' }

let callee: App
let calleeReceiver: OtlpReceiver
const apps = new Map<string, { app: App; receiver: OtlpReceiver }>()

beforeAll(async () => {
  assertBuilt()
  calleeReceiver = await startOtlpReceiver()
  const receivers = await Promise.all(combos.map(() => startOtlpReceiver()))
  // The callee: a second preloaded process (plain node:http, ESM).
  callee = await startApp('http.mjs', {
    flag: '--import',
    env: { ...BSP, OTEL_EXPORTER_OTLP_ENDPOINT: calleeReceiver.endpoint, OTEL_SERVICE_NAME: 'callee' },
  })
  const started = await Promise.all(combos.map((combo, i) => startApp(`${combo.framework}.${combo.format}`, {
    flag: combo.flag,
    env: {
      ...BSP,
      OTEL_EXPORTER_OTLP_ENDPOINT: receivers[i]!.endpoint,
      OTEL_SERVICE_NAME: combo.name,
      CALLEE_URL: callee.url,
    },
  })))
  combos.forEach((combo, i) => apps.set(combo.name, { app: started[i]!, receiver: receivers[i]! }))
}, 90000)

afterAll(async () => {
  await stopAll()
  await Promise.all([calleeReceiver?.close(), ...[...apps.values()].map((a) => a.receiver.close())])
})

const ROUTE: Record<Framework, (template: string) => string> = {
  express: (t) => `GET ${t}`,
  koa: (t) => `GET ${t}`,
  fastify: (t) => `GET ${t}`,
  // No router: the node:http layer names the span by its method alone.
  http: () => 'GET',
}

describe.each(combos)('$name', ({ framework, name }) => {
  it('one SERVER span per request, named by the route template, active in the handler across awaits', async () => {
    const { app, receiver } = apps.get(name)!
    const res = await getJson(`${app.url}/users/42`)
    expect(res.status).toBe(200)
    const spans = await waitFor(() => serverSpans(receiver.spans(), '/users/42'), (s) => s.length >= 1, 10000, 'the SERVER span')
    await new Promise((r) => setTimeout(r, 100)) // a second SERVER span would have arrived by now
    const server = serverSpans(receiver.spans(), '/users/42')
    expect(server).toHaveLength(1)
    const span = spans[0]!
    expect(span.name).toBe(ROUTE[framework]('/users/:id'))
    if (framework !== 'http') expect(span.attributes['http.route']).toBe('/users/:id')
    expect(span.attributes['http.response.status_code']).toBe(200)
    expect(span.resource['service.name']).toBe(name)
    // getActiveSpan() in the handler, after an await, was this span.
    expect(res.body).toEqual({ id: '42', traceId: span.traceId, spanId: span.spanId })
  })

  it('records errors on the request\'s one SERVER span', async () => {
    const { app, receiver } = apps.get(name)!
    const res = await fetch(`${app.url}/boom`)
    await res.text()
    expect(res.status).toBe(500)
    const [span] = await waitFor(() => serverSpans(receiver.spans(), '/boom'), (s) => s.length >= 1, 10000, 'the /boom span')
    expect(serverSpans(receiver.spans(), '/boom')).toHaveLength(1)
    expect(span!.name).toBe(ROUTE[framework]('/boom'))
    expect(span!.status.code).toBe(2)
    expect(span!.attributes['http.response.status_code']).toBe(500)
    const events = (span!.raw.events ?? []) as { name: string; attributes?: { key: string; value: { stringValue?: string } }[] }[]
    if (framework === 'http') {
      expect(span!.attributes['error.type']).toBe('500')
    } else {
      // The thrown error itself, recorded once.
      const exceptions = events.filter((e) => e.name === 'exception')
      expect(exceptions).toHaveLength(1)
      expect(exceptions[0]!.attributes?.find((a) => a.key === 'exception.message')?.value.stringValue).toBe('boom')
    }
  })

  it('outgoing fetch and node:http calls are CLIENT spans, and the preloaded callee continues the trace', async () => {
    const { app, receiver } = apps.get(name)!
    const res = await getJson(`${app.url}/call`)
    expect(res).toEqual({ status: 200, body: { fetch: 200, http: 200 } })
    const spans = await waitFor(() => receiver.spans(), (s) => serverSpans(s, '/call').length === 1 && s.filter((x) => x.kind === CLIENT).length >= 2,
      10000, 'the /call SERVER span and its CLIENT spans')
    const server = serverSpans(spans, '/call')[0]!
    expect(server.name).toBe(ROUTE[framework]('/call'))
    const clients = spans.filter((s) => s.kind === CLIENT && s.traceId === server.traceId)
    expect(clients).toHaveLength(2)
    for (const client of clients) expect(client.parentSpanId).toBe(server.spanId)
    const paths = clients.map((c) => new URL(String(c.attributes['url.full'])).pathname).sort()
    expect(paths).toEqual(['/from-fetch', '/from-http'])

    // In the callee: one SERVER span per call, child of the caller's CLIENT span.
    const calleeSpans = await waitFor(() => calleeReceiver.spans().filter((s) => s.traceId === server.traceId), (s) => s.length >= 2,
      10000, 'the callee\'s SERVER spans')
    expect(calleeSpans).toHaveLength(2)
    for (const s of calleeSpans) {
      expect(s.kind).toBe(2)
      expect(s.resource['service.name']).toBe('callee')
      const parent = clients.find((c) => c.spanId === s.parentSpanId)
      expect(parent).toBeDefined()
      expect(new URL(String(parent!.attributes['url.full'])).pathname).toBe(s.attributes['url.path'])
    }
  })
})
