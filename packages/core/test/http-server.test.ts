import { Agent, createServer, IncomingMessage, request as httpRequest, ServerResponse, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { connect, Socket } from 'node:net'
import { readFileSync } from 'node:fs'
import { connect as tlsConnect } from 'node:tls'
import fc from 'fast-check'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import {
  getActiveSpan,
  getServerSpan,
  HttpServerTracing,
  RecordingSpan,
  runWithContext,
  setServerRoute,
  SpanKind,
  SpanStatusCode,
  traceRequests,
  TracingError,
  type Tracer,
  type TracerOptions,
} from '../src/index.ts'
import { memoryTracer } from './helpers.ts'

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return (server.address() as AddressInfo).port
}

describe('traceRequests: a plain node:http server', () => {
  it('gives each request a SERVER span, active in the listener, ended when the response closes', async () => {
    const { tracer, exporter } = memoryTracer()
    let seen: string | undefined
    const server = createServer(traceRequests((req, res) => {
      seen = getActiveSpan()?.spanId
      res.statusCode = 503
      res.end('down')
    }, { tracer }))
    const port = await listen(server)
    const res = await fetch(`http://127.0.0.1:${port}/status?x=1`, { headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } })
    expect(res.status).toBe(503)
    const [span] = await exporter.waitForSpans(1)
    server.close()
    expect(span!.kind).toBe(SpanKind.SERVER)
    expect(span!.spanId).toBe(seen)
    expect(span!.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736')
    expect(span!.name).toBe('GET')
    expect(span!.attributes).toMatchObject({ 'url.path': '/status', 'url.query': 'x=1', 'http.response.status_code': 503, 'error.type': '503' })
    expect(span!.statusCode).toBe(SpanStatusCode.ERROR)
  })

  it('calls the listener as Node would: the server as `this`, the request and response only, its return value passed back', async () => {
    const { tracer, exporter } = memoryTracer()
    const calls: { self: unknown; args: number }[] = []
    const listener = traceRequests(function (this: unknown, _req: IncomingMessage, res: ServerResponse): string {
      calls.push({ self: this, args: arguments.length })
      res.end('ok')
      return 'returned'
    }, { tracer })
    const server = createServer(listener)
    const port = await listen(server)
    expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('ok')
    await exporter.waitForSpans(1)
    server.close()
    expect(calls).toEqual([{ self: server, args: 2 }])
    // Called directly, as a wrapper of another listener would.
    const req = new IncomingMessage(new Socket())
    req.method = 'GET'
    req.url = '/direct'
    const self = {}
    expect(listener.call(self, req, new ServerResponse(req))).toBe('returned')
    expect(calls[1]).toEqual({ self, args: 2 })
    req.socket.destroy()
  })

  it('lets a router layer name the span by its route, and records errors once', async () => {
    const { tracer, exporter } = memoryTracer()
    const tracing = new HttpServerTracing({ tracer })
    const failure = new TypeError('bad input')
    const server = createServer((req, res) => runWithContext(tracing.start(req, res), () => {
      tracing.setRoute(req, '/items/:id')
      tracing.recordError(req, failure)
      tracing.recordError(req, failure) // the same error from a second layer: recorded once
      expect(getServerSpan(req)).toBe(getActiveSpan())
      res.statusCode = 500
      res.end()
    }))
    const port = await listen(server)
    await fetch(`http://127.0.0.1:${port}/items/3`)
    const [span] = await exporter.waitForSpans(1)
    server.close()
    expect(span!.name).toBe('GET /items/:id')
    expect(span!.attributes!['error.type']).toBe('TypeError')
    expect(span!.events!.filter((e) => e.name === 'exception')).toHaveLength(1)
  })

  it('asks a route source for the route when the span ends, unless a route was set; a bad source gives none', async () => {
    const { tracer, exporter } = memoryTracer()
    const tracing = new HttpServerTracing({ tracer })
    // The router "matches" only after the source is registered, as Koa's does.
    const router = { route: undefined as string | undefined, asked: 0 }
    const sources: Record<string, (r: typeof router) => string | undefined> = {
      '/late': (r) => {
        r.asked++
        return r.route
      },
      '/set': () => '/from-source',
      '/throws': () => {
        throw new Error('source bug')
      },
      '/empty': () => '',
      '/number': () => 42 as unknown as string,
    }
    const server = createServer((req, res) => runWithContext(tracing.start(req, res), () => {
      tracing.setRouteSource(req, sources[req.url!]!, router)
      if (req.url === '/set') tracing.setRoute(req, '/set/:explicit')
      if (req.url === '/late') router.route = '/late/:id'
      res.end()
    }))
    const port = await listen(server)
    for (const path of Object.keys(sources)) await fetch(`http://127.0.0.1:${port}${path}`)
    const spans = await exporter.waitForSpans(5)
    server.close()
    expect(spans.map((s) => [s.name, s.attributes!['http.route']])).toEqual([
      ['GET /late/:id', '/late/:id'],
      ['GET /set/:explicit', '/set/:explicit'],
      ['GET', undefined],
      ['GET', undefined],
      ['GET', undefined],
    ])
    expect(router.asked).toBe(1)
  })

  it('a second layer on the same request enriches the one span instead of opening another', async () => {
    const { tracer, exporter } = memoryTracer()
    const outer = new HttpServerTracing({ tracer })
    const inner = new HttpServerTracing({ tracer })
    const server = createServer((req, res) => {
      const a = outer.start(req, res)
      const b = inner.start(req, res)
      expect(b).toBe(a)
      inner.setRoute(req, '/inner/:x')
      res.end()
    })
    const port = await listen(server)
    await fetch(`http://127.0.0.1:${port}/inner/1`)
    await exporter.waitForSpans(1)
    await new Promise((r) => setTimeout(r, 20))
    server.close()
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['GET /inner/:x'])
  })

  it('names spans right past the bound of its name cache (a router that reports raw paths as routes)', async () => {
    const { tracer, exporter } = memoryTracer()
    const server = createServer(traceRequests((req, res) => {
      setServerRoute(req, `/raw${req.url}`)
      res.end()
    }, { tracer }))
    const port = await listen(server)
    const agent = new Agent({ keepAlive: true, maxSockets: 20 })
    const N = 2600 // more than the 2,048 names the cache keeps
    const get = (i: number): Promise<void> => new Promise((resolve, reject) => {
      httpRequest({ port, host: '127.0.0.1', path: `/p${i}`, method: i % 2 === 0 ? 'GET' : 'DELETE', agent }, (res) => {
        res.resume().on('end', resolve)
      }).on('error', reject).end()
    })
    for (let i = 0; i < N; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => get(i + j)))
    const spans = await exporter.waitForSpans(N)
    server.close()
    agent.destroy()
    const names = new Set(spans.map((s) => s.name))
    expect(names.size).toBe(N)
    for (let i = 0; i < N; i += 37) expect(names.has(`${i % 2 === 0 ? 'GET' : 'DELETE'} /raw/p${i}`)).toBe(true)
  })

  it('names and reports each request right when methods and routes alternate (no stale name or method from the one before)', async () => {
    const { tracer, exporter } = memoryTracer()
    const server = createServer(traceRequests((req, res) => {
      if (req.url !== '/none') setServerRoute(req, req.url!.startsWith('/a') ? '/a/:id' : '/b/:id')
      res.end()
    }, { tracer }))
    const port = await listen(server)
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    // PURGE is parsed by Node but is not a known method: _OTHER, named HTTP.
    const sequence = [['GET', '/a/1'], ['GET', '/a/2'], ['PURGE', '/a/3'], ['GET', '/b/4'], ['POST', '/b/5'], ['POST', '/a/6'], ['GET', '/none'], ['PURGE', '/none'], ['GET', '/a/7']] as const
    for (const [method, path] of sequence) {
      await new Promise<void>((resolve, reject) => {
        httpRequest({ port, host: '127.0.0.1', path, method, agent }, (res) => res.resume().on('end', resolve)).on('error', reject).end()
      })
    }
    const spans = await exporter.waitForSpans(sequence.length)
    server.close()
    agent.destroy()
    const seen = spans.map((s) => [s.name, s.attributes!['http.request.method'], s.attributes!['http.request.method_original'], s.attributes!['url.path']])
    expect(seen).toEqual([
      ['GET /a/:id', 'GET', undefined, '/a/1'],
      ['GET /a/:id', 'GET', undefined, '/a/2'],
      ['HTTP /a/:id', '_OTHER', 'PURGE', '/a/3'],
      ['GET /b/:id', 'GET', undefined, '/b/4'],
      ['POST /b/:id', 'POST', undefined, '/b/5'],
      ['POST /a/:id', 'POST', undefined, '/a/6'],
      ['GET', 'GET', undefined, '/none'],
      ['HTTP', '_OTHER', 'PURGE', '/none'],
      ['GET /a/:id', 'GET', undefined, '/a/7'],
    ])
  })

  it('keeps a route or status code a hook set as one attribute, with the final value', async () => {
    const { tracer, exporter } = memoryTracer()
    const tracing = new HttpServerTracing({
      tracer,
      requestHook: (span) => span.setAttribute('http.route', '/from-hook').setAttribute('http.response.status_code', 1),
    })
    const server = createServer((req, res) => runWithContext(tracing.start(req, res), () => {
      tracing.setRoute(req, '/items/:id')
      // The handler too, after the hook: still one of each.
      getActiveSpan()!.setAttribute('http.response.status_code', 2).setAttribute('app.step', 'handler')
      res.statusCode = 201
      res.end()
    }))
    const port = await listen(server)
    await fetch(`http://127.0.0.1:${port}/items/3`)
    const [span] = await exporter.waitForSpans(1)
    server.close()
    // The span's own list, not the attributes object (which would fold duplicates into one key).
    const keys = (span as RecordingSpan).attributePairs!.filter((_, i) => i % 2 === 0)
    expect(keys.filter((k) => k === 'http.route')).toHaveLength(1)
    expect(keys.filter((k) => k === 'http.response.status_code')).toHaveLength(1)
    expect(new Set(keys).size).toBe(keys.length)
    expect(span!.attributes).toMatchObject({ 'http.route': '/items/:id', 'http.response.status_code': 201, 'url.path': '/items/3' })
    expect(span!.name).toBe('GET /items/:id')
  })

  it('records each connection\'s own peer address and port, request after request on keep-alive connections', async () => {
    const { tracer, exporter } = memoryTracer()
    const seen = new Map<string, number | undefined>()
    const server = createServer(traceRequests((req, res) => {
      seen.set(req.url!, req.socket.remotePort)
      res.end()
    }, { tracer }))
    const port = await listen(server)
    const agents = [new Agent({ keepAlive: true, maxSockets: 1 }), new Agent({ keepAlive: true, maxSockets: 1 })]
    const get = (path: string, agent: Agent): Promise<void> => new Promise((resolve, reject) => {
      httpRequest({ port, host: '127.0.0.1', path, agent }, (res) => {
        res.resume().on('end', resolve)
      }).on('error', reject).end()
    })
    for (let i = 0; i < 3; i++) for (const [a, agent] of agents.entries()) await get(`/a${a}/${i}`, agent)
    const spans = await exporter.waitForSpans(6)
    server.close()
    for (const agent of agents) agent.destroy()
    const ports = new Set<unknown>()
    for (const span of spans) {
      const path = span.attributes!['url.path'] as string
      expect(span.attributes).toMatchObject({ 'network.peer.address': '127.0.0.1', 'client.address': '127.0.0.1', 'network.peer.port': seen.get(path) })
      ports.add(span.attributes!['network.peer.port'])
    }
    // Two connections, two client ports.
    expect(ports.size).toBe(2)
  })

  it('applies the span limits to the request attributes, and keeps a sampler\'s attributes', async () => {
    // The request attributes are handed to the span in one step: the count
    // and length limits must still hold, and attributes a sampler set
    // first must survive (the one-step path then steps aside).
    const limited = memoryTracer({ spanLimits: { attributeCountLimit: 5, attributeValueLengthLimit: 8 } })
    const sampler = {
      shouldSample: () => ({ decision: 2 as const, attributes: { 'sampler.rule': 'keep', 'url.scheme': 'from-sampler' } }),
      toString: () => 'Tagging',
    }
    const tagged = memoryTracer({ sampler })
    for (const { tracer, exporter, check } of [
      {
        ...limited,
        check: (attributes: Record<string, unknown>, dropped: number): void => {
          expect(Object.keys(attributes)).toEqual(['http.request.method', 'url.path', 'url.query', 'url.scheme', 'server.address'])
          expect(attributes['url.path']).toBe('/a-very-')
          expect(attributes['url.query']).toBe('q=1')
          expect(dropped).toBeGreaterThanOrEqual(4) // server.port, client and peer address, peer port, protocol, user agent, status code
        },
      },
      {
        ...tagged,
        check: (attributes: Record<string, unknown>, dropped: number): void => {
          expect(attributes['sampler.rule']).toBe('keep')
          expect(attributes['url.scheme']).toBe('http') // the request's own value replaces the sampler's
          expect(attributes['url.path']).toBe('/a-very-long-path')
          expect(attributes['network.peer.port']).toEqual(expect.any(Number))
          expect(dropped).toBe(0)
        },
      },
    ]) {
      const server = createServer(traceRequests((_req, res) => res.end(), { tracer }))
      const port = await listen(server)
      await fetch(`http://127.0.0.1:${port}/a-very-long-path?q=1`)
      const [span] = await exporter.waitForSpans(1)
      server.close()
      check(span!.attributes!, span!.droppedAttributesCount)
    }
  })

  it('ends the span of an aborted request', async () => {
    const { tracer, exporter } = memoryTracer()
    const server = createServer(traceRequests((_req, res) => {
      setTimeout(() => res.end('late'), 200)
    }, { tracer }))
    const port = await listen(server)
    const req = httpRequest({ host: '127.0.0.1', port, path: '/slow' })
    req.on('error', () => {})
    req.end()
    setTimeout(() => req.destroy(), 30)
    const [span] = await exporter.waitForSpans(1)
    await new Promise((r) => setTimeout(r, 250))
    server.close()
    expect(span!.attributes!['error.type']).toBe('aborted')
    expect(span!.attributes!['http.response.status_code']).toBeUndefined()
    expect(span!.statusCode).toBe(SpanStatusCode.ERROR)
    expect(exporter.getFinishedSpans()).toHaveLength(1)
  })

  it('ends each span of a keep-alive connection when Node\'s server finishes its response, with no listener per response', async () => {
    const { tracer, exporter } = memoryTracer()
    const closeListeners: number[] = []
    const server = createServer(traceRequests((req, res) => {
      // The finish comes from Node's http.server.response.finish channel.
      closeListeners.push(res.listenerCount('close'))
      res.statusCode = req.url === '/missing' ? 404 : 200
      res.end('ok')
    }, { tracer }))
    const port = await listen(server)
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    for (const path of ['/a', '/missing', '/c']) {
      await new Promise<void>((resolve, reject) => {
        httpRequest({ port, host: '127.0.0.1', path, agent }, (res) => res.resume().on('end', resolve)).on('error', reject).end()
      })
    }
    const spans = await exporter.waitForSpans(3)
    agent.destroy()
    server.close()
    expect(closeListeners).toEqual([0, 0, 0])
    expect(spans.map((s) => [s.attributes!['url.path'], s.attributes!['http.response.status_code'], s.attributes!['error.type']])).toEqual([
      ['/a', 200, undefined], ['/missing', 404, undefined], ['/c', 200, undefined],
    ])
    expect(new Set(spans.map((s) => s.attributes!['network.peer.port'])).size).toBe(1) // one connection
    await new Promise((r) => setTimeout(r, 50))
    expect(exporter.getFinishedSpans()).toHaveLength(3) // the connection's close ends nothing twice
  })

  it('pipelined requests: those answered end as finished, the one still open when the client goes as aborted', async () => {
    const { tracer, exporter } = memoryTracer()
    const server = createServer(traceRequests((req, res) => {
      if (req.url === '/slow') setTimeout(() => res.end('late'), 300)
      else res.end('fast')
    }, { tracer }))
    const port = await listen(server)
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    // Two requests in one write: Node answers them in order, on one connection.
    socket.write('GET /fast HTTP/1.1\r\nHost: x\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n\r\n')
    await new Promise<void>((resolve) => socket.once('data', () => resolve()))
    socket.destroy()
    const spans = await exporter.waitForSpans(2)
    await new Promise((r) => setTimeout(r, 350))
    server.close()
    const byPath = new Map(spans.map((s) => [s.attributes!['url.path'], s]))
    expect(byPath.get('/fast')!.attributes).toMatchObject({ 'http.response.status_code': 200 })
    expect(byPath.get('/fast')!.attributes!['error.type']).toBeUndefined()
    expect(byPath.get('/slow')!.attributes!['error.type']).toBe('aborted')
    expect(byPath.get('/slow')!.statusCode).toBe(SpanStatusCode.ERROR)
    expect(exporter.getFinishedSpans()).toHaveLength(2)
  })

  it('a span started late, once the client had gone (an earlier hook awaited), still ends, as aborted', async () => {
    const { tracer, exporter } = memoryTracer()
    const tracing = new HttpServerTracing({ tracer })
    const server = createServer((req, res) => {
      req.socket.once('close', () => {
        // The connection's close was emitted before the span started.
        setImmediate(() => runWithContext(tracing.start(req, res), () => {}))
      })
    })
    const port = await listen(server)
    const req = httpRequest({ host: '127.0.0.1', port, path: '/late' })
    req.on('error', () => {})
    req.end()
    server.once('request', () => setTimeout(() => req.destroy(), 10))
    const [span] = await exporter.waitForSpans(1)
    server.close()
    expect(span!.attributes).toMatchObject({ 'url.path': '/late', 'error.type': 'aborted' })
  })

  it('a response Node\'s server does not drive (a test double, as Fastify\'s inject() makes) ends its span on its own close', async () => {
    const { tracer, exporter } = memoryTracer()
    const tracing = new HttpServerTracing({ tracer })
    const req = new IncomingMessage(new Socket())
    req.method = 'GET'
    req.url = '/double'
    req.headers = { host: 'example.test' }
    const res = new ServerResponse(req)
    tracing.start(req, res)
    expect(res.listenerCount('close')).toBe(1)
    res.statusCode = 204
    res.emit('close')
    const [span] = await exporter.waitForSpans(1)
    expect(span!.attributes).toMatchObject({ 'url.path': '/double', 'server.address': 'example.test' })
    expect(span!.attributes!['error.type']).toBe('aborted') // closed before its body was written
  })

  it('uses the global tracer when none is given, and validates options once', () => {
    expect(() => new HttpServerTracing({ nope: 1 } as never)).toThrow(TracingError)
    expect(() => new HttpServerTracing({ captureHeaders: { request: 'x-id' as never } })).toThrow(/captureHeaders.request/)
    expect(() => new HttpServerTracing({ requestHook: 'x' as never })).toThrow(/requestHook/)
    expect(() => traceRequests(42 as never)).toThrow(/listener/)
  })
})

/**
 * A tracer whose batches go out as OTLP protobuf bodies (the exporter's
 * protobuf path, as OtlpHttpExporter's), and the spans those bodies decode
 * to once flushed: names, and attributes as an object of protobufjs's values.
 */
async function protobufTracer(options: TracerOptions): Promise<{ tracer: Tracer; exported: () => Promise<Array<{ name: string; attributes: Record<string, unknown> }>> }> {
  const bodies: Buffer[] = []
  const exporter = {
    export: () => Promise.reject(new Error('export() called')),
    exportProtobuf: (body: Buffer) => {
      bodies.push(Buffer.from(body))
      return Promise.resolve({ ok: true as const })
    },
    shutdown: async () => {},
  }
  const { BatchSpanProcessor, createTracer, decodeTraceRequest } = await import('../src/index.ts').then(async (m) => ({ ...m, ...(await import('../src/testing.ts')) }))
  const tracer = createTracer({ env: {}, ...options, processors: [new BatchSpanProcessor(exporter, { env: {}, scheduledDelayMillis: 60_000 })] })
  type Decoded = { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<{ name: string; attributes: Array<{ key: string; value: Record<string, unknown> }> }> }> }> }
  const exported = async (): Promise<Array<{ name: string; attributes: Record<string, unknown> }>> => {
    await tracer.forceFlush()
    const spans = bodies.flatMap((b) => (decodeTraceRequest(b) as unknown as Decoded).resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)))
    return spans.map((s) => ({ name: s.name, attributes: Object.fromEntries(s.attributes.map((a) => [a.key, Object.values(a.value)[0]])) }))
  }
  return { tracer, exported }
}

describe('a SERVER span\'s HTTP attributes, made when first needed', () => {
  // The request's attributes are made from what start() kept, when something
  // first reads or sets them, or when the exporter encodes the span.
  const names = (span: RecordingSpan): string[] => {
    span.resolveAttributes()
    return (span.attributePairs ?? []).filter((_, i) => i % 2 === 0) as string[]
  }

  it('read during the request they are the request\'s; exported, the route, status code and error type follow', async () => {
    const { tracer, exporter } = memoryTracer()
    const tracing = new HttpServerTracing({ tracer })
    let during: Record<string, unknown> | null = null
    const server = createServer((req, res) => runWithContext(tracing.start(req, res), () => {
      tracing.setRoute(req, '/items/:id')
      during = { ...(getServerSpan(req) as RecordingSpan).attributes }
      res.statusCode = 502
      res.end()
    }))
    const port = await listen(server)
    await fetch(`http://127.0.0.1:${port}/items/3?x=1`, { headers: { 'user-agent': 'probe/1' } })
    const [span] = await exporter.waitForSpans(1)
    server.close()
    expect(during).toMatchObject({ 'http.request.method': 'GET', 'url.path': '/items/3', 'url.query': 'x=1', 'user_agent.original': 'probe/1', 'url.scheme': 'http' })
    expect(during).not.toHaveProperty('http.route')
    expect(during).not.toHaveProperty('http.response.status_code')
    const keys = names(span as RecordingSpan)
    expect(new Set(keys).size).toBe(keys.length)
    expect(keys.slice(-3)).toEqual(['http.route', 'http.response.status_code', 'error.type'])
    expect(span!.attributes).toMatchObject({ 'url.path': '/items/3', 'http.route': '/items/:id', 'http.response.status_code': 502, 'error.type': '502' })
  })

  it('waits for the exporter: none are made on the request\'s path, and the OTLP body has them all, the same as made at once', async () => {
    const { tracer, exported } = await protobufTracer({ serviceName: 'late' })
    const tracing = new HttpServerTracing({ tracer })
    // The same request, its attributes made at once (a hook sets one at the start).
    const eager = new HttpServerTracing({ tracer, requestHook: (span) => span.setAttribute('app.eager', true) })
    const ended: RecordingSpan[] = []
    const server = createServer((req, res) => {
      const which = req.url!.startsWith('/eager') ? eager : tracing
      runWithContext(which.start(req, res), () => {
        which.setRoute(req, '/:kind/:id')
        ended.push(getServerSpan(req) as RecordingSpan)
        res.end('ok')
      })
    })
    const port = await listen(server)
    await fetch(`http://127.0.0.1:${port}/late/1?sig=secret`, { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.9' } })
    await fetch(`http://127.0.0.1:${port}/eager/1?sig=secret`, { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.9' } })
    server.close()
    expect(ended[0]!.ended).toBe(true)
    expect(ended[0]!.attributePairs).toBeNull() // still deferred: nothing read them
    expect(ended[1]!.attributePairs).not.toBeNull()
    const spans = await exported()
    expect(spans.map((s) => s.name)).toEqual(['GET /:kind/:id', 'GET /:kind/:id'])
    const [late, now] = spans.map((s) => s.attributes)
    expect(late).toMatchObject({ 'url.scheme': 'https', 'client.address': '203.0.113.9', 'url.path': '/late/1', 'url.query': 'sig=REDACTED', 'http.route': '/:kind/:id', 'http.response.status_code': '200' })
    const { 'app.eager': _flag, ...nowRest } = now!
    expect({ ...late, 'url.path': '/eager/1' }).toEqual({ ...nowRest, 'network.peer.port': late!['network.peer.port'] })
    // Encoded without being given to the span (the encoder wrote them into an
    // array of its own); read now, they are made, and are the ones exported.
    expect(ended[0]!.attributePairs).toBeNull()
    const read = Object.fromEntries(Object.entries(ended[0]!.attributes!).map(([k, v]) => [k, typeof v === 'number' ? String(v) : v]))
    expect(read).toEqual(late)
  })

  it('exported as OTLP protobuf, deferred attributes are cut to the span\'s value length limit', async () => {
    const { tracer, exported } = await protobufTracer({ spanLimits: { attributeValueLengthLimit: 6 } })
    const tracing = new HttpServerTracing({ tracer })
    const server = createServer((req, res) => runWithContext(tracing.start(req, res), () => {
      tracing.setRoute(req, '/a-long-route/:id')
      res.end()
    }))
    const port = await listen(server)
    for (const path of ['/a-long-path/1?query=long', '/a-long-path/2']) await fetch(`http://127.0.0.1:${port}${path}`, { headers: { 'user-agent': 'a-long-agent/1.0' } })
    server.close()
    const attributes = (await exported()).map((s) => s.attributes)
    expect(attributes).toHaveLength(2)
    for (const a of attributes) {
      expect(a).toMatchObject({ 'url.path': '/a-lon', 'user_agent.original': 'a-long', 'http.route': '/a-lon', 'server.address': '127.0.' })
      for (const v of Object.values(a)) if (typeof v === 'string') expect(v.length).toBeLessThanOrEqual(6)
    }
    expect(attributes[0]!['url.query']).toBe('query=')
  })

  it('an attribute the app sets during the request comes after the request\'s own, the route and status code once after it', async () => {
    const { tracer, exporter } = memoryTracer()
    const server = createServer(traceRequests((req, res) => {
      getServerSpan(req)!.setAttribute('app.user', 'u1').setAttribute('url.path', '/rewritten')
      setServerRoute(req, '/users/:id')
      res.end()
    }, { tracer }))
    const port = await listen(server)
    await fetch(`http://127.0.0.1:${port}/users/7`)
    const [span] = await exporter.waitForSpans(1)
    server.close()
    const keys = names(span as RecordingSpan)
    expect(new Set(keys).size).toBe(keys.length)
    expect(keys.indexOf('app.user')).toBeGreaterThan(keys.indexOf('url.path'))
    expect(keys.slice(-2)).toEqual(['http.route', 'http.response.status_code'])
    expect(span!.attributes).toMatchObject({ 'app.user': 'u1', 'url.path': '/rewritten', 'http.route': '/users/:id', 'http.response.status_code': 200 })
  })

  it('a span the app ended itself keeps the request\'s attributes, and gets no route or status code after its end', async () => {
    const { tracer, exporter } = memoryTracer()
    const server = createServer(traceRequests((req, res) => {
      setServerRoute(req, '/early')
      getServerSpan(req)!.end()
      res.end()
    }, { tracer }))
    const port = await listen(server)
    await fetch(`http://127.0.0.1:${port}/early?q=1`)
    const [span] = await exporter.waitForSpans(1)
    // The response's end comes after the export of the span.
    await new Promise((r) => setTimeout(r, 20))
    server.close()
    expect(span!.attributes).toMatchObject({ 'url.path': '/early', 'url.query': 'q=1', 'http.request.method': 'GET' })
    expect(span!.attributes).not.toHaveProperty('http.route')
    expect(span!.attributes).not.toHaveProperty('http.response.status_code')
  })

  it('hooks and captured headers see the finished attributes, in the same order as ever', async () => {
    const { tracer, exporter } = memoryTracer()
    let atHook: Record<string, unknown> | null = null
    const server = createServer(traceRequests((req, res) => {
      setServerRoute(req, '/h')
      res.setHeader('x-served-by', 'a')
      res.end()
    }, { tracer, captureHeaders: { response: ['x-served-by'] }, responseHook: (span) => { atHook = { ...(span as RecordingSpan).attributes } } }))
    const port = await listen(server)
    await fetch(`http://127.0.0.1:${port}/h`)
    const [span] = await exporter.waitForSpans(1)
    server.close()
    expect(atHook).toMatchObject({ 'http.route': '/h', 'http.response.status_code': 200, 'http.response.header.x-served-by': ['a'] })
    const keys = names(span as RecordingSpan)
    // Made as the request ended: the route and status code before the request's own path and the peer port (see #addAttributes).
    expect(keys.slice(keys.indexOf('http.route'), keys.indexOf('http.route') + 3)).toEqual(['http.route', 'http.response.status_code', 'url.path'])
    expect(keys.at(-1)).toBe('http.response.header.x-served-by')
  })

  it('a span waiting for its attributes prints and serialises without the request\'s headers', async () => {
    const held: RecordingSpan[] = []
    const { createTracer } = await import('../src/index.ts')
    const { inspect } = await import('node:util')
    const tracer = createTracer({ env: {}, processors: [{ onStart() {}, onEnd: (span) => void held.push(span as RecordingSpan), forceFlush: async () => {}, shutdown: async () => {} }] })
    const server = createServer(traceRequests((_req, res) => res.end('ok'), { tracer }))
    const port = await listen(server)
    await fetch(`http://127.0.0.1:${port}/private`, { headers: { authorization: 'Bearer s3cret-token', cookie: 'sid=s3cret-cookie' } })
    server.close()
    const span = held[0]!
    expect(span.attributePairs).toBeNull() // still waiting
    expect(inspect(span, { depth: 10 })).not.toMatch(/s3cret/)
    expect(JSON.stringify(span)).not.toMatch(/s3cret/)
    expect(JSON.stringify(span.attributes)).not.toMatch(/s3cret/)
  })

  it('keeps neither the request nor the response alive while it waits', async () => {
    const { setFlagsFromString } = await import('node:v8')
    const { runInNewContext } = await import('node:vm')
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const held: RecordingSpan[] = []
    const { createTracer } = await import('../src/index.ts')
    const tracer = createTracer({ env: {}, processors: [{ onStart() {}, onEnd: (span) => void held.push(span as RecordingSpan), forceFlush: async () => {}, shutdown: async () => {} }] })
    let req: WeakRef<IncomingMessage> | undefined
    let res: WeakRef<ServerResponse> | undefined
    const server = createServer(traceRequests((rq, rs) => {
      req = new WeakRef(rq)
      res = new WeakRef(rs)
      rs.end('ok')
    }, { tracer }))
    const port = await listen(server)
    await fetch(`http://127.0.0.1:${port}/gone`, { headers: { connection: 'close' } })
    await new Promise<void>((r) => server.close(() => r()))
    for (let i = 0; i < 5 && (req!.deref() !== undefined || res!.deref() !== undefined); i++) {
      await new Promise((r) => setImmediate(r))
      gc()
    }
    expect(held[0]!.attributePairs).toBeNull()
    expect(req!.deref()).toBeUndefined()
    expect(res!.deref()).toBeUndefined()
    expect(held[0]!.attributes).toMatchObject({ 'url.path': '/gone', 'http.response.status_code': 200 })
  })
})

describe('the attributes requests start with, made once for a run of alike requests', () => {
  // HttpServerTracing keeps what it made for the last request (RequestLead)
  // and remakes a part only when its inputs change; the protobuf encoder
  // then copies the parts it is told are unchanged without comparing them.
  // A stale part would give a span another request's method, host or client.

  /** One request over a raw connection (plain or TLS, from a given local address), answered then closed. */
  function send(port: number, tls: boolean, localAddress: string, head: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const raw = connect({ port, host: '127.0.0.1', localAddress })
      const socket: Socket = tls ? tlsConnect({ socket: raw, rejectUnauthorized: false }) : raw
      socket.on(tls ? 'secureConnect' : 'connect', () => socket.write(head))
      socket.on('error', reject)
      socket.on('close', () => resolve())
      socket.resume()
    })
  }

  it('exports each request\'s own, request after request, whichever of its inputs change (property, against a tracer with no history)', async () => {
    const { tracer, exported } = await protobufTracer({ serviceName: 'shared' })
    const shared = new HttpServerTracing({ tracer })
    const { tracer: freshTracer, exporter: freshExporter } = memoryTracer()
    const tlsOptions = { key: readFileSync(join(__dirname, 'fixtures', 'tls', 'key.pem')), cert: readFileSync(join(__dirname, 'fixtures', 'tls', 'cert.pem')) }
    // The request says how it ends (a route, a status code, an error), so that outcomes repeat and change too.
    const handler = (tracing: () => HttpServerTracing) => (req: IncomingMessage, res: ServerResponse): void => {
      const t = tracing()
      runWithContext(t.start(req, res), () => {
        const outcome = String(req.headers['x-outcome'])
        if (outcome.startsWith('/')) t.setRoute(req, outcome)
        if (outcome === 'error') t.recordError(req, new RangeError('bad'))
        res.statusCode = outcome === 'error' ? 500 : outcome === '404' ? 404 : 200
        res.end('ok')
      })
    }
    // The same requests go to servers sharing one HttpServerTracing (exported
    // as protobuf) and to servers making a new one for each request (its
    // attributes made from nothing before it).
    const servers = [
      createServer(handler(() => shared)),
      createHttpsServer(tlsOptions, handler(() => shared)),
      createServer(handler(() => new HttpServerTracing({ tracer: freshTracer }))),
      createHttpsServer(tlsOptions, handler(() => new HttpServerTracing({ tracer: freshTracer }))),
    ]
    const ports = await Promise.all(servers.map((s) => listen(s as Server)))
    // Each request is the one before with at most one input changed: a
    // stale part shows only when everything else stays the same.
    const choices = {
      method: ['GET', 'POST', 'DELETE', 'PURGE', 'PROPFIND'],
      version: ['1.1', '1.0'],
      tls: [false, true],
      local: ['127.0.0.1', '127.0.0.2'],
      host: [undefined, 'a.test', 'a.test:8080', 'b.test:9090'],
      forwardedHost: [undefined, 'proxy.test:8443', 'bad host!'],
      forwardedProto: [undefined, 'https', 'JUNK'],
      forwarded: [undefined, 'for=192.0.2.1;proto=https;host=fw.test', 'for="[2001:db8::1]:80"'],
      forwardedFor: [undefined, '203.0.113.9', '198.51.100.2, 10.0.0.1'],
      userAgent: [undefined, 'probe/1', 'probe/2'],
      outcome: ['/r/:n', '/other/:n', '404', 'error'],
    }
    type Inputs = { -readonly [K in keyof typeof choices]: (typeof choices)[K][number] }
    const fields = Object.keys(choices) as Array<keyof typeof choices>
    // Sent `times` in a row: runs of alike requests are what the lead is for.
    const step = fc.record({ field: fc.constantFrom(...fields), pick: fc.nat(), times: fc.integer({ min: 1, max: 3 }) })
    let n = 0
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 30 }), async (steps) => {
          const before = (await exported()).length
          freshExporter.reset()
          const paths: string[] = []
          const r = Object.fromEntries(fields.map((f) => [f, choices[f][0]])) as Inputs
          for (const { field, pick, times } of steps) {
            const options = choices[field] as ReadonlyArray<Inputs[typeof field]>
            ;(r as Record<string, unknown>)[field] = options[pick % options.length]
            for (let t = 0; t < times; t++) {
              const path = `/r/${n++}`
              paths.push(path)
              const lines = [`${r.method} ${path} HTTP/${r.version}`]
              // HTTP/1.1 needs a Host (Node answers 400 without one).
              const host = r.host ?? (r.version === '1.1' ? 'a.test' : undefined)
              if (host !== undefined) lines.push(`Host: ${host}`)
              if (r.forwardedHost !== undefined) lines.push(`X-Forwarded-Host: ${r.forwardedHost}`)
              if (r.forwardedProto !== undefined) lines.push(`X-Forwarded-Proto: ${r.forwardedProto}`)
              if (r.forwarded !== undefined) lines.push(`Forwarded: ${r.forwarded}`)
              if (r.forwardedFor !== undefined) lines.push(`X-Forwarded-For: ${r.forwardedFor}`)
              if (r.userAgent !== undefined) lines.push(`User-Agent: ${r.userAgent}`)
              lines.push(`X-Outcome: ${r.outcome}`, 'Connection: close', '', '')
              const head = lines.join('\r\n')
              await send(ports[r.tls ? 1 : 0]!, r.tls, r.local, head)
              await send(ports[r.tls ? 3 : 2]!, r.tls, r.local, head)
            }
          }
          const fresh = await freshExporter.waitForSpans(paths.length)
          const got = (await exported()).slice(before)
          // Numbers as the decoded protobuf has them; peer ports differ between the two connections.
          const comparable = (a: Record<string, unknown>): Record<string, unknown> => {
            const { 'network.peer.port': _port, ...rest } = a
            return Object.fromEntries(Object.entries(rest).map(([k, v]) => [k, typeof v === 'number' ? String(v) : v]))
          }
          expect(got.map((s) => s.attributes['url.path'])).toEqual(paths)
          expect(got.map((s) => comparable(s.attributes))).toEqual(fresh.map((s) => comparable(s.attributes!)))
        }),
        { numRuns: 30 },
      )
    } finally {
      for (const s of servers) s.close()
    }
  }, 60_000)
})

describe('tracer resolution for the HTTP layer', () => {
  it('accepts tracer options instead of a tracer', async () => {
    const { exporter } = memoryTracer()
    const { SimpleSpanProcessor } = await import('../src/index.ts')
    const server = createServer(traceRequests((_req, res) => res.end('ok'), {
      tracer: { env: {}, serviceName: 'from-options', processors: [new SimpleSpanProcessor(exporter)] },
    }))
    const port = await listen(server)
    await fetch(`http://127.0.0.1:${port}/x`)
    const [span] = await exporter.waitForSpans(1)
    server.close()
    expect(span!.resource.attributes['service.name']).toBe('from-options')
  })

  it('with nothing configured, makes a tracer from the OTEL_* environment (one line to adopt)', () => {
    const { execFileSync } = require('node:child_process') as typeof import('node:child_process')
    const script = `
      import { createServer } from 'node:http'
      import { traceRequests } from '@spanline/core'
      const server = createServer(traceRequests((req, res) => res.end('ok')))
      server.listen(0, '127.0.0.1', async () => {
        await fetch('http://127.0.0.1:' + server.address().port + '/hello')
        server.close()
      })
    `
    const env: NodeJS.ProcessEnv = { ...process.env, OTEL_TRACES_EXPORTER: 'console', OTEL_SERVICE_NAME: 'zero-config' }
    delete env.FORCE_COLOR
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: join(__dirname, '..'), env, encoding: 'utf8' })
    expect(out).toMatch(/^trace [0-9a-f]{32} · zero-config GET · /m)
  })
})
