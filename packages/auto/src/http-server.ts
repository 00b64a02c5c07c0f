import type { IncomingMessage, ServerResponse } from 'node:http'
import { runWithContext, type Context, type HttpServerTracing } from '@spanline/core'
import { debug } from './diag.ts'

type Emit = (this: unknown, event: string | symbol, ...args: unknown[]) => boolean

/**
 * Every incoming request on a node:http or node:https server gets its
 * SERVER span (core's HttpServerTracing), active while the server's
 * 'request' listeners run, and so in everything they start, across awaits.
 *
 * Mechanism: `emit` of net.Server.prototype, which http.Server and
 * https.Server (through tls.Server) both inherit, is wrapped; for a
 * 'request' event carrying an http.IncomingMessage only, the original emit
 * runs inside `runWithContext(tracing.start(req, res), ...)`. Every other
 * event (and http2's compatibility 'request', whose request is not an
 * IncomingMessage) is passed straight on. net.Server rather than the two
 * servers' prototypes: reaching https.Server would load node:https, hence
 * node:tls and node:crypto, at start-up (some 17 ms on Node 24) for apps that
 * may never serve https. Rejected: the `http.server.request.start` channel
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
  const { IncomingMessage } = process.getBuiltinModule('node:http')
  const proto = process.getBuiltinModule('node:net').Server.prototype as unknown as { emit: Emit }
  const emit = proto.emit
  proto.emit = function emitTraced(this: unknown, event: string | symbol, req?: unknown, res?: unknown): boolean {
    if (event !== 'request' || !(req instanceof IncomingMessage)) return Reflect.apply(emit, this, arguments) as boolean
    let context: Context
    try {
      context = tracing.start(req as IncomingMessage, res as ServerResponse)
    } catch (err) {
      debug('could not start the SERVER span; request handled untraced: %o', err)
      return Reflect.apply(emit, this, arguments) as boolean
    }
    // Node emits 'request' with the request and response only, passed on by
    // name. `arguments` is only read here and handed to Reflect.apply above,
    // so V8's optimised code never makes the object; passed to another
    // function, it would be made on every call.
    if (arguments.length === 3) return runWithContext(context, emitRequest, emit, this, req, res)
    const args: unknown[] = [event, req, res]
    for (let i = 3; i < arguments.length; i++) args.push(arguments[i])
    return runWithContext(context, Reflect.apply, emit, this, args) as boolean
  } as Emit
}

function emitRequest(emit: Emit, server: unknown, req: unknown, res: unknown): boolean {
  return emit.call(server, 'request', req, res)
}
