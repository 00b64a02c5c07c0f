import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../../packages/core/src/testing.ts'

const run = promisify(execFile)
const MAIN = join(__dirname, 'main.js')
const SERVER = 2
const CLIENT = 3
const STATUS_ERROR = 2

// Who calls whom in the checkout flow: each service's SERVER span is the child of a CLIENT span of its caller.
const CALLERS: Record<string, string> = { auth: 'gateway', orders: 'gateway', inventory: 'orders', payment: 'orders', notification: 'orders' }
const SERVICES = ['gateway', ...Object.keys(CALLERS)]

/** Runs the demo as `npm start` does (against the built packages), output piped: no colour unless forced. */
async function runDemo(extraEnv: Record<string, string> = {}): Promise<string> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv }
  delete env.FORCE_COLOR
  delete env.NO_COLOR
  if (extraEnv.OTEL_EXPORTER_OTLP_ENDPOINT === undefined) delete env.OTEL_EXPORTER_OTLP_ENDPOINT
  const { stdout } = await run(process.execPath, [MAIN], { encoding: 'utf8', timeout: 20000, env })
  return stdout
}

/** The waterfall blocks of the output, from each `trace` title to its bottleneck line. */
function blocks(out: string): string[] {
  return [...out.matchAll(/^trace [\s\S]*?^bottleneck: .*$/gm)].map((m) => m[0])
}

function expectConsoleOutput(out: string): void {
  expect(out).not.toMatch(/\u001b\[/)
  expect(out).toMatch(/^checkout 1: POST \/checkout -> 201 .*"status":"confirmed"/m)
  expect(out).toMatch(/^checkout 2: POST \/checkout -> 402 .*"status":"payment declined"/m)
  expect(out).toMatch(/^checkout 3: POST \/checkout -> 201 .*"status":"confirmed"/m)
  // One whole block per checkout: no trace split into a late continuation.
  expect(out).not.toMatch(/continued:/)
  expect(out.match(/^trace /gm)).toHaveLength(3)
  const found = blocks(out)
  expect(found).toHaveLength(3)
  found.forEach((block, i) => {
    expect(block).toMatch(/^trace [0-9a-f]{32} · gateway POST \/checkout · [\d.]+ (ms|s) · \d+ spans/)
    for (const service of SERVICES) expect(block).toMatch(new RegExp(`^${service} +\\S`, 'm'))
    expect(block).toMatch(/^notification .*send email/m)
    expect(block).toMatch(/^payment .*charge card/m)
    // payment is the slow one, in every checkout
    expect(block).toMatch(/^bottleneck: payment charge card [\d.]+ ms self time/m)
    if (i === 1) expect(block).toMatch(/✗ CardDeclinedError: card declined/)
    else expect(block).not.toMatch(/✗/)
    // each checkout's result line comes before its waterfall
    expect(out.indexOf(`checkout ${i + 1}: `)).toBeLessThan(out.indexOf(block))
  })
}

describe('examples/shop (the npm start demo)', () => {
  it('prints one waterfall per checkout, the declined card and the slow payment plain to see', async () => {
    expectConsoleOutput(await runDemo())
  }, 30000)

  describe('with OTEL_EXPORTER_OTLP_ENDPOINT set', () => {
    let receiver: OtlpReceiver
    let out: string
    let traces: ReceivedSpan[][]

    beforeAll(async () => {
      receiver = await startOtlpReceiver()
      out = await runDemo({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint })
      const byTrace = new Map<string, ReceivedSpan[]>()
      for (const span of receiver.spans()) byTrace.set(span.traceId, [...(byTrace.get(span.traceId) ?? []), span])
      traces = [...byTrace.values()]
    }, 30000)
    afterAll(() => receiver?.close())

    const service = (span: ReceivedSpan): unknown => span.resource['service.name']

    it('still prints the waterfalls', () => {
      expectConsoleOutput(out)
    })

    it('sends every service\'s spans of a checkout under one trace id: three traces', () => {
      expect(traces).toHaveLength(3)
      for (const spans of traces) {
        expect(new Set(spans.map(service))).toEqual(new Set(SERVICES))
        expect(new Set(spans.map((s) => s.spanId)).size).toBe(spans.length)
      }
    })

    it('links each trace into one tree rooted at the gateway', () => {
      for (const spans of traces) {
        const ids = new Set(spans.map((s) => s.spanId))
        const roots = spans.filter((s) => s.parentSpanId === undefined)
        expect(roots).toHaveLength(1)
        expect(service(roots[0]!)).toBe('gateway')
        expect(roots[0]!.kind).toBe(SERVER)
        expect(roots[0]!.name).toBe('POST /checkout')
        for (const span of spans) if (span !== roots[0]) expect(ids.has(span.parentSpanId!)).toBe(true)
      }
    })

    it('makes each call a CLIENT span of the calling service, parent of the called service\'s SERVER span', () => {
      for (const spans of traces) {
        const byId = new Map(spans.map((s) => [s.spanId, s]))
        for (const [callee, caller] of Object.entries(CALLERS)) {
          const servers = spans.filter((s) => service(s) === callee && s.kind === SERVER)
          expect(servers).toHaveLength(1)
          const client = byId.get(servers[0]!.parentSpanId!)!
          expect(client.kind).toBe(CLIENT)
          expect(service(client)).toBe(caller)
        }
      }
    })

    it('includes the fire-and-forget notification, which ends after orders has answered', () => {
      for (const spans of traces) {
        const orders = spans.find((s) => service(s) === 'orders' && s.kind === SERVER)!
        const email = spans.find((s) => service(s) === 'notification' && s.name === 'send email')!
        expect(email).toBeDefined()
        expect(BigInt(email.endTimeUnixNano)).toBeGreaterThan(BigInt(orders.endTimeUnixNano))
      }
    })

    it('records the declined card as an ERROR span in payment with an exception event, in one trace only', () => {
      const failed = traces.map((spans) => spans.filter((s) => service(s) === 'payment' && s.status.code === STATUS_ERROR))
      expect(failed.map((f) => f.length).sort()).toEqual([0, 0, 1])
      const span = failed.flat()[0]!
      expect(span.name).toBe('charge card')
      const events = (span.raw.events ?? []) as { name: string; attributes?: { key: string; value: { stringValue?: string } }[] }[]
      const exception = events.find((e) => e.name === 'exception')
      expect(exception).toBeDefined()
      const attr = (key: string): string | undefined => exception!.attributes?.find((a) => a.key === key)?.value.stringValue
      expect(attr('exception.type')).toBe('CardDeclinedError')
      expect(attr('exception.message')).toMatch(/card declined/)
      // ...and the calls that carried the 402 back failed on the client side: orders -> payment, gateway -> orders.
      const declined = traces.find((spans) => spans.includes(span))!
      const failedCalls = declined.filter((s) => s.kind === CLIENT && s.status.code === STATUS_ERROR)
      expect(failedCalls.map((s) => `${String(service(s))} ${s.attributes['http.response.status_code']}`).sort()).toEqual(['gateway 402', 'orders 402'])
    })

    it('shows payment as the slow service: its charge takes most of each trace', () => {
      for (const spans of traces) {
        const root = spans.find((s) => s.parentSpanId === undefined)!
        const charge = spans.find((s) => s.name === 'charge card')!
        const ms = (s: ReceivedSpan): number => Number(BigInt(s.endTimeUnixNano) - BigInt(s.startTimeUnixNano)) / 1e6
        expect(ms(charge)).toBeGreaterThanOrEqual(300)
        expect(ms(charge) / ms(root)).toBeGreaterThan(0.5)
      }
    })
  })
})
