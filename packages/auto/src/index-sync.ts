// @spanline/auto where require(esm) exists (Node >= 20.19, 22.12, 23): the
// package's "module-sync" export, so `--import @spanline/auto`,
// `--require @spanline/auto` and `import '@spanline/auto'` all land here.
// It loads start.ts and the packages behind it with require() instead of
// static imports: the same ES modules, the same instances, but loaded
// synchronously. On Node 20, an import graph is loaded asynchronously, one
// file read at a time through the thread pool; for the ~60 small files of the
// preload that waiting added ~10 ms to every `--import` start-up over what
// `--require` took. Node without require(esm) gets index.ts (static imports).
import type * as Start from './start.ts'
// Builtins by process.getBuiltinModule(), not ES imports: start-up time (see @spanline/core's src/diag.ts).
const { createRequire } = process.getBuiltinModule('node:module')

const start: typeof Start = createRequire(import.meta.url)('./start.js')

/**
 * The tracer the preload made global (configured by the OTEL_* variables),
 * for spans of your own: `tracer.trace('charge card', fn)`.
 */
export const tracer: typeof Start.tracer = start.tracer

/**
 * Exports the spans still queued and stops the tracer: call it from your own
 * SIGTERM handler before exiting (see start.ts).
 */
export const shutdown: typeof Start.shutdown = start.shutdown
