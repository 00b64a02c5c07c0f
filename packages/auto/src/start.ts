import { createTracer, ensureGlobalTracer, getGlobalTracer, HttpServerTracing, setGlobalTracer, type Tracer } from '@spanline/core'
import { instrument } from '@spanline/http'
import { readConfig, readLogLevel, type AutoConfig, type InstrumentationName } from './config.ts'
import { applyLogLevel, debug, warnOnce } from './diag.ts'
import { expressTarget } from './express.ts'
import { installFastify } from './fastify.ts'
import { installHttpServer } from './http-server.ts'
import { koaTarget } from './koa.ts'
import { installModuleHooks, type ModuleTarget } from './module-hooks.ts'

/**
 * What `node --import @spanline/auto` does, once per process: read the
 * environment, make the tracer global, and install the instrumentations.
 * No tracing logic lives here (it is all in core and the adapters), and
 * nothing in here throws into the app: a part that cannot be installed is
 * reported once and the app runs without it.
 */
interface Started {
  readonly tracer: Tracer
}

// Process-wide: `--import` and `--require` (or NODE_OPTIONS and a flag) both
// given, or two installed copies, still install everything once.
const kStarted = Symbol.for('spanline.auto.started')

function start(): Started {
  const slot = globalThis as { [kStarted]?: Started }
  const existing = slot[kStarted]
  if (existing !== undefined) {
    debug('@spanline/auto loaded a second time; already started')
    return existing
  }
  let started: Started
  try {
    applyLogLevel(readLogLevel(process.env))
    started = install(readConfig(process.env))
  } catch (err) {
    warnOnce('SPANLINE_AUTO_FAILED', `@spanline/auto could not start (${(err as Error)?.message ?? String(err)}); the app runs untraced`)
    started = { tracer: getGlobalTracer() }
  }
  Object.defineProperty(slot, kStarted, { value: started, configurable: false, enumerable: false, writable: false })
  return started
}

function install(config: AutoConfig): Started {
  if (config.sdkDisabled) {
    // OTEL_SDK_DISABLED: nothing is installed, and a global tracer that
    // records and propagates nothing, so even an explicit adapter in the app
    // stays quiet (as OpenTelemetry's no-op API would).
    const tracer = createTracer({ processors: [], propagator: ['none'] })
    setGlobalTracer(tracer)
    debug('OTEL_SDK_DISABLED=true: nothing instrumented')
    return { tracer }
  }
  // Configured by the OTEL_* variables (exporter, sampler, propagators, limits, resource).
  const tracer = ensureGlobalTracer()
  const on = config.instrumentations
  const installed: string[] = []
  const attempt = (name: string, fn: () => string | void): void => {
    try {
      const detail = fn()
      installed.push(detail === undefined ? name : `${name} (${detail})`)
    } catch (err) {
      warnOnce('SPANLINE_AUTO_FAILED', `@spanline/auto could not instrument ${name} (${(err as Error)?.message ?? String(err)}); it stays untraced`)
    }
  }
  // One set of server options for every layer that may start a SERVER span.
  const server = new HttpServerTracing(config.server)
  if (on.has('http-server')) attempt('http-server', () => installHttpServer(server))
  const targets: ModuleTarget[] = []
  if (on.has('express')) targets.push(expressTarget(server))
  if (on.has('koa')) targets.push(koaTarget(config.server))
  if (targets.length > 0) attempt(targets.map((t) => t.name).join(', '), () => `module hooks: ${installModuleHooks(targets)}`)
  if (on.has('fastify')) attempt('fastify', () => { installFastify(config.server); return 'fastify.initialization' })
  if (on.has('fetch') || on.has('http-client')) {
    attempt(clientNames(on), () => instrument({ ...config.client, fetch: on.has('fetch'), http: on.has('http-client') }))
  }
  debug('service %s: instrumented %s', String(tracer.resource.attributes['service.name']), installed.join(', ') || 'nothing')
  return { tracer }
}

function clientNames(on: ReadonlySet<InstrumentationName>): string {
  return (['fetch', 'http-client'] as const).filter((n) => on.has(n)).join(', ')
}

const started = start()

/**
 * The tracer the preload made global (configured by the OTEL_* variables),
 * for spans of your own: `tracer.trace('charge card', fn)`.
 */
export const tracer: Tracer = started.tracer

/**
 * Exports the spans still queued and stops the tracer: call it from your own
 * SIGTERM handler before exiting. (The preload installs no signal handlers;
 * on a natural exit, queued spans are flushed on `beforeExit`.)
 *
 * @example
 * import { shutdown } from '@spanline/auto'
 * process.on('SIGTERM', () => server.close(() => shutdown().finally(() => process.exit(0))))
 */
export function shutdown(): Promise<void> {
  return started.tracer.shutdown()
}
