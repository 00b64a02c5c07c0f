import type { HttpServerOptions } from '@spanline/core'
import { debug } from './diag.ts'
import type { ModuleTarget } from './module-hooks.ts'
import { KOA_RANGE } from './version.ts'
// Builtins by process.getBuiltinModule(), not ES imports: start-up time (see @spanline/core's src/diag.ts).
const { createRequire } = process.getBuiltinModule('node:module')

const requireAdapter = createRequire(import.meta.url)

type Callback = (this: { middleware?: unknown }, ...args: unknown[]) => unknown

/**
 * Koa 2 and 3. Every app turns its middleware list into a request listener
 * in `callback()` (`app.listen()` calls it too), so `Application.prototype.callback`
 * is wrapped to put @spanline/koa's middleware at the front of the app's
 * list first, exactly where `app.use(tracing())` would put it by hand. That
 * middleware enriches the node:http layer's span (route from @koa/router,
 * errors) or, with that layer disabled, starts it. An app that also has
 * `app.use(tracing())` runs both; the second finds the span and only enriches.
 */
export function koaTarget(options: HttpServerOptions): ModuleTarget {
  return {
    name: 'koa',
    entry: 'lib/application.js',
    range: KOA_RANGE,
    patch(Koa: unknown, version: string): void {
      const proto = (Koa as { prototype?: { callback?: unknown } } | undefined)?.prototype
      if (proto === undefined || typeof proto.callback !== 'function') {
        debug('koa %s has no Application.prototype.callback(); not instrumented', version)
        return
      }
      // The adapter is loaded with the framework, not with the preload.
      const { tracing } = requireAdapter('@spanline/koa') as typeof import('@spanline/koa')
      const middleware = tracing(options)
      const callback = proto.callback as Callback
      proto.callback = function callbackTraced(this: { middleware?: unknown }): unknown {
        const list = this.middleware
        if (Array.isArray(list) && list[0] !== middleware) list.unshift(middleware)
        return Reflect.apply(callback, this, arguments)
      }
      debug('koa %s: instrumented', version)
    },
  }
}
