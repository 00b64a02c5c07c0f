// Builtins by process.getBuiltinModule(), not ES imports: start-up time (see @spanline/core's src/diag.ts).
const { debuglog, format } = process.getBuiltinModule('node:util')

/**
 * The preload's own diagnostics, following core's (diag.ts there): a
 * configuration problem is reported once per distinct message as a
 * `SpanlineWarning` process warning (stderr by default) and on the
 * `spanline:diagnostic` channel; details go to `debug`.
 *
 * OTEL_LOG_LEVEL (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/)
 * maps onto that: `none` and `error` keep Spanline's warnings off stderr
 * (they stay on the channel), `debug`, `verbose` and `all` print the
 * preload's debug lines on stderr. Core's per-request debug output is
 * Node's debuglog, which Node reads from NODE_DEBUG before any preload runs:
 * NODE_DEBUG=spanline is the only switch for it.
 */
export const LOG_LEVELS = ['none', 'error', 'warn', 'info', 'debug', 'verbose', 'all'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

const nodeDebug = debuglog('spanline')
let verbose = false

/** A debug line: on stderr at OTEL_LOG_LEVEL=debug, else through NODE_DEBUG=spanline. */
export function debug(message: string, ...args: unknown[]): void {
  if (verbose) process.stderr.write(`spanline debug: ${format(message, ...args)}\n`)
  else nodeDebug(message, ...args)
}

/** Core's: once per process, a SpanlineWarning and a `spanline:diagnostic` message. */
export { warnOnce } from '@spanline/core'

/**
 * Applies OTEL_LOG_LEVEL. For `none` and `error`, process.emitWarning is
 * wrapped to drop SpanlineWarnings only (every other warning passes through
 * untouched): Node decides whether to print warnings from its command line,
 * before any preload runs, so there is no other switch to turn.
 */
export function applyLogLevel(level: LogLevel): void {
  verbose = level === 'debug' || level === 'verbose' || level === 'all'
  if (level !== 'none' && level !== 'error') return
  const original = process.emitWarning
  process.emitWarning = function emitWarningWithoutSpanline(this: unknown, warning: string | Error, options?: unknown): void {
    if (isSpanlineWarning(warning, options)) return
    Reflect.apply(original, this, arguments)
  } as typeof process.emitWarning
}

function isSpanlineWarning(warning: string | Error, options: unknown): boolean {
  if (options === 'SpanlineWarning') return true
  if (options !== null && typeof options === 'object' && (options as { type?: unknown }).type === 'SpanlineWarning') return true
  return warning instanceof Error && warning.name === 'SpanlineWarning'
}
