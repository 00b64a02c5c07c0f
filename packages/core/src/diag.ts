import { debuglog } from 'node:util'

/**
 * Diagnostics. Per-span or per-request trouble goes to `debug`, which costs a
 * boolean check unless NODE_DEBUG=spanline is set (undici and koa do the
 * same). Configuration problems are reported once per distinct message as a
 * process warning: visible on stderr by default, and routable by the app
 * through process.on('warning').
 */
export const debug: ReturnType<typeof debuglog> = debuglog('spanline')

const warned = new Set<string>()

/** Emit `message` once per process as a `SpanlineWarning` with `code`. */
export function warnOnce(code: string, message: string): void {
  const key = code + '\u0000' + message
  if (warned.has(key)) return
  warned.add(key)
  process.emitWarning(message, { type: 'SpanlineWarning', code })
}
