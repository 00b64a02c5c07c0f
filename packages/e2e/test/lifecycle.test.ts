import { spawn } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import express from 'express'
import { createTracer, getActiveSpan, SimpleSpanProcessor, SpanKind, traceRequests, type ReadableSpan } from '@spanline/core'
import { InMemorySpanExporter, startOtlpReceiver } from '@spanline/core/testing'
import { tracing } from '@spanline/express'
import { instrument, uninstrument } from '@spanline/http'

describe('shutdown from the app\'s own SIGTERM handler', () => {
  it('exports everything queued, then the process exits', async () => {
    const receiver = await startOtlpReceiver()
    try {
      const child = spawn(process.execPath, [join(__dirname, 'fixtures', 'sigterm-app.mjs')], {
        cwd: join(__dirname, '..'),
        env: { ...process.env, RECEIVER_URL: receiver.url },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let out = ''
      child.stdout.on('data', (d: Buffer) => (out += d.toString()))
      for (let i = 0; i < 100 && !/listening \d+/.test(out); i++) await sleep(50)
      const port = Number(/listening (\d+)/.exec(out)![1])
      for (let i = 0; i < 20; i++) await (await fetch(`http://127.0.0.1:${port}/work/${i}`, { headers: { connection: 'close' } })).text()
      expect(receiver.spans()).toHaveLength(0) // nothing sent yet: the batch delay is 60 s
      const t0 = Date.now()
      child.kill('SIGTERM')
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
      expect(code).toBe(0)
      expect(Date.now() - t0).toBeLessThan(5000)
      expect(receiver.spans()).toHaveLength(20)
      expect(out).toMatch(/flushed .*"exported":20/)
    } finally {
      await receiver.close()
    }
  })
})

describe('context isolation under load', () => {
  let front: Server
  let back: Server
  const exporter = new InMemorySpanExporter()
  const tracer = createTracer({ env: {}, serviceName: 'load', processors: [new SimpleSpanProcessor(exporter)] })

  beforeAll(async () => {
    instrument({ tracer })
    back = createServer(traceRequests(async (req, res) => {
      await sleep(Math.random() * 3)
      res.end(getActiveSpan()?.spanId)
    }, { tracer }))
    await new Promise<void>((r) => back.listen(0, '127.0.0.1', r))
    const backPort = (back.address() as AddressInfo).port
    const app = express()
    app.use(tracing({ tracer }))
    app.get('/orders/:id', async (req, res) => {
      const mine = getActiveSpan()
      await sleep(Math.random() * 3)
      await new Promise((r) => setTimeout(r, Math.random() * 2))
      const downstream = await (await fetch(`http://127.0.0.1:${backPort}/stock/${req.params.id}`)).text()
      res.json({ id: req.params.id, span: mine?.spanId, same: getActiveSpan() === mine, downstream })
    })
    front = createServer(app)
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r))
  })
  afterAll(() => {
    uninstrument()
    front.close()
    back.close()
  })

  it('10,000 requests over keep-alive connections: zero spans with the wrong parent or trace', async () => {
    const port = (front.address() as AddressInfo).port
    const N = 10_000
    let next = 0
    const answers: { id: string; span: string; same: boolean; downstream: string }[] = []
    await Promise.all(Array.from({ length: 50 }, async () => {
      while (next < N) {
        const i = next++
        answers.push(await (await fetch(`http://127.0.0.1:${port}/orders/${i}`)).json() as (typeof answers)[number])
      }
    }))
    for (let i = 0; i < 200 && exporter.getFinishedSpans().length < N * 3; i++) await sleep(10)
    const spans = exporter.getFinishedSpans()
    expect(spans).toHaveLength(N * 3)
    const byId = new Map<string, ReadableSpan>(spans.map((s) => [s.spanId, s]))
    let wrong = 0
    for (const a of answers) {
      const server = byId.get(a.span)
      const downstream = byId.get(a.downstream)
      const client = downstream?.parentSpanId === undefined ? undefined : byId.get(downstream.parentSpanId)
      const ok = a.same && server?.kind === SpanKind.SERVER && server.attributes?.['url.path'] === `/orders/${a.id}` &&
        client?.kind === SpanKind.CLIENT && client.parentSpanId === server.spanId &&
        String(client.attributes?.['url.full']).endsWith(`/stock/${a.id}`) &&
        downstream?.attributes?.['url.path'] === `/stock/${a.id}` &&
        client.traceId === server.traceId && downstream.traceId === server.traceId
      if (!ok) wrong++
    }
    expect(wrong).toBe(0)
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(N)
  }, 120_000)
})
