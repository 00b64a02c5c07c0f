import type { IncomingMessage, ServerResponse } from 'node:http'
import { getServerSpan, runWithContext, type HttpServerTracing } from '@spanline/core'
import { debug } from './diag.ts'
import type { ModuleTarget } from './module-hooks.ts'
import { EXPRESS_RANGE } from './version.ts'
// Builtins by process.getBuiltinModule(), not ES imports: start-up time (see @spanline/core's src/diag.ts).
const { createRequire } = process.getBuiltinModule('node:module')

const requireAdapter = createRequire(import.meta.url)

type Handle = (this: object, req: IncomingMessage, res: ServerResponse, callback: unknown) => unknown

/**
 * Express 4 and 5. Every app's requests enter through `app.handle()`, which
 * each app copies from `express.application` when it is created; so that
 * one method is wrapped, on the module's exports, before the app can create
 * any app. The wrapper gives the app @spanline/express's route and error
 * capture (its router-layer patch and error tail) and runs the request in
 * its SERVER span: the one the node:http layer already started (then it
 * only enriches it), or a new one when that layer is disabled. The
 * adapter's `tracing()` middleware is not inserted: the span already
 * exists when the app sees the request.
 */
export function expressTarget(tracing: HttpServerTracing): ModuleTarget {
  return {
    name: 'express',
    entry: 'index.js',
    range: EXPRESS_RANGE,
    patch(express: unknown, version: string): void {
      const proto = (express as { application?: { handle?: unknown } }).application
      if (proto === undefined || typeof proto.handle !== 'function') {
        debug('express %s has no application.handle(); not instrumented', version)
        return
      }
      // The adapter is loaded with the framework, not with the preload: an
      // app that never loads Express never loads @spanline/express.
      const { instrumentExpressApp } = requireAdapter('@spanline/express') as typeof import('@spanline/express')
      const handle = proto.handle as Handle
      proto.handle = function handleTraced(this: object, req: IncomingMessage, res: ServerResponse, callback: unknown): unknown {
        instrumentExpressApp(this)
        // Already inside the request's span (the node:http layer ran first): nothing to start.
        if (getServerSpan(req) !== undefined) return handle.call(this, req, res, callback)
        return runWithContext(tracing.start(req, res), callHandle, handle, this, req, res, callback)
      } satisfies Handle
      debug('express %s: instrumented', version)
    },
  }
}

function callHandle(handle: Handle, app: object, req: IncomingMessage, res: ServerResponse, callback: unknown): unknown {
  return handle.call(app, req, res, callback)
}
