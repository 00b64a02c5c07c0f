import type { IncomingMessage, ServerResponse } from 'node:http'
import { runWithContext, type Context, type HttpServerTracing } from '@spanline/core'
import { debug } from './diag.ts'

type Emit = (this: unknown, event: string | symbol, ...args: unknown[]) => boolean

/**
 * Every incoming request on a node:http or node:https server gets its
 * SERVER span (core's HttpServerTracing), active while the server's
 * 'request' listeners run, and so in everything they start, across awaits.
 *
 * Mechanism: `emit` of http.Server.prototype and https.Server.prototype is
 * wrapped; for the 'request' event only, the original emit runs inside
 * `runWithContext(tracing.start(req, res), ...)`. Every other event is
 * passed straight on. Rejected: the `http.server.request.start` channel
 * plus `AsyncLocalStorage#enterWith()`: the channel fires inside the
 * parser's callback, so the context would stay entered for the rest of that
 * tick (the next pipelined request on the socket, anything else the parser
 * runs) rather than for the listener's call alone, and enterWith() behaves
 * differently once Node's AsyncContextFrame replaces async_hooks.
 */
export function installHttpServer(tracing: HttpServerTracing): void {
  // process.getBuiltinModule, not `import http from 'node:http'`: an ES
  // import builds the builtin's ESM facade, which reads every export, and
  // node:http's lazy WebSocket getters (Node 22+) then load all of undici
  // (some 30 ms of start-up on Node 24).
  wrapEmit(process.getBuiltinModule('node:http').Server.prototype as unknown as { emit: Emit }, tracing)
  wrapEmit(process.getBuiltinModule('node:https').Server.prototype as unknown as { emit: Emit }, tracing)
}

function wrapEmit(proto: { emit: Emit }, tracing: HttpServerTracing): void {
  const emit = proto.emit
  proto.emit = function emitTraced(this: unknown, event: string | symbol, req?: unknown, res?: unknown): boolean {
    if (event !== 'request') return Reflect.apply(emit, this, arguments) as boolean
    let context: Context
    try {
      context = tracing.start(req as IncomingMessage, res as ServerResponse)
    } catch (err) {
      debug('could not start the SERVER span; request handled untraced: %o', err)
      return Reflect.apply(emit, this, arguments) as boolean
    }
    return runWithContext(context, Reflect.apply, emit, this, arguments) as boolean
  } as Emit
}
