// How each framework × variant of the throughput apps is started: the Node
// arguments and environment. Shared by throughput.mjs and instructions.mjs,
// so both measure the very same servers.
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..')

export const FRAMEWORKS = ['express', 'koa', 'fastify']
export const VARIANTS = ['bare', 'context', 'spanline', 'spanline-auto', 'otel']

// The servers' environment: ours minus anything that would configure
// tracing or preload code behind the benchmark's back.
const baseEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !(k === 'NODE_OPTIONS' || k === 'NODE_DEBUG' || k.startsWith('OTEL_') || k.startsWith('SPANLINE_') || k.startsWith('BENCH_'))),
)
baseEnv.NODE_ENV = 'production'

/**
 * Node arguments (relative to bench/, the servers' working directory) and
 * environment of one framework × variant, exporting to the OTLP sink at
 * `sinkBase` (`http://127.0.0.1:<port>`).
 */
export function serverCommand(framework, variant, sinkBase) {
  const app = join('apps', `${framework}.cjs`)
  const sinkUrl = `${sinkBase}/v1/traces`
  const service = `bench-${framework}`
  const setups = {
    bare: { args: [app], env: { BENCH_VARIANT: 'bare' } },
    context: { args: [app], env: { BENCH_VARIANT: 'context' } },
    spanline: { args: [app], env: { BENCH_VARIANT: 'spanline', BENCH_SINK_URL: sinkUrl } },
    // The unchanged bare app; the preload is configured by the environment only.
    'spanline-auto': {
      args: ['--import', '@spanline/auto', app],
      env: { BENCH_VARIANT: 'bare', OTEL_SERVICE_NAME: service, OTEL_EXPORTER_OTLP_ENDPOINT: sinkBase },
    },
    otel: {
      args: ['--require', join(benchDir, 'lib', 'otel-preload.cjs'), app],
      env: { BENCH_VARIANT: 'bare', BENCH_SINK_URL: sinkUrl, OTEL_SERVICE_NAME: service },
    },
  }
  const { args, env } = setups[variant]
  return { args, env: { ...baseEnv, ...env } }
}
