/**
 * node:http and node:https requests.
 *
 * Where Node publishes `http.client.request.created` (nodejs/node#55586:
 * Node 24, and the 22/23 lines that have it), it is used: Node publishes it at
 * the end of the ClientRequest constructor, in the caller's context, before
 * the headers are written, so headers can still be set. Older lines (Node 20)
 * publish only `http.client.request.start`, from ClientRequest#_finish, after
 * the headers are stored: too late to add one. There, and only there,
 * `request` and `get` of node:http and node:https are wrapped (the one patch
 * Spanline allows), and the ESM named exports are re-synced so that
 * `import { request } from 'node:http'` sees the wrapper too.
 *
 * Either way, the rest goes through events and channels that exist on every
 * supported line: `http.client.response.finish` (status, protocol, peer),
 * and on the request, listeners that change nothing for the app: errors
 * through `errorMonitor` (an app without an 'error' listener still crashes as
 * it would), 'timeout', and 'close'. No 'response' listener: with one, Node
 * would stop discarding responses the app ignores.
 */
import type { ClientRequest, IncomingMessage } from 'node:http'
import { CALL_ABORTED, type Getter, type HttpClientCall, type HttpClientTracing, type Setter } from '@spanline/core'
// Builtins by process.getBuiltinModule(), not ES imports: start-up time (see @spanline/core's src/diag.ts).
const { errorMonitor } = process.getBuiltinModule('node:events')
const { subscribe, unsubscribe } = process.getBuiltinModule('node:diagnostics_channel')
const { syncBuiltinESMExports } = process.getBuiltinModule('node:module')
const { debuglog } = process.getBuiltinModule('node:util')

const http = process.getBuiltinModule('node:http')

const debug = debuglog('spanline')

const calls = new WeakMap<ClientRequest, HttpClientCall>()
let tracing: HttpClientTracing | undefined

/** How node:http is being followed: through the channel, or through wraps. */
export type NodeHttpMode = 'channel' | 'wrap'

/**
 * Whether this Node publishes `http.client.request.created`. Detected from
 * the ClientRequest constructor itself rather than from a version table, so
 * backports count.
 */
export function hasRequestCreatedChannel(): boolean {
  try {
    return Function.prototype.toString.call(http.ClientRequest).includes('onClientRequestCreatedChannel')
  } catch {
    return false
  }
}

let forcedMode: NodeHttpMode | undefined

/** For tests: use `mode` at the next install whatever Node offers (undefined: detect). */
export function forceNodeHttpMode(mode: NodeHttpMode | undefined): void {
  forcedMode = mode
}

const requestHeaders: Getter = {
  get(carrier: unknown, name: string): string | string[] | undefined {
    const value = (carrier as ClientRequest).getHeader(name)
    if (value === undefined) return undefined
    return Array.isArray(value) ? value : String(value)
  },
}

/** A response's headers, every value of each (Node keeps repeated lines apart in headersDistinct). */
const distinctHeaders: Getter = {
  get(carrier: unknown, name: string): string[] | undefined {
    return (carrier as IncomingMessage).headersDistinct[name]
  },
}

const setRequestHeader: Setter = {
  set(carrier: unknown, name: string, value: string): void {
    const req = carrier as ClientRequest
    // Headers given as an array, or with `Expect`, are written by the
    // constructor: nothing can be added any more.
    if (req.headersSent) {
      debug('%s not sent: the request headers were already written (array headers or Expect)', name)
      return
    }
    req.setHeader(name, value)
  },
}

// Node 24 keeps "host[:port]" (port only when not the default) under a
// private symbol; older lines keep no port on the request at all.
let kAuthority: symbol | null | undefined

function authorityOf(req: ClientRequest): string {
  if (kAuthority === undefined) {
    kAuthority = Object.getOwnPropertySymbols(req).find((s) => s.description === 'kAuthority') ?? null
  }
  if (kAuthority !== null) {
    const authority = (req as unknown as Record<symbol, unknown>)[kAuthority]
    if (typeof authority === 'string' && authority !== '') return authority
  }
  // The Host header carries the port when it is not the default, unless the
  // caller replaced it with another host.
  const host = bracketed(req.host)
  const header = req.getHeader('host')
  if (typeof header === 'string' && (header === host || header.startsWith(host + ':'))) return header
  return host
}

function bracketed(host: string): string {
  return host.includes(':') && host.charCodeAt(0) !== 0x5b ? `[${host}]` : host
}

/** `scheme://[REDACTED:REDACTED@]host[:port]/path?query` as called. */
function urlOf(req: ClientRequest, authority: string | undefined, credentials: boolean): string {
  const path = req.path
  // A request through a proxy in absolute form already holds the whole URL.
  if (path.charCodeAt(0) !== 0x2f && path.includes('://')) return path
  // Credentials (user:pass@ or `auth`) only show that some were given; they are
  // replaced before reaching url.full (redactUrl).
  return (req.protocol ?? 'http:') + '//' + (credentials ? 'REDACTED:REDACTED@' : '') + (authority ?? authorityOf(req)) + path
}

function startCall(req: ClientRequest, authority: string | undefined, credentials: boolean): void {
  const t = tracing
  if (t === undefined || calls.has(req)) return
  try {
    const call = t.start(req.method, urlOf(req, authority, credentials), req, requestHeaders, setRequestHeader)
    if (call === undefined) return
    calls.set(req, call)
    req.on(errorMonitor, onRequestError)
    req.once('timeout', onRequestTimeout)
    req.once('close', onRequestClose)
  } catch (err) {
    debug('node:http request not traced: %o', err)
  }
}

function onRequestError(this: ClientRequest, error: unknown): void {
  calls.get(this)?.fail(error)
}

function onRequestTimeout(this: ClientRequest): void {
  calls.get(this)?.timedOut()
}

/**
 * The request closes after the response has been read, or when the call
 * failed. A response still open (the body cut short, or not read yet when
 * the request was destroyed) ends the span when it closes itself.
 */
function onRequestClose(this: ClientRequest): void {
  try {
    const res = (this as ClientRequest & { res?: IncomingMessage | null }).res ?? null
    if (res !== null && !res.closed) {
      res.once('close', onResponseClose)
      return
    }
    finish(this, res)
  } catch (err) {
    debug('node:http close handler failed: %o', err)
  }
}

function onResponseClose(this: IncomingMessage): void {
  try {
    const req = (this as IncomingMessage & { req?: ClientRequest }).req
    if (req !== undefined) finish(req, this)
  } catch (err) {
    debug('node:http response close handler failed: %o', err)
  }
}

function finish(req: ClientRequest, res: IncomingMessage | null): void {
  const call = calls.get(req)
  if (call === undefined) return
  calls.delete(req)
  if (res === null) {
    const socket = req.socket
    if (socket != null) call.peer(socket.remoteAddress, socket.remotePort)
    // Closed with neither a response nor an error: the caller's req.abort().
    call.end(CALL_ABORTED)
  } else if (!res.complete) {
    // Cut short: a reset (res.errored), or the app destroyed the response.
    call.end(res.errored ?? CALL_ABORTED)
  } else call.end()
}

function onResponse(message: unknown): void {
  try {
    const { request, response } = message as { request: ClientRequest; response: IncomingMessage }
    const call = calls.get(request)
    if (call === undefined) return
    call.response(response.statusCode ?? 0, response.httpVersion, response, distinctHeaders)
    const socket = response.socket
    if (socket != null) call.peer(socket.remoteAddress, socket.remotePort)
  } catch (err) {
    debug('http.client.response.finish handler failed: %o', err)
  }
}

function onRequestCreated(message: unknown): void {
  if (tracing === undefined) return
  startCall((message as { request: ClientRequest }).request, undefined, false)
}

// ---- The wrap, for Node lines without http.client.request.created ----

type RequestFn = (this: unknown, input?: unknown, options?: unknown, callback?: unknown) => ClientRequest

interface Wrap {
  readonly module: Record<string, unknown>
  readonly originalRequest: RequestFn
  readonly originalGet: unknown
  request: RequestFn | undefined
  get: RequestFn | undefined
  /** False once uninstalled: a wrapper left in place (someone wrapped on top of it) then passes through. */
  active: boolean
}

let wraps: Wrap[] = []

/** The port the caller asked for, as Node computes it: options.port, else the URL's, else the agent's default. */
function requestedAuthority(req: ClientRequest, input: unknown, options: unknown): { authority: string; credentials: boolean } {
  let url: URL | undefined
  if (typeof input === 'string') {
    try {
      url = new URL(input)
    } catch {
      url = undefined
    }
  } else if (input instanceof URL) url = input
  const opts = (url === undefined ? input : options) as { port?: unknown; auth?: unknown; defaultPort?: unknown } | null | undefined
  const o = opts !== null && typeof opts === 'object' ? opts : undefined
  const port = o?.port || url?.port || o?.defaultPort || (req as { agent?: { defaultPort?: unknown } }).agent?.defaultPort
  const https = req.protocol === 'https:'
  const host = bracketed(req.host)
  const authority = port && Number(port) !== (https ? 443 : 80) ? `${host}:${port}` : host
  const credentials = Boolean(o?.auth) || (url !== undefined && (url.username !== '' || url.password !== ''))
  return { authority, credentials }
}

function wrapModule(module: Record<string, unknown>): Wrap {
  const wrap: Wrap = { module, originalRequest: module.request as RequestFn, originalGet: module.get, request: undefined, get: undefined, active: true }
  const originalRequest = wrap.originalRequest
  // Three explicit parameters: request(url[, options][, callback]) takes at
  // most three, and Node treats a missing argument and undefined alike.
  const request: RequestFn = function request(this: unknown, input, options, callback) {
    const req = originalRequest.call(this, input, options, callback)
    if (wrap.active && tracing !== undefined) {
      try {
        const { authority, credentials } = requestedAuthority(req, input, options)
        startCall(req, authority, credentials)
      } catch (err) {
        debug('node:http request not traced: %o', err)
      }
    }
    return req
  }
  // Node's own get() calls the module's inner request() and end()s at once,
  // before a header could be added: so get() is rebuilt on the wrapped
  // request(), exactly as Node writes it.
  const get: RequestFn = function get(this: unknown, input, options, callback) {
    const req = request.call(this, input, options, callback)
    req.end()
    return req
  }
  wrap.request = request
  wrap.get = get
  return wrap
}

// node:https is taken here, only where its functions are wrapped (Node 20):
// loading it loads node:tls and node:crypto, some 17 ms of start-up on Node
// 24, where the channel covers https requests without it.
function installWraps(): void {
  for (const module of [http, process.getBuiltinModule('node:https')] as unknown as Record<string, unknown>[]) {
    const wrap = wrapModule(module)
    module.request = wrap.request
    module.get = wrap.get
    wraps.push(wrap)
  }
  syncBuiltinESMExports()
}

function uninstallWraps(): void {
  for (const wrap of wraps) {
    const module = wrap.module
    // Restore only what is still ours; a wrapper someone put on top keeps
    // calling ours, which then just passes through.
    wrap.active = false
    if (module.request === wrap.request) module.request = wrap.originalRequest
    else debug('request() was replaced after instrument(); left in place (ours now passes through)')
    if (module.get === wrap.get) module.get = wrap.originalGet
    else debug('get() was replaced after instrument(); left in place (ours now passes through)')
  }
  wraps = []
  syncBuiltinESMExports()
}

let mode: NodeHttpMode | undefined

/** Starts following node:http/https requests, traced with `t`. Returns the mechanism used. */
export function installNodeHttp(t: HttpClientTracing): NodeHttpMode {
  if (mode === undefined) {
    mode = forcedMode ?? (hasRequestCreatedChannel() ? 'channel' : 'wrap')
    if (mode === 'channel') subscribe('http.client.request.created', onRequestCreated)
    else installWraps()
    subscribe('http.client.response.finish', onResponse)
  }
  tracing = t
  return mode
}

/** Stops: unsubscribes, restores request/get and re-syncs the ESM exports. Requests in flight still end their spans. */
export function uninstallNodeHttp(): void {
  if (mode === undefined) return
  if (mode === 'channel') unsubscribe('http.client.request.created', onRequestCreated)
  else uninstallWraps()
  unsubscribe('http.client.response.finish', onResponse)
  mode = undefined
  tracing = undefined
}

/** The mechanism in use, or undefined when not installed. */
export function nodeHttpMode(): NodeHttpMode | undefined {
  return mode
}
