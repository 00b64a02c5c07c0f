import type { AsyncLocalStorage as Storage } from 'node:async_hooks'
import { debug, warnOnce } from './diag.ts'
import { VERSION } from './version.ts'
// Builtins by process.getBuiltinModule(), not ES imports: start-up time (see @spanline/core's src/diag.ts).
const { AsyncLocalStorage } = process.getBuiltinModule('node:async_hooks')

/**
 * Process-wide state, shared by every copy of @spanline/core that gets
 * loaded (two versions in node_modules, or a CJS and an ESM path to the same
 * files). Two AsyncLocalStorage instances would mean a span made active by one
 * copy is invisible to the other, and traces would silently break apart; so
 * the first copy to load creates the store under a Symbol.for() key and every
 * later copy uses it.
 */
export interface Registry {
  /** Version of the copy that created the registry. */
  readonly version: string
  /** The one context store of the process. Values are Context objects. */
  readonly storage: Storage<unknown>
  /** The tracer set with setGlobalTracer(), if any. Typed loosely across copies. */
  tracer: unknown
  /** How many copies of core have attached to this registry. */
  copies: number
}

const kRegistry = Symbol.for('spanline.core')

function attach(): Registry {
  const g = globalThis as { [kRegistry]?: Registry }
  const existing = g[kRegistry]
  if (existing !== undefined) {
    existing.copies++
    if (existing.version !== VERSION) {
      warnOnce('SPANLINE_DUPLICATE_CORE',
        `two versions of @spanline/core are loaded (${existing.version} and ${VERSION}); they share one context store, ` +
        'but install a single version (e.g. dedupe your lock file) to avoid surprises')
    } else {
      debug('a second copy of @spanline/core %s was loaded; sharing the first copy\'s context store', VERSION)
    }
    return existing
  }
  const created: Registry = { version: VERSION, storage: new AsyncLocalStorage(), tracer: undefined, copies: 1 }
  Object.defineProperty(g, kRegistry, { value: created, enumerable: false, configurable: false, writable: false })
  return created
}

export const registry: Registry = attach()
