import type { FastifyTracingOptions } from '@spanline/fastify'
import { debug } from './diag.ts'
import { FASTIFY_RANGE, inRange } from './version.ts'
// Builtins by process.getBuiltinModule(), not ES imports: start-up time (see @spanline/core's src/diag.ts).
const { subscribe } = process.getBuiltinModule('node:diagnostics_channel')
const { createRequire } = process.getBuiltinModule('node:module')

const requireAdapter = createRequire(import.meta.url)

interface FastifyInstance {
  readonly version?: unknown
  register(plugin: unknown, options: unknown): unknown
}

/**
 * Fastify 4.10+ and 5 announce each new instance on the
 * `fastify.initialization` diagnostics channel (published at the end of
 * `fastify()`, before the app can register anything), so the preload
 * registers the @spanline/fastify plugin there: first in the instance's
 * plugin queue, app-wide (the plugin skips encapsulation). It enriches the
 * node:http layer's span with the route template and errors, or starts the
 * span when that layer is disabled. No module hook is needed.
 */
export function installFastify(options: FastifyTracingOptions): void {
  const skipped = new Set<string>()
  subscribe('fastify.initialization', function onFastifyInitialization(message: unknown): void {
    const fastify = (message as { fastify?: FastifyInstance } | null)?.fastify
    if (fastify === undefined || typeof fastify.register !== 'function') return
    const version = String(fastify.version)
    if (!inRange(fastify.version, FASTIFY_RANGE)) {
      if (!skipped.has(version)) {
        skipped.add(version)
        debug('fastify %s is outside the supported range %s; not instrumented (its requests still get node:http SERVER spans)', version, FASTIFY_RANGE.label)
      }
      return
    }
    try {
      // The adapter is loaded with the first instance, not with the preload.
      const { tracing } = requireAdapter('@spanline/fastify') as typeof import('@spanline/fastify')
      fastify.register(tracing, { ...options })
    } catch (err) {
      debug('fastify %s: could not register the tracing plugin: %o', version, err)
    }
  })
}
