import type { Channel } from 'node:diagnostics_channel'
import type { DebugLogger } from 'node:util'

// Builtins come from process.getBuiltinModule(), not ES imports, in every
// runtime module of Spanline: an ES import of a builtin builds its ESM
// facade, which reads every export: node:http's lazy WebSocket getters
// (Node 22+) then load all of undici (some 30 ms on Node 24), node:util's
// lazy exports internal/util/diff and a dozen more modules (5.7 ms on Node
// 24; the facades of node:os, node:module, node:async_hooks and node:buffer
// cost 2.4 ms more). The objects are the ones `require` returns, and are
// typed the same.
const { channel } = process.getBuiltinModule('node:diagnostics_channel')
const { debuglog } = process.getBuiltinModule('node:util')

/**
 * Diagnostics. Per-span or per-request trouble goes to `debug`, which costs a
 * boolean check unless NODE_DEBUG=spanline is set (undici and koa do the
 * same). Configuration problems are reported once per distinct message as a
 * process warning (visible on stderr by default, routable through
 * process.on('warning')) and published on the `spanline:diagnostic`
 * diagnostics channel as `{ level, code, message }` for apps that route them
 * to their own logger.
 */
export const debug: DebugLogger = debuglog('spanline')

export const diagnosticChannel: Channel = channel('spanline:diagnostic')

export interface Diagnostic {
  readonly level: 'warn' | 'debug'
  readonly code: string
  readonly message: string
}

const warned = new Set<string>()

/** Emit `message` once per process as a `SpanlineWarning` with `code`. */
export function warnOnce(code: string, message: string): void {
  const key = code + '\u0000' + message
  if (warned.has(key)) return
  warned.add(key)
  if (diagnosticChannel.hasSubscribers) diagnosticChannel.publish({ level: 'warn', code, message } satisfies Diagnostic)
  process.emitWarning(message, { type: 'SpanlineWarning', code })
}

/** Kinds of user-supplied code whose failures Spanline contains. */
export type ContainedErrorKind = 'sampler' | 'processor' | 'hook' | 'propagator'

const containedErrors: Record<ContainedErrorKind, number> = { sampler: 0, processor: 0, hook: 0, propagator: 0 }

/**
 * Records that user-supplied code (a sampler, span processor, hook or
 * propagator) threw and was contained: counted (see Tracer#stats().errors),
 * reported once per kind as a SpanlineWarning, details in NODE_DEBUG=spanline.
 */
export function containError(kind: ContainedErrorKind, what: string, error: unknown): void {
  containedErrors[kind]++
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  warnOnce(`SPANLINE_${kind.toUpperCase()}_THREW`, `${what} threw (${message}); it was skipped and the request went on. ` +
    'Further failures of this kind are only counted (tracer.stats().errors); NODE_DEBUG=spanline shows each one')
  debug('%s threw: %o', what, error)
}

/** Contained failures of user-supplied code in this process, by kind (a copy). */
export function containedErrorCounts(): Record<ContainedErrorKind, number> {
  return { ...containedErrors }
}
