import { createServer, IncomingMessage, ServerResponse, type Server } from 'node:http'
import { Server as NetServer, Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { createTracer, getActiveSpan, HttpServerTracing, SimpleSpanProcessor, SpanKind } from '@spanline/core'
import { InMemorySpanExporter } from '@spanline/core/testing'
import { installHttpServer } from './http-server.ts'

/**
 * The preload's node:http layer in this process: net.Server.prototype.emit
 * wrapped for the suite (and put back after it), spans to memory.
 */
const exporter = new InMemorySpanExporter()
const tracer = createTracer({ serviceName: 'http-server-test', processors: [new SimpleSpanProcessor(exporter)] })
const originalEmit = NetServer.prototype.emit
let server: Server
let base: string
/** What each 'request' listener call saw: its arguments and the span active in it. */
let seen: { args: unknown[]; spanId: string | undefined }[] = []

beforeAll(async () => {
  installHttpServer(new HttpServerTracing({ tracer }))
  server = createServer()
  server.on('request', (...args: unknown[]) => {
    seen.push({ args, spanId: getActiveSpan()?.spanId })
    const res = args[1]
    if (res instanceof ServerResponse) res.end('ok')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  NetServer.prototype.emit = originalEmit
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

beforeEach(() => {
  seen = []
  exporter.reset()
})

test('a request is handled in its SERVER span, the listener called with the request and response only', async () => {
  const res = await fetch(`${base}/users/1`)
  expect(await res.text()).toBe('ok')
  expect(seen).toHaveLength(1)
  const [req, response] = seen[0]!.args
  expect(seen[0]!.args).toHaveLength(2)
  expect(req).toBeInstanceOf(IncomingMessage)
  expect(response).toBeInstanceOf(ServerResponse)
  const spans = exporter.getFinishedSpans()
  expect(spans).toHaveLength(1)
  expect(spans[0]!.kind).toBe(SpanKind.SERVER)
  expect(seen[0]!.spanId).toBe(spans[0]!.spanId)
})

test("a 'request' emitted with more arguments passes them all on, in the span's context", () => {
  const socket = new Socket()
  const req = new IncomingMessage(socket)
  req.method = 'GET'
  req.url = '/extra'
  const res = new ServerResponse(req)
  const extra = { note: 'third' }
  expect(server.emit('request', req, res, extra, 4)).toBe(true)
  expect(seen).toHaveLength(1)
  expect(seen[0]!.args).toEqual([req, res, extra, 4])
  expect(seen[0]!.spanId).toMatch(/^[0-9a-f]{16}$/)
  socket.destroy()
})

test('other events, and a request that is not an IncomingMessage, pass through untraced with their arguments', () => {
  const calls: unknown[][] = []
  const listener = (...args: unknown[]): void => {
    calls.push([...args, getActiveSpan()])
  }
  server.on('custom', listener)
  server.emit('custom', 1, 2, 3)
  server.off('custom', listener)
  expect(calls).toEqual([[1, 2, 3, undefined]])
  const fakeReq = { url: '/not-a-request' }
  server.emit('request', fakeReq, 'res')
  expect(seen).toEqual([{ args: [fakeReq, 'res'], spanId: undefined }])
  expect(exporter.getFinishedSpans()).toHaveLength(0)
})
