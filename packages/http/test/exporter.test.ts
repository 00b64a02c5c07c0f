import { createTracer, OtlpHttpExporter, runWithSpan, SpanKind } from '@spanline/core'
import { startOtlpReceiver, type OtlpReceiver } from '@spanline/core/testing'
import { instrument, uninstrument } from '../src/index.ts'
import { clientSpans, memoryTracer } from './helpers.ts'

// The OTLP exporter's own requests are never traced, even with the client
// instrumentation on and an active span around the export: no spans about
// exporting spans, and no trace headers sent to the backend.
describe('the exporter\'s own requests under instrument()', () => {
  let receiver: OtlpReceiver
  beforeEach(async () => {
    receiver = await startOtlpReceiver()
  })
  afterEach(async () => {
    uninstrument()
    await receiver.close()
  })

  it('create no CLIENT span and carry no traceparent', async () => {
    const { tracer, exporter } = memoryTracer()
    instrument({ tracer, rootSpans: true })
    const exporting = createTracer({ env: {}, serviceName: 'exported', exporters: [new OtlpHttpExporter({ url: receiver.url, env: {} })] })
    exporting.startSpan('work').end()
    await runWithSpan(tracer.startSpan('active while exporting'), () => exporting.forceFlush())
    await exporting.shutdown()
    expect(receiver.spans().map((s) => s.name)).toEqual(['work'])
    expect(receiver.requests.every((r) => r.headers.traceparent === undefined && r.headers.baggage === undefined)).toBe(true)
    expect(clientSpans(exporter)).toEqual([])
    expect(exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT)).toHaveLength(0)
  })
})
