import { createTracer, SimpleSpanProcessor, type Tracer, type TracerOptions } from '../src/index.ts'
import { InMemorySpanExporter } from '../src/testing.ts'

/** A tracer that exports each span at end into memory, with an empty env unless given. */
export function memoryTracer(options: TracerOptions = {}): { tracer: Tracer; exporter: InMemorySpanExporter } {
  const exporter = new InMemorySpanExporter()
  const tracer = createTracer({ env: {}, serviceName: 'test', ...options, processors: [new SimpleSpanProcessor(exporter)] })
  return { tracer, exporter }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

import { subscribe, unsubscribe } from 'node:diagnostics_channel'

/** Collects the messages published on spanline:diagnostic while `fn` runs. */
export async function collectDiagnostics(fn: () => unknown): Promise<string[]> {
  const seen: string[] = []
  const onMessage = (m: unknown): void => {
    seen.push((m as { message: string }).message)
  }
  subscribe('spanline:diagnostic', onMessage)
  try {
    await fn()
  } finally {
    unsubscribe('spanline:diagnostic', onMessage)
  }
  return seen
}
