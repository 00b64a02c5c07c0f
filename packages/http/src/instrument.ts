import { HttpClientTracing, TracingError, type HttpClientOptions } from '@spanline/core'
import { installFetch, uninstallFetch } from './fetch.ts'
import { installNodeHttp, uninstallNodeHttp } from './node-http.ts'
// Builtins by process.getBuiltinModule(), not ES imports: start-up time (see @spanline/core's src/diag.ts).
const { inspect } = process.getBuiltinModule('node:util')

export interface HttpInstrumentationOptions extends HttpClientOptions {
  /** Trace fetch() and other undici clients. Default true. */
  readonly fetch?: boolean
  /** Trace node:http and node:https request() and get(). Default true. */
  readonly http?: boolean
}

interface Installed {
  uninstrument(): void
}

// Process-wide, so that a second copy of this package (two versions
// installed) replaces the first instead of tracing every call twice.
const kInstalled = Symbol.for('spanline.http.instrumentation')
const slot = globalThis as { [kInstalled]?: Installed | undefined }

const installed: Installed = {
  uninstrument(): void {
    uninstallFetch()
    uninstallNodeHttp()
  },
}

/**
 * Traces outgoing HTTP calls: every fetch() and every node:http/node:https
 * request() and get() made inside a span becomes a CLIENT span, child of
 * that span, and carries its context (traceparent, tracestate, baggage) to
 * the callee. Idempotent: calling it again replaces the options, never
 * traces a call twice. Bad options throw a TracingError here; nothing
 * thrown later reaches the app.
 *
 * @example
 * import { instrument } from '@spanline/http'
 * instrument({ ignore: ['metadata.google.internal', /\/health$/] })
 */
export function instrument(options: HttpInstrumentationOptions = {}): void {
  if (options === null || typeof options !== 'object') {
    throw new TracingError('SPANLINE_ERR_INVALID_ARGUMENT', `instrument() options must be an object, got ${inspect(options)}`)
  }
  const { fetch, http, ...client } = options
  for (const [name, value] of [['fetch', fetch], ['http', http]] as const) {
    if (value !== undefined && typeof value !== 'boolean') {
      throw new TracingError('SPANLINE_ERR_INVALID_ARGUMENT', `${name} must be a boolean, got ${inspect(value)}`)
    }
  }
  // Validates the rest (throws before anything is changed).
  const tracing = new HttpClientTracing(client)
  slot[kInstalled]?.uninstrument()
  if (fetch !== false) installFetch(tracing)
  if (http !== false) installNodeHttp(tracing)
  slot[kInstalled] = installed
}

/**
 * Stops tracing outgoing calls: channels unsubscribed, wrapped functions
 * restored (and the ESM named exports of node:http/https re-synced).
 * Safe to call when not instrumented.
 */
export function uninstrument(): void {
  const current = slot[kInstalled]
  if (current === undefined) return
  slot[kInstalled] = undefined
  current.uninstrument()
}
