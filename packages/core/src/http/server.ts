import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { getActiveContext, ROOT_CONTEXT, type Context } from '../context.ts'
import { containError, debug, warnOnce } from '../diag.ts'
import { ERR_INVALID_ARGUMENT, TracingError } from '../errors.ts'
import { registry } from '../global.ts'
import { incomingHeadersGetter } from '../propagation/carrier.ts'
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_HEADER_PREFIX,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_RESPONSE_HEADER_PREFIX,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_PATH,
  ATTR_URL_QUERY,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
  DEFAULT_KNOWN_METHODS,
} from '../semconv.ts'
import { exceptionType, RecordingSpan, type AttributeLead, type AttributeSource, type Span } from '../span.ts'
import { createTracer, ensureGlobalTracer, type Tracer, type TracerOptions } from '../tracer.ts'
import { SpanKind, SpanStatusCode } from '../types.ts'
import { compileIgnore, type IgnoreRule } from './ignore.ts'
import { RequestLead } from './request-lead.ts'
import { DEFAULT_SENSITIVE_QUERY_PARAMS, redactQuery, sensitiveSet } from './redact.ts'
// Builtins by process.getBuiltinModule(), not ES imports: start-up time (see @spanline/core's src/diag.ts).
const { subscribe } = process.getBuiltinModule('node:diagnostics_channel')

export interface HttpServerOptions {
  /**
   * A tracer, or options to create one (`{ serviceName: 'checkout' }`).
   * Default: the global tracer at the time of each request; if none was set,
   * one configured from the OTEL_* environment (see ensureGlobalTracer).
   */
  readonly tracer?: Tracer | TracerOptions
  /** Requests to leave untraced (health checks): paths, globs (`/static/**`), RegExps or predicates. */
  readonly ignore?: IgnoreRule | readonly IgnoreRule[]
  /**
   * Header names to record as `http.request.header.<name>` /
   * `http.response.header.<name>` (string arrays). Nothing is captured unless
   * named here, so `authorization`, `cookie`, `set-cookie` never are by accident.
   */
  readonly captureHeaders?: { readonly request?: readonly string[]; readonly response?: readonly string[] }
  /** Query parameters whose values become REDACTED (default: the semantic conventions' list). */
  readonly sensitiveQueryParams?: readonly string[]
  /** Methods reported as themselves; others become `_OTHER` (default: RFC 9110 + PATCH). */
  readonly knownMethods?: readonly string[]
  /** Called when the span starts, for custom attributes. A throw is caught and reported, never reaches the app. */
  readonly requestHook?: (span: Span, req: IncomingMessage) => void
  /** Called just before the span ends. A throw is caught and reported. */
  readonly responseHook?: (span: Span, req: IncomingMessage, res: ServerResponse) => void
  /** Custom span name, given the method and the route template (undefined when no route matched). */
  readonly spanNameHook?: (req: IncomingMessage, route: string | undefined) => string
}

const OPTION_NAMES = ['tracer', 'ignore', 'captureHeaders', 'sensitiveQueryParams', 'knownMethods', 'requestHook', 'responseHook', 'spanNameHook']

/**
 * The state of one traced request, shared by every layer that touches it (the
 * node:http helper or zero-code preload that started the span, and the
 * framework adapter that knows the route): one SERVER span per request.
 *
 * It is also where the span's HTTP attributes come from (an AttributeSource):
 * what they are made of is kept here when the request starts and ends, and
 * they are made when first needed (see RecordingSpan#deferAttributes).
 * Usually nothing needs them before the protobuf encoder, which has them
 * written into an array of its own (fillAttributes), with a few dozen spans
 * at a time, and the span never gets them. Kept:
 * strings and numbers read from the request, its headers object and the
 * connection's peer; never the request or response themselves, which would
 * then outlive the response.
 */
class ServerRequestState implements AttributeSource {
  // Assigned in the constructor only (see RecordingSpan): one per request.
  // But for one real field: see Context (#onResponseFinish checks instanceof).
  readonly span: Span
  declare readonly context: Context
  declare readonly owner: HttpServerTracing
  declare readonly method: string
  /** The method as the request had it (differs from `method` for one not known: `_OTHER`). */
  declare readonly rawMethod: string
  declare readonly headers: IncomingHttpHeaders
  /** The request target (path and query) and where its `?` is (-1: none). */
  declare readonly target: string
  declare readonly queryAt: number
  declare readonly path: string
  declare readonly httpVersion: string
  /** Whether the connection is TLS (the scheme when no proxy header says otherwise). */
  declare readonly encrypted: boolean
  declare readonly peer: Peer | undefined
  declare route: string | undefined
  /** Asked for the route when the span ends, if none was set: routeSource(routeArg) (see setRouteSource). */
  declare routeSource: ((arg: never) => string | undefined) | undefined
  declare routeArg: unknown
  declare error: unknown
  declare hasError: boolean
  /** The response's status code (undefined: none was sent) and `error.type`, once the request finished. */
  declare status: number | undefined
  declare errorType: string | undefined
  /** 0: the attributes are deferred; 1: deferred, and the request has finished (route and status known); 2: set on the span. */
  declare phase: number
  /**
   * How many attributes the span had once the request's own were set (0
   * when they were not handed over in one step): none of them is one that
   * #finish sets, so only those after them need a duplicate check.
   */
  declare known: number
  /** Set while the span waits for Node's server to finish the response (see watchResponse). */
  declare req: IncomingMessage | undefined
  declare res: ServerResponse | undefined
  /** The next open request on the same connection (pipelining). */
  declare next: ServerRequestState | null

  constructor(span: Span, context: Context, owner: HttpServerTracing, method: string, rawMethod: string, headers: IncomingHttpHeaders,
    target: string, queryAt: number, path: string, httpVersion: string, encrypted: boolean, peer: Peer | undefined) {
    this.span = span
    this.context = context
    this.owner = owner
    this.method = method
    this.rawMethod = rawMethod
    this.headers = headers
    this.target = target
    this.queryAt = queryAt
    this.path = path
    this.httpVersion = httpVersion
    this.encrypted = encrypted
    this.peer = peer
    this.route = undefined
    this.routeSource = undefined
    this.routeArg = undefined
    this.error = undefined
    this.hasError = false
    this.status = undefined
    this.errorType = undefined
    this.phase = SET
    this.known = 0
    this.req = undefined
    this.res = undefined
    this.next = null
  }

  addAttributes(span: RecordingSpan): void {
    addRequestAttributes(this, span)
  }

  fillAttributes(out: Array<string | number>, lead: AttributeLead): number {
    return fillRequestAttributes(this, out, lead)
  }
}

/** ServerRequestState#phase */
const DEFERRED = 0
const DEFERRED_FINISHED = 1
const SET = 2
/**
 * The most attributes a request's span gets from here: 12 of the request,
 * and the route, status code and error type. Deferred only below the span's
 * count limit, so that none is ever dropped late.
 */
const MAX_ATTRIBUTES = 15

/** HttpServerTracing's #addAttributes and #fill, for ServerRequestState (set in its static block). */
let addRequestAttributes: (state: ServerRequestState, span: RecordingSpan) => void
let fillRequestAttributes: (state: ServerRequestState, out: Array<string | number>, lead: AttributeLead) => number

/**
 * Each traced request carries its state under a Symbol.for() key, so every
 * loaded copy of core agrees on which requests already have a span. A
 * property, not a WeakMap: a request is short-lived, and a WeakMap costs an
 * ephemeron entry per request for the garbage collector to trace.
 */
const kState = Symbol.for('spanline.serverRequest')
type TracedRequest = IncomingMessage & { [kState]?: ServerRequestState | undefined }

function stateOf(req: IncomingMessage): ServerRequestState | undefined {
  return (req as TracedRequest)[kState]
}

/**
 * The HTTP server semantics every adapter shares. An adapter calls start()
 * when a request arrives and runs the rest of the request in the context it
 * returns; setRoute() once the router has matched; recordError() for errors
 * the framework sees. The span ends by itself when the response is
 * finished, or when the client goes away first (aborted), so nothing is
 * left open.
 *
 * @example
 * const tracing = new HttpServerTracing({ ignore: '/health' })
 * http.createServer((req, res) => runWithContext(tracing.start(req, res), handle, req, res))
 */
export class HttpServerTracing {
  readonly #tracer: Tracer | undefined
  readonly #ignore: ((path: string, req: unknown) => boolean) | undefined
  readonly #requestHeaders: readonly string[]
  readonly #responseHeaders: readonly string[]
  readonly #sensitive: ReadonlySet<string>
  readonly #knownMethods: ReadonlySet<string>
  /** The attributes requests start with, as made for the last one (see #fill). */
  readonly #lead: RequestLead = new RequestLead()
  /** The last request's method and what it was reported as: Node's parser hands out one string object per method. */
  #lastRawMethod: string = ''
  #lastMethod: string = '_OTHER'
  /**
   * The options of every request's startSpan(), its parent set for the call
   * and reset after: startSpan reads them during the call only (the parent
   * first, before anything that could run user code), so one object serves
   * all requests instead of one made per request.
   */
  readonly #spanOptions: { kind: SpanKind; parent: Context } = { kind: SpanKind.SERVER, parent: ROOT_CONTEXT }
  readonly #requestHook: HttpServerOptions['requestHook']
  readonly #responseHook: HttpServerOptions['responseHook']
  readonly #spanNameHook: HttpServerOptions['spanNameHook']

  constructor(options: HttpServerOptions = {}) {
    if (options === null || typeof options !== 'object') {
      throw new TracingError(ERR_INVALID_ARGUMENT, `tracing options must be an object, got ${String(options)}`)
    }
    for (const key of Object.keys(options)) {
      if (!OPTION_NAMES.includes(key)) {
        throw new TracingError(ERR_INVALID_ARGUMENT, `unknown tracing option "${key}"; known options: ${OPTION_NAMES.join(', ')}`)
      }
    }
    const tracer = options.tracer
    if (tracer !== undefined && (tracer === null || typeof tracer !== 'object')) {
      throw new TracingError(ERR_INVALID_ARGUMENT, 'tracer must be a Tracer (from createTracer()) or tracer options')
    }
    for (const hook of ['requestHook', 'responseHook', 'spanNameHook'] as const) {
      if (options[hook] !== undefined && typeof options[hook] !== 'function') {
        throw new TracingError(ERR_INVALID_ARGUMENT, `${hook} must be a function`)
      }
    }
    // Tracer options: created once here (createTracer validates them).
    this.#tracer = tracer === undefined || typeof (tracer as Tracer).startSpan === 'function' ? tracer as Tracer | undefined : createTracer(tracer as TracerOptions)
    this.#ignore = compileIgnore(options.ignore)
    this.#requestHeaders = headerList(options.captureHeaders?.request, 'captureHeaders.request')
    this.#responseHeaders = headerList(options.captureHeaders?.response, 'captureHeaders.response')
    this.#sensitive = sensitiveSet(stringList(options.sensitiveQueryParams, 'sensitiveQueryParams') ?? DEFAULT_SENSITIVE_QUERY_PARAMS)
    this.#knownMethods = new Set((stringList(options.knownMethods, 'knownMethods') ?? DEFAULT_KNOWN_METHODS).map((m) => m.toUpperCase()))
    this.#requestHook = options.requestHook
    this.#responseHook = options.responseHook
    this.#spanNameHook = options.spanNameHook
  }

  /** The tracer requests are traced with: the one given (or made from options), else the global one. */
  get tracer(): Tracer {
    return this.#tracer ?? ensureGlobalTracer()
  }

  /**
   * Starts the SERVER span of `req` (continuing the trace in its headers) and
   * returns the context to run the request in: the span active, or tracing
   * suppressed for an ignored request. When another layer already started a
   * span for this request, returns that one's context instead.
   */
  start(req: IncomingMessage, res: ServerResponse): Context {
    const existing = stateOf(req)
    if (existing !== undefined) return existing.context
    // Express rewrites req.url below a mount path and keeps the original.
    const url = (req as { originalUrl?: unknown }).originalUrl
    const target = typeof url === 'string' ? url : req.url ?? '/'
    const q = target.indexOf('?')
    const path = q === -1 ? target : target.slice(0, q)
    if (this.#ignore !== undefined && this.#ignore(path, req)) {
      // Ignored: no span, and nothing made while handling it creates spans either.
      return getActiveContext().withSuppressed(true)
    }
    const tracer = this.tracer
    // Read once: on Node 24 req.headers is a getter (built from rawHeaders on first use).
    const headers = req.headers
    const parent = tracer.extract(headers, ROOT_CONTEXT, incomingHeadersGetter)
    const raw = req.method ?? 'GET'
    let method = this.#lastMethod
    if (raw !== this.#lastRawMethod) {
      method = this.#knownMethods.has(raw) ? raw : '_OTHER'
      this.#lastRawMethod = raw
      this.#lastMethod = method
    }
    const spanOptions = this.#spanOptions
    spanOptions.parent = parent
    const span = tracer.startSpan(method === '_OTHER' ? 'HTTP' : method, spanOptions)
    // Not kept: it would hold the last request's context alive.
    spanOptions.parent = ROOT_CONTEXT
    const context = parent.withSpan(span)
    const recording = span.isRecording()
    const socket = req.socket as (OpenSocket & PeerSocket) | null
    const state = new ServerRequestState(span, context, this, method, raw, headers, target, q, path, req.httpVersion,
      (socket as TLSSocket | null)?.encrypted === true, recording ? peerOf(socket) : undefined)
    ;(req as TracedRequest)[kState] = state
    if (recording) {
      // res.writeHead(status, headers) (Fastify, many frameworks) writes its
      // headers without storing them unless the response already has a header
      // store; making one here merges them into it (the bytes on the wire are
      // the same), so the response headers can be captured at the end.
      if (this.#responseHeaders.length > 0 && !res.headersSent) {
        res.setHeader(PRIMING_HEADER, '')
        res.removeHeader(PRIMING_HEADER)
      }
      // The attributes wait for the exporter (see ServerRequestState), unless
      // request headers are to be captured (read now: the request's own
      // values) or the span cannot wait.
      if (this.#requestHeaders.length === 0 && span instanceof RecordingSpan && span.deferAttributes(state, MAX_ATTRIBUTES)) state.phase = DEFERRED
      else {
        this.#addAttributes(state, span, false)
        for (const name of this.#requestHeaders) {
          const distinct = req.headersDistinct[name]
          if (distinct !== undefined) span.setAttribute(ATTR_HTTP_REQUEST_HEADER_PREFIX + name, distinct)
        }
      }
      if (this.#requestHook !== undefined) callHook('requestHook', this.#requestHook, span, req)
      if (socket !== null && drivenByNodeServer(res)) {
        if (!subscribed) {
          subscribed = true
          subscribe('http.server.response.finish', HttpServerTracing.#onResponseFinish)
        }
        // The first request on this connection: watch it close.
        if (watchResponse(state, req, res, socket)) socket.on('close', HttpServerTracing.#onSocketClose)
        // Started late (after an await in an earlier hook) on a connection
        // already gone: its close may have been emitted. The span ends now.
        if (socket.destroyed) HttpServerTracing.#onSocketClose.call(socket)
      }
      // Anything else (an HTTP/2 stream, a test double such as Fastify's
      // inject()): its own 'close'. on(), not once(): 'close' is emitted once
      // per response, and once() would wrap the listener in a closure per request.
      else res.on('close', HttpServerTracing.#onClose)
    }
    return context
  }

  static {
    addRequestAttributes = (state, span) => state.owner.#addAttributes(state, span, true)
    fillRequestAttributes = (state, out, lead) => state.owner.#fill(state, out, state.phase === DEFERRED_FINISHED, lead)
  }

  /**
   * Sets the span's HTTP attributes from the request's state (see #fill):
   * the request's own, and once the request finished with its attributes
   * deferred, the route, status code and error type as well (otherwise
   * #finish sets those).
   */
  #addAttributes(state: ServerRequestState, span: Span, late: boolean): void {
    const finished = state.phase === DEFERRED_FINISHED
    state.phase = SET
    // Handed over in one step (see RecordingSpan#adoptAttributes).
    const pairs: Array<string | number> = []
    this.#fill(state, pairs, finished, null)
    if (!finished && span instanceof RecordingSpan && (pairs.length >> 1) + 2 > span.attributeCountLimit) {
      // Rare: a count limit too low for them all (and the route and status
      // code). Then those the conventions require go first, rather than
      // those that merely encode better. (Never when deferred: see MAX_ATTRIBUTES.)
      byImportance(pairs)
    }
    if (span instanceof RecordingSpan && span.adoptAttributes(pairs, late)) state.known = span.attributePairs!.length >> 1
    else for (let i = 0; i < pairs.length; i += 2) span.setAttribute(pairs[i] as string, pairs[i + 1])
  }

  /**
   * Writes the span's HTTP attributes into `out` as pairs (key, value...)
   * from index 0 and returns how many entries it wrote; with `finished`,
   * the route, status code and error type too (the span applies its length
   * limit). Reads the request's state only, so it can be asked again: the
   * protobuf encoder has them written into an array of its own, reused from
   * span to span (see RecordingSpan#fillDeferredAttributes).
   *
   * The order is for that encoder, which copies each run of attributes
   * equal to the previous span's in one go (see writeSpanAttributes): those
   * that are the same from one request to the next first (the lead: method,
   * scheme, protocol, host, then those of the client: address, user agent;
   * see RequestLead, which tells the encoder when they are the same as
   * before), the route and status code when known, and last the request's
   * own (path, query) and the peer port, so that only those split the run.
   * (Set by #finish, the route and status code come after them: a second run.)
   */
  #fill(state: ServerRequestState, out: Array<string | number>, finished: boolean, lead: AttributeLead | null): number {
    // The lead (with `finished`, the route, status code and error type too,
    // as #finish would have set them), then the request's own. By index, not
    // push(): `out` may be an array of the encoder's, longer than what is
    // written now.
    let n = this.#lead.fillInto(state, out, finished, lead)
    const peer = state.peer
    out[n++] = ATTR_URL_PATH; out[n++] = state.path
    if (state.queryAt !== -1) { out[n++] = ATTR_URL_QUERY; out[n++] = redactQuery(state.target.slice(state.queryAt + 1), this.#sensitive) }
    if (peer?.port !== undefined) { out[n++] = ATTR_NETWORK_PEER_PORT; out[n++] = peer.port }
    return n
  }

  /** The route template once the router matched; see setServerRoute(). */
  setRoute(req: IncomingMessage, route: string): void {
    setServerRoute(req, route)
  }

  /**
   * Where the route template comes from when the router matches after the
   * adapter's own code has run (Koa's router is a later middleware):
   * `source(arg)` is called once, when the span ends, unless setRoute() gave
   * a route by then. A function and its argument rather than a closure, so
   * that an adapter needs no allocation per request. A source that throws
   * or answers anything but a non-empty string gives no route.
   */
  setRouteSource<T>(req: IncomingMessage, source: (arg: T) => string | undefined, arg: T): void {
    const state = stateOf(req)
    if (state === undefined) return
    state.routeSource = source as (arg: never) => string | undefined
    state.routeArg = arg
  }

  /** Records an error the framework saw; see recordServerError(). */
  recordError(req: IncomingMessage, error: unknown): void {
    recordServerError(req, error)
  }

  /**
   * The `close` listener of a traced response Node's server does not drive
   * (`this` is the response): one shared function, no closure per request.
   */
  static readonly #onClose = function onResponseClose(this: ServerResponse): void {
    const req = this.req
    const state = stateOf(req)
    if (state !== undefined) HttpServerTracing.#end(req, this, state, !this.writableFinished)
  }

  /** Node's server finished a response (the http.server.response.finish channel). */
  static readonly #onResponseFinish = function onResponseFinish(message: unknown): void {
    const req = (message as { request?: IncomingMessage }).request
    const state = req === undefined ? undefined : stateOf(req)
    // Another loaded copy of core (its own class) watches its own requests.
    if (!(state instanceof ServerRequestState) || state.res === undefined) return
    unwatch(state, req!.socket as OpenSocket | null)
    HttpServerTracing.#end(req!, state.res, state, false)
  }

  /** A watched connection closed (`this` is its socket): its open requests were aborted, or finished as it closed. */
  static readonly #onSocketClose = function onSocketClose(this: OpenSocket): void {
    let state = this[kOpen] ?? null
    this[kOpen] = null
    while (state !== null) {
      const next = state.next
      state.next = null
      const req = state.req!
      const res = state.res!
      if (stateOf(req) === state) HttpServerTracing.#end(req, res, state, !res.writableFinished)
      state = next
    }
  }

  /**
   * Takes the state off its request and ends its span. Called from a
   * listener or a channel subscriber, where a throw would reach the app (a
   * subscriber's is rethrown as an uncaught exception): hooks and processors
   * have their own containment, and a bug of ours is warned about once.
   */
  static #end(req: IncomingMessage, res: ServerResponse, state: ServerRequestState, aborted: boolean): void {
    // Not `delete`: that would turn every request object into a slow dictionary.
    ;(req as TracedRequest)[kState] = undefined
    // The state may outlive the response (it makes the span's attributes
    // later): it must not keep the request and response alive.
    state.req = undefined
    state.res = undefined
    try {
      state.owner.#finish(req, res, state, aborted)
    } catch (err) {
      warnOnce('SPANLINE_SERVER_SPAN_FAILED', `a SERVER span could not be ended (${err instanceof Error ? err.message : String(err)}); NODE_DEBUG=spanline shows more`)
      debug('ending a SERVER span threw: %o', err)
    }
  }

  /** Ends the span: the response finished, or closed first (`aborted`). */
  #finish(req: IncomingMessage, res: ServerResponse, state: ServerRequestState, aborted: boolean): void {
    const span = state.span
    let route = state.route
    if (route === undefined && state.routeSource !== undefined) {
      const answer = callHook('route source', state.routeSource, state.routeArg as never)
      if (typeof answer === 'string' && answer !== '') route = answer
    }
    // Not kept for the deferred attributes: the argument is a framework's per-request object.
    state.routeSource = undefined
    state.routeArg = undefined
    let name: string
    if (this.#spanNameHook !== undefined) {
      name = callHook('spanNameHook', this.#spanNameHook, req, route) ?? defaultName(state.method, route)
    } else name = defaultName(state.method, route)
    span.updateName(name)
    // Aborted: the client went away (or the socket failed) before the whole
    // response was handed to the OS.
    const status = res.headersSent || !aborted ? res.statusCode : undefined
    let errorType: string | undefined
    if (state.hasError && (status === undefined || status >= 500)) errorType = exceptionType(state.error)
    else if (status !== undefined && status >= 500) errorType = String(status)
    else if (aborted) errorType = 'aborted'
    // Nor the error (its type is all the attributes need; the exception event has the rest).
    state.error = undefined
    if (state.phase === DEFERRED) {
      // Kept for when the attributes are made; not once the app ended the
      // span itself (attributes set after its end are ignored, as below).
      if (!(span as RecordingSpan).ended) {
        state.route = route
        state.status = status
        state.errorType = errorType
        state.phase = DEFERRED_FINISHED
      }
    } else {
      // The route and status code (and error type) are never among the request's
      // own attributes: only those set after them are searched for a duplicate.
      const known = state.known
      if (route !== undefined) setLater(span, known, ATTR_HTTP_ROUTE, route)
      if (status !== undefined) setLater(span, known, ATTR_HTTP_RESPONSE_STATUS_CODE, status)
      if (errorType !== undefined) span.setAttribute(ATTR_ERROR_TYPE, errorType)
    }
    // 5xx, or an exception or abort before a response: Error. 4xx stays unset on servers.
    if (errorType !== undefined) span.setStatus(SpanStatusCode.ERROR, aborted && status === undefined ? 'request aborted before the response was sent' : undefined)
    // (A deferred span's attributes are made here if a hook or a captured header sets one: the above first.)
    for (const header of this.#responseHeaders) {
      const value = res.getHeader(header)
      if (value !== undefined) span.setAttribute(ATTR_HTTP_RESPONSE_HEADER_PREFIX + header, Array.isArray(value) ? value : [String(value)])
    }
    if (this.#responseHook !== undefined) callHook('responseHook', this.#responseHook, span, req, res)
    span.end()
  }
}

/** span.setAttribute(key, value), searching for `key` only after the first `known` attributes (see ServerRequestState#known). */
function setLater(span: Span, known: number, key: string, value: string | number): void {
  if (known !== 0) (span as RecordingSpan).setAttributeAfter(known, key, value)
  else span.setAttribute(key, value)
}

/**
 * Sets the route template of `req`'s SERVER span once the router matched
 * (`/users/:id`); the span is then named `{METHOD} {route}`. Acts on the
 * request's shared state, so any layer may call it.
 */
export function setServerRoute(req: IncomingMessage, route: string): void {
  const state = stateOf(req)
  if (state !== undefined && typeof route === 'string' && route !== '') state.route = route
}

/**
 * Records an error the framework saw (thrown, next(err), onError) on `req`'s
 * SERVER span as one `exception` event; the same error reported by several
 * layers is recorded once. The error itself is not touched: the app handles
 * it as usual.
 */
export function recordServerError(req: IncomingMessage, error: unknown): void {
  const state = stateOf(req)
  if (state === undefined || (state.hasError && state.error === error)) return
  state.error = error
  state.hasError = true
  state.span.recordException(error)
}

/** The active SERVER span of `req`, if a Spanline layer started one. */
export function getServerSpan(req: IncomingMessage): Span | undefined {
  return stateOf(req)?.span
}

const PRIMING_HEADER = 'x-spanline-priming'

/**
 * How a span learns that its response is done, without a listener per
 * request. A `close` listener on every response cost more than a thousand
 * instructions per request (measured with bench/instructions.mjs, Fastify,
 * Node 24): a response's listeners live in a dictionary-mode object, so
 * adding one and emitting to it take megamorphic property accesses in
 * node:events. For a response that Node's own HTTP server drives, its
 * documented `http.server.response.finish` channel reports the finish (one
 * subscription per process), and a `close` listener per connection (not per
 * request) ends the spans of requests still open when the connection goes
 * (the client aborted): the same two outcomes as the response's `close`.
 */
const kOpen: unique symbol = Symbol('spanline.openRequests')
/** A connection with its open traced requests (a list through ServerRequestState#next); null once watched and empty. */
type OpenSocket = Socket & { [kOpen]?: ServerRequestState | null }

/** The `_onPendingData` every OutgoingMessage starts with (a shared no-op), which Node's server replaces; once known. */
let responseDefault: unknown
let subscribed = false

/**
 * True for a response made by Node's HTTP server (node:http, node:https, and
 * HTTP/1 on an http2 server), which publishes its finish; not for HTTP/2
 * streams or test doubles built on ServerResponse (light-my-request), which
 * never reach the server's code. Node's server gives each response its own
 * `_onPendingData` (a bound function, since Node 6); the constructor gives
 * every other one the same no-op, read here from a throwaway OutgoingMessage.
 */
function drivenByNodeServer(res: ServerResponse): boolean {
  const pending = (res as { _onPendingData?: unknown })._onPendingData
  if (typeof pending !== 'function') return false
  return pending !== (responseDefault === undefined ? defaultPendingData() : responseDefault)
}

/** The constructor's `_onPendingData`, read once (see newPeer on why apart). */
function defaultPendingData(): unknown {
  const { OutgoingMessage } = process.getBuiltinModule('node:http')
  return (responseDefault = (new OutgoingMessage() as { _onPendingData?: unknown })._onPendingData ?? null)
}

/** Lists the request as open on its connection; true for the connection's first (not watched yet). */
function watchResponse(state: ServerRequestState, req: IncomingMessage, res: ServerResponse, socket: OpenSocket): boolean {
  state.req = req
  state.res = res
  const open = socket[kOpen]
  state.next = open ?? null
  socket[kOpen] = state
  return open === undefined
}

function unwatch(state: ServerRequestState, socket: OpenSocket | null): void {
  if (socket === null) return
  let open = socket[kOpen] ?? null
  if (open === state) socket[kOpen] = state.next
  else {
    while (open !== null && open.next !== state) open = open.next
    if (open !== null) open.next = state.next
  }
  state.next = null
}

/**
 * A connection's remote address and port, read once per connection: Node's
 * `remoteAddress` and `remotePort` getters go back to the socket each time
 * (two calls per request, measured at ~0.4 us on Node 20), while a keep-alive
 * connection serves request after request from the same peer.
 */
interface Peer {
  readonly address: string
  readonly port: number | undefined
}
const kPeer = Symbol('spanline.peer')
type PeerSocket = IncomingMessage['socket'] & { [kPeer]?: Peer }

function peerOf(socket: PeerSocket | null | undefined): Peer | undefined {
  if (socket === null || socket === undefined) return undefined
  return socket[kPeer] ?? newPeer(socket)
}

/**
 * peerOf() on a connection's first request. Apart, as is
 * defaultPendingData(), so that V8 leaves these rare paths (and Node's
 * address getters) out of start() when it compiles it: what it inlines there
 * shares one budget, and on Node 24 they left no room for the request
 * state's constructor (measured: ~370 instructions more per request).
 */
function newPeer(socket: PeerSocket): Peer | undefined {
  // Undefined once the socket is gone: not remembered, the next request asks again.
  let address = socket.remoteAddress
  if (address === undefined) return undefined
  // Each connection's address is a string of its own; the one of the
  // connection before, when equal, is shared instead, so that the encoder
  // compares the spans of different connections from one client (a proxy,
  // a pool) by identity rather than character by character.
  if (address === lastPeerAddress) address = lastPeerAddress
  else lastPeerAddress = address
  return (socket[kPeer] = { address, port: socket.remotePort })
}

let lastPeerAddress = ''

/** The request attributes from most to least useful: required by the conventions first. */
const IMPORTANCE = [
  ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_REQUEST_METHOD_ORIGINAL, ATTR_URL_PATH, ATTR_URL_QUERY, ATTR_URL_SCHEME, ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT, ATTR_CLIENT_ADDRESS, ATTR_NETWORK_PEER_ADDRESS, ATTR_NETWORK_PEER_PORT, ATTR_NETWORK_PROTOCOL_VERSION, ATTR_USER_AGENT_ORIGINAL,
]

/** Reorders the pairs (key, value, key, value...) by IMPORTANCE, so that a count limit cuts the least useful. */
function byImportance(pairs: Array<string | number>): void {
  const sorted: Array<[string, string | number]> = []
  for (let i = 0; i < pairs.length; i += 2) sorted.push([pairs[i] as string, pairs[i + 1]!])
  sorted.sort((a, b) => IMPORTANCE.indexOf(a[0]) - IMPORTANCE.indexOf(b[0]))
  for (let i = 0; i < sorted.length; i++) {
    pairs[2 * i] = sorted[i]![0]
    pairs[2 * i + 1] = sorted[i]![1]
  }
}

/**
 * `{METHOD} {route}` names, made once per method and route rather than
 * concatenated per request (a fresh string each time, which the encoder then
 * has to flatten). Bounded: routes are templates, but a router fed raw paths
 * must not grow it without limit.
 */
const names = new Map<string, Map<string, string>>()
const MAX_CACHED_NAMES = 2048
let cachedNames = 0
/**
 * The last name made or found: a busy route's requests come in runs, and its
 * route string is the framework's own object each time, so this is a pointer
 * compare where the two map lookups are not.
 */
let lastPrefix = ''
let lastRoute = ''
let lastName = ''

function defaultName(method: string, route: string | undefined): string {
  const prefix = method === '_OTHER' ? 'HTTP' : method
  if (route === undefined) return prefix
  if (route === lastRoute && prefix === lastPrefix) return lastName
  let byRoute = names.get(prefix)
  let name = byRoute?.get(route)
  if (name === undefined) name = newName(prefix, route, byRoute)
  lastPrefix = prefix
  lastRoute = route
  lastName = name
  return name
}

function newName(prefix: string, route: string, byRoute: Map<string, string> | undefined): string {
  const name = `${prefix} ${route}`
  if (cachedNames < MAX_CACHED_NAMES) {
    if (byRoute === undefined) names.set(prefix, (byRoute = new Map()))
    byRoute.set(route, name)
    cachedNames++
  }
  return name
}

function callHook<A extends unknown[], R>(name: string, hook: (...args: A) => R, ...args: A): R | undefined {
  try {
    return hook(...args)
  } catch (err) {
    containError('hook', `the ${name}`, err)
    return undefined
  }
}

function stringList(list: readonly string[] | undefined, option: string): readonly string[] | undefined {
  if (list === undefined) return undefined
  if (!Array.isArray(list) || list.some((v) => typeof v !== 'string')) {
    throw new TracingError(ERR_INVALID_ARGUMENT, `${option} must be an array of strings`)
  }
  return list
}

function headerList(list: readonly string[] | undefined, option: string): readonly string[] {
  return (stringList(list, option) ?? []).map((h) => h.toLowerCase())
}

/**
 * Wraps a `request` listener for `http.createServer()` so every request gets
 * a SERVER span: the way to trace an app without a framework.
 *
 * @example
 * http.createServer(traceRequests((req, res) => { res.end('ok') }, { ignore: '/health' }))
 */
export function traceRequests<L extends (req: IncomingMessage, res: ServerResponse) => unknown>(listener: L, options?: HttpServerOptions): L {
  if (typeof listener !== 'function') throw new TracingError(ERR_INVALID_ARGUMENT, 'traceRequests() takes a request listener function')
  const tracing = new HttpServerTracing(options)
  return function tracedRequestListener(this: unknown, req: IncomingMessage, res: ServerResponse): unknown {
    return registry.storage.run(tracing.start(req, res), callListener, listener, this, req, res)
  } as L
}

/** `listener` called as Node's server calls it, without an array of its arguments per request. */
function callListener(listener: (req: IncomingMessage, res: ServerResponse) => unknown, self: unknown, req: IncomingMessage, res: ServerResponse): unknown {
  return listener.call(self, req, res)
}
