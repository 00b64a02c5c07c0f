/**
 * fetch() (and any other undici client in the process) through undici's
 * diagnostics channels: nothing is patched. The same `request` object flows
 * through every `undici:request:*` channel, so a WeakMap keyed by it links
 * them (https://github.com/nodejs/undici/blob/main/docs/docs/api/DiagnosticsChannel.md).
 *
 * - `undici:request:create` is published from the dispatch that fetch() runs
 *   in the caller's async context (also for requests queued behind a busy
 *   connection: the Request is created at dispatch, not when it is sent),
 *   so the active span there is the caller's. `request.addHeader()` still
 *   works there: the headers are written later.
 * - `undici:client:sendHeaders`: the socket, for network.peer.*.
 * - `undici:request:headers`: the status.
 * - `undici:request:trailers`: the body has been fully received (undici
 *   reads it only as fast as the app consumes it, beyond a small buffer):
 *   the span ends here, not at the headers.
 * - `undici:request:error`: a network error, a timeout or an abort.
 */
import type { Getter, HttpClientCall, HttpClientTracing, Setter } from '@spanline/core'
// Builtins by process.getBuiltinModule(), not ES imports: start-up time (see @spanline/core's src/diag.ts).
const { subscribe, unsubscribe } = process.getBuiltinModule('node:diagnostics_channel')
const { debuglog } = process.getBuiltinModule('node:util')

const debug = debuglog('spanline')

/** The fields of undici's internal Request that are read here. */
interface UndiciRequest {
  readonly method: string
  readonly origin: unknown
  readonly path: string
  /** A flat [name, value, name, value, ...] array (undici 6+), or raw `name: value\r\n` lines (older). */
  readonly headers: unknown
  readonly upgrade?: unknown
  addHeader(name: string, value: string): unknown
}

interface SocketLike {
  readonly remoteAddress?: string
  readonly remotePort?: number
  readonly alpnProtocol?: string | false
}

const calls = new WeakMap<object, HttpClientCall>()
let tracing: HttpClientTracing | undefined

const undiciHeaders: Getter = {
  get(carrier: unknown, name: string): string | undefined {
    const headers = (carrier as UndiciRequest).headers
    if (Array.isArray(headers)) {
      for (let i = 0; i + 1 < headers.length; i += 2) {
        const key = String(headers[i])
        if (key.length === name.length && key.toLowerCase() === name) return String(headers[i + 1])
      }
      return undefined
    }
    if (typeof headers === 'string') {
      const lower = headers.toLowerCase()
      const at = lower.startsWith(name + ':') ? 0 : lower.indexOf('\n' + name + ':')
      if (at === -1) return undefined
      const start = at + name.length + (at === 0 ? 1 : 2)
      const end = headers.indexOf('\r\n', start)
      return headers.slice(start, end === -1 ? undefined : end).trim()
    }
    return undefined
  },
}

/** undici's response headers: a flat [name, value, name, value, ...] array of Buffers. Every value of `name`. */
const rawHeaderPairs: Getter = {
  get(carrier: unknown, name: string): string[] | undefined {
    if (!Array.isArray(carrier)) return undefined
    let values: string[] | undefined
    for (let i = 0; i + 1 < carrier.length; i += 2) {
      const key = String(carrier[i])
      if (key.length === name.length && key.toLowerCase() === name) (values ??= []).push(String(carrier[i + 1]))
    }
    return values
  },
}

const undiciAddHeader: Setter = {
  set(carrier: unknown, name: string, value: string): void {
    ;(carrier as UndiciRequest).addHeader(name, value)
  },
}

function onRequestCreate(message: unknown): void {
  const t = tracing
  if (t === undefined) return
  try {
    const request = (message as { request: UndiciRequest }).request
    // Upgrades (WebSocket) and CONNECT tunnels never publish trailers: a span would never end.
    if (calls.has(request) || request.upgrade || request.method === 'CONNECT') return
    const call = t.start(request.method, String(request.origin) + request.path, request, undiciHeaders, undiciAddHeader)
    if (call !== undefined) calls.set(request, call)
  } catch (err) {
    debug('undici:request:create handler failed: %o', err)
  }
}

function onSendHeaders(message: unknown): void {
  try {
    const { request, socket } = message as { request: object; socket: SocketLike | undefined }
    const call = calls.get(request)
    if (call === undefined) return
    call.peer(socket?.remoteAddress, socket?.remotePort, socket?.alpnProtocol === 'h2' ? '2' : '1.1')
  } catch (err) {
    debug('undici:client:sendHeaders handler failed: %o', err)
  }
}

function onHeaders(message: unknown): void {
  try {
    const { request, response } = message as { request: object; response: { statusCode: number; headers: unknown } }
    calls.get(request)?.response(response.statusCode, undefined, response.headers, rawHeaderPairs)
  } catch (err) {
    debug('undici:request:headers handler failed: %o', err)
  }
}

function onTrailers(message: unknown): void {
  try {
    const request = (message as { request: object }).request
    const call = calls.get(request)
    if (call === undefined) return
    calls.delete(request)
    call.end()
  } catch (err) {
    debug('undici:request:trailers handler failed: %o', err)
  }
}

function onError(message: unknown): void {
  try {
    const { request, error } = message as { request: object; error: unknown }
    const call = calls.get(request)
    if (call === undefined) return
    calls.delete(request)
    call.end(error ?? new Error('undici request failed'))
  } catch (err) {
    debug('undici:request:error handler failed: %o', err)
  }
}

const CHANNELS: ReadonlyArray<readonly [string, (message: unknown) => void]> = [
  ['undici:request:create', onRequestCreate],
  ['undici:client:sendHeaders', onSendHeaders],
  ['undici:request:headers', onHeaders],
  ['undici:request:trailers', onTrailers],
  ['undici:request:error', onError],
]

/** Subscribes to undici's channels; calls are traced with `t` until uninstallFetch(). */
export function installFetch(t: HttpClientTracing): void {
  if (tracing === undefined) for (const [name, fn] of CHANNELS) subscribe(name, fn)
  tracing = t
}

/**
 * Unsubscribes. Calls in flight are no longer followed: their spans are
 * never ended, so never exported.
 */
export function uninstallFetch(): void {
  if (tracing === undefined) return
  tracing = undefined
  for (const [name, fn] of CHANNELS) unsubscribe(name, fn)
}
