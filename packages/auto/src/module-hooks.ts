/**
 * Finding Express and Koa as they load, however the app loads them.
 *
 * Neither framework announces itself (Fastify does, on its
 * `fastify.initialization` channel), so the preload watches module loading
 * for exactly two files, each package's CommonJS entry module:
 * `express/index.js` and `koa/lib/application.js` (Koa's ESM entry,
 * `dist/koa.mjs`, re-exports that file). When one has been evaluated, its
 * exports are handed to the framework's patch, once.
 *
 * - Where `module.registerHooks()` exists (Node >= 22.15 / 23.5; Node 24),
 *   a synchronous `load` hook sees every module, required or imported. For
 *   the two entry files only, it appends one statement to the source they
 *   were loaded with, which hands `module.exports` to the preload when the
 *   file has run (a load hook sees sources, never exports). Every other
 *   module gets exactly what the next hook returned, the same object.
 *   (`module.register()` would run the hooks on another thread and is
 *   deprecated: DEP0205.)
 * - Elsewhere (Node 20, and 22 before 22.15), `Module.prototype.load` is
 *   wrapped: it is what loads a CommonJS file whether the app requires it or
 *   imports it from ESM (an import does not go through `require` or
 *   `Module._load` on every line, so a require hook alone misses ESM apps).
 *   The wrapper calls the original unchanged, then compares the filename.
 *
 * Either way, a candidate is checked against its package.json (read once
 * per package): the name must match and the version be in the supported
 * range; an unknown version is skipped with one debug line, so a future
 * major costs route names, never a broken app. Modules loaded before the
 * preload (require.cache) are patched at install time.
 */
import { debug } from './diag.ts'
import { inRange, type SupportedRange } from './version.ts'
// Builtins by process.getBuiltinModule(), not ES imports: start-up time (see @spanline/core's src/diag.ts).
const Module = process.getBuiltinModule('node:module')
const { sep } = process.getBuiltinModule('node:path')
const { fileURLToPath } = process.getBuiltinModule('node:url')

/** A framework entry module to patch once it has loaded. */
export interface ModuleTarget {
  /** The package name (and its folder under node_modules). */
  readonly name: string
  /** The entry module, relative to the package folder, with `/`. */
  readonly entry: string
  readonly range: SupportedRange
  /** Called once with the entry module's exports. Never throws into the app (errors are caught). */
  readonly patch: (exports: unknown, version: string) => void
}

interface LoadResult {
  readonly format?: string | null | undefined
  readonly source?: string | ArrayBuffer | NodeJS.TypedArray | null | undefined
}
type NextLoad = (url: string, context?: unknown) => LoadResult
type LoadHook = (url: string, context: unknown, nextLoad: NextLoad) => LoadResult
type RegisterHooks = (hooks: { load: LoadHook }) => unknown

export type HookMechanism = 'module.registerHooks' | 'Module.prototype.load'

const kLoaded = Symbol.for('spanline.auto.loaded')

interface Candidate {
  readonly target: ModuleTarget
  readonly urlSuffix: string
  readonly pathSuffix: string
}

/** Watches module loading for `targets`; returns the mechanism used. */
export function installModuleHooks(targets: readonly ModuleTarget[]): HookMechanism {
  const watcher = new EntryWatcher(targets)
  let used: HookMechanism = 'Module.prototype.load'
  const registerHooks = (Module as unknown as { registerHooks?: RegisterHooks }).registerHooks
  if (typeof registerHooks === 'function') {
    try {
      Object.defineProperty(globalThis, kLoaded, { value: watcher.onEvaluated, configurable: true, enumerable: false, writable: false })
      registerHooks.call(Module, { load: watcher.loadHook })
      used = 'module.registerHooks'
    } catch (err) {
      debug('module.registerHooks() failed (%o); wrapping Module.prototype.load instead', err)
    }
  }
  if (used === 'Module.prototype.load') watcher.wrapLoad()
  watcher.patchLoaded()
  return used
}

/** The state behind both mechanisms (exported for unit tests). */
export class EntryWatcher {
  readonly #candidates: readonly Candidate[]
  /** Package folder → the target it holds, or null when it is not one we patch. */
  readonly #packages = new Map<string, { target: ModuleTarget; version: string } | null>()
  readonly #patched = new WeakSet<object>()

  constructor(targets: readonly ModuleTarget[]) {
    this.#candidates = targets.map((target) => ({
      target,
      urlSuffix: `/node_modules/${target.name}/${target.entry}`,
      pathSuffix: `${sep}node_modules${sep}${target.name}${sep}${target.entry.split('/').join(sep)}`,
    }))
  }

  /** The registerHooks `load` hook. */
  readonly loadHook: LoadHook = (url, context, nextLoad) => {
    const result = nextLoad(url, context)
    const candidate = this.#byUrl(url)
    if (candidate === undefined) return result
    try {
      const format = result.format
      if (format !== undefined && format !== null && format !== 'commonjs') return result
      const filename = fileURLToPath(url)
      const found = this.#check(candidate, filename)
      if (found === undefined) return result
      if (result.source === undefined || result.source === null) {
        debug('%s: no source from the load hooks before ours; not instrumented', found.target.name)
        return result
      }
      const source = typeof result.source === 'string' ? result.source : Buffer.from(result.source as Uint8Array).toString('utf8')
      // Appended on a line of its own: every original line keeps its number.
      return { ...result, source: `${source}\n;globalThis[Symbol.for('spanline.auto.loaded')]?.(module.exports, ${JSON.stringify(filename)});\n` }
    } catch (err) {
      debug('load hook for %s failed; module loaded unchanged: %o', url, err)
      return result
    }
  }

  /** Called by the statement appended to an entry module, after it has run. */
  readonly onEvaluated = (exports: unknown, filename: unknown): void => {
    if (typeof filename !== 'string') return
    const candidate = this.#byPath(filename)
    if (candidate !== undefined) this.#patch(candidate, filename, exports)
  }

  /** Wraps Module.prototype.load (Node without registerHooks). */
  wrapLoad(): void {
    const proto = Module.prototype as unknown as { load: (this: { exports: unknown }, filename: string) => unknown }
    const load = proto.load
    const watcher = this
    proto.load = function loadWithSpanline(this: { exports: unknown }, filename: string): unknown {
      const result = Reflect.apply(load, this, arguments)
      if (typeof filename === 'string') {
        const candidate = watcher.#byPath(filename)
        if (candidate !== undefined) watcher.#patch(candidate, filename, this.exports)
      }
      return result
    }
  }

  /** Patches the entry modules already in require.cache (loaded before the preload). */
  patchLoaded(): void {
    const cache = (Module as unknown as { _cache?: Record<string, { loaded?: boolean; exports?: unknown } | undefined> })._cache
    if (cache === undefined) return
    for (const filename of Object.keys(cache)) {
      const candidate = this.#byPath(filename)
      const mod = cache[filename]
      if (candidate !== undefined && mod?.loaded === true) this.#patch(candidate, filename, mod.exports)
    }
  }

  #byUrl(url: string): Candidate | undefined {
    for (const c of this.#candidates) if (url.endsWith(c.urlSuffix)) return c
    return undefined
  }

  #byPath(filename: string): Candidate | undefined {
    for (const c of this.#candidates) if (filename.endsWith(c.pathSuffix)) return c
    return undefined
  }

  #patch(candidate: Candidate, filename: string, exports: unknown): void {
    try {
      if ((typeof exports !== 'function' && typeof exports !== 'object') || exports === null || this.#patched.has(exports)) return
      const found = this.#check(candidate, filename)
      if (found === undefined) return
      this.#patched.add(exports)
      found.target.patch(exports, found.version)
    } catch (err) {
      debug('%s: could not instrument (%o); its requests still get node:http SERVER spans', candidate.target.name, err)
    }
  }

  /** The package's name and version, checked once per package folder. */
  #check(candidate: Candidate, filename: string): { target: ModuleTarget; version: string } | undefined {
    const dir = filename.slice(0, filename.length - candidate.pathSuffix.length) + `${sep}node_modules${sep}${candidate.target.name}`
    let found = this.#packages.get(dir)
    if (found === undefined) {
      found = null
      const target = candidate.target
      try {
        // node:fs by process.getBuiltinModule: an ES import of it would build its
        // ESM facade (every export read) at every start-up, for this one call.
        const pkg = JSON.parse(process.getBuiltinModule('node:fs').readFileSync(dir + sep + 'package.json', 'utf8')) as { name?: unknown; version?: unknown }
        if (pkg.name !== target.name) {
          // Some other package in a folder of that name: not ours to touch.
        } else if (!inRange(pkg.version, target.range)) {
          debug('%s %s at %s is outside the supported range %s; not instrumented (its requests still get node:http SERVER spans)',
            target.name, String(pkg.version), dir, target.range.label)
        } else {
          found = { target, version: pkg.version as string }
        }
      } catch (err) {
        debug('%s: cannot read %s%spackage.json (%s); not instrumented', target.name, dir, sep, (err as Error).message)
      }
      this.#packages.set(dir, found)
    }
    return found ?? undefined
  }
}
