import { warnOnce } from '../diag.ts'
import { envBoolean, envList, WARN_INVALID_ENV, type Env } from '../env.ts'
import { BatchSpanProcessor } from './batch.ts'
import { ConsoleSpanExporter } from './console.ts'
import { OtlpHttpExporter } from './otlp/http-exporter.ts'
import { SimpleSpanProcessor, type SpanExporter, type SpanProcessor } from './processor.ts'

const KNOWN = ['otlp', 'console', 'none']

/**
 * The exporters named by OTEL_TRACES_EXPORTER (default `otlp`): `otlp`,
 * `console`, `none`, or a comma list such as `otlp,console`. Unknown names
 * are reported once and skipped. OTEL_SDK_DISABLED=true gives none.
 */
export function exportersFromEnv(env: Env = process.env): SpanExporter[] {
  if (envBoolean(env, 'OTEL_SDK_DISABLED') === true) return []
  const names = envList(env, 'OTEL_TRACES_EXPORTER') ?? ['otlp']
  const exporters: SpanExporter[] = []
  const seen = new Set<string>()
  for (const raw of names) {
    const name = raw.toLowerCase()
    if (seen.has(name)) continue
    seen.add(name)
    if (name === 'otlp') exporters.push(new OtlpHttpExporter({ env }))
    else if (name === 'console') exporters.push(new ConsoleSpanExporter())
    else if (name !== 'none') {
      warnOnce(WARN_INVALID_ENV, `OTEL_TRACES_EXPORTER: unknown exporter ${JSON.stringify(raw)} skipped; known: ${KNOWN.join(', ')}`)
    }
  }
  if (seen.has('none')) return []
  return exporters
}

/**
 * The processor each exporter wants: the console exporter prints whole
 * traces itself, so it gets spans as they end; every other exporter goes
 * through a batch processor (OTEL_BSP_* settings), off the request path.
 */
export function processorsFor(exporters: readonly SpanExporter[], env: Env = process.env): SpanProcessor[] {
  return exporters.map((e) => (e instanceof ConsoleSpanExporter ? new SimpleSpanProcessor(e) : new BatchSpanProcessor(e, { env })))
}
