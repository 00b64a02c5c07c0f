/**
 * The HTTP client semantics every outgoing-call instrumentation shares
 * (@spanline/http's fetch and node:http paths): which calls get a CLIENT
 * span, its name and attributes, what gets injected, and how it ends. The
 * instrumentations only translate their events into the calls below, so
 * fetch and node:http report a call the same way.
 *
 * https://opentelemetry.io/docs/specs/semconv/http/http-spans/#http-client
 */
import type { AsyncLocalStorage as Storage } from 'node:async_hooks'
import { getActiveContext, type Context } from '../context.ts'
import { debug } from '../diag.ts'
import { ERR_INVALID_ARGUMENT, TracingError } from '../errors.ts'
import { registry, type Registry } from '../global.ts'
import type { Getter, Setter } from '../propagation/carrier.ts'
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_HEADER_PREFIX,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_RESPONSE_HEADER_PREFIX,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_NETWORK_PEER_ADDRESS,
  ATTR_NETWORK_PEER_PORT,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
  DEFAULT_KNOWN_METHODS,
} from '../semconv.ts'
import { exceptionType, type Span } from '../span.ts'
import { createTracer, ensureGlobalTracer, tracerOf, type Tracer, type TracerOptions } from '../tracer.ts'
import { SpanKind, SpanStatusCode } from '../types.ts'
import { redactUrl, sensitiveSet } from './redact.ts'
// Builtins by process.getBuiltinModule(), not ES imports: start-up time (see @spanline/core's src/diag.ts).
const { AsyncLocalStorage } = process.getBuiltinModule('node:async_hooks')
const { inspect, types } = process.getBuiltinModule('node:util')

/**
 * `url.template` (development status in the conventions): the low-cardinality
 * template of the URL a caller gave with withUrlTemplate().
 */
export const ATTR_URL_TEMPLATE = 'url.template'

/**
 * One `ignore` rule for outgoing calls:
 * - a string without "://": a host name (`metadata.google.internal`),
 *   matched case-insensitively against the host the call goes to, with or
 *   without its port (`localhost:4318` matches that port only);
 * - a string with "://": a URL prefix (`https://api.example.com/health`),
 *   matched against the full URL as called;
 * - a RegExp, tested against the full URL;
 * - a function `(url, method) => boolean`; only `true` ignores the call, and
 *   one that throws counts as "not ignored".
 */
export type ClientIgnoreRule = string | RegExp | ((url: string, method: string) => boolean)

export interface HttpClientOptions {
  /**
   * The tracer for calls made while no span of a Spanline tracer is active
   * (a tracer, or options to create one). When a span is active, the tracer
   * that made it makes the CLIENT span: in a process hosting several
   * services, each call is recorded by the service that made it.
   * Default: the global tracer (see ensureGlobalTracer).
   */
  readonly tracer?: Tracer | TracerOptions
  /** Calls to leave untraced: host names, URL prefixes, RegExps on the URL, predicates. */
  readonly ignore?: ClientIgnoreRule | readonly ClientIgnoreRule[]
  /**
   * Calls made outside any span (at startup, from a timer) get no span by
   * default; `true` makes them root CLIENT spans, each its own trace.
   */
  readonly rootSpans?: boolean
  /** Query parameters whose values become REDACTED in `url.full` (default: the semantic conventions' list). */
  readonly sensitiveQueryParams?: readonly string[]
  /** Methods reported as themselves; others become `_OTHER` (default: RFC 9110 + PATCH). Case-sensitive. */
  readonly knownMethods?: readonly string[]
  /**
   * Header names to record as `http.request.header.<name>` /
   * `http.response.header.<name>` (string arrays). Nothing is captured unless
   * named here, so credentials never are by accident.
   */
  readonly captureHeaders?: { readonly request?: readonly string[]; readonly response?: readonly string[] }
}

const OPTION_NAMES: readonly string[] = ['tracer', 'ignore', 'rootSpans', 'sensitiveQueryParams', 'knownMethods', 'captureHeaders']

/** The compiled `ignore` rules: whether the call to `url` (going to `host`, lower-case, and `port`) gets no span. */
export type ClientIgnoreMatcher = (url: string, host: string, port: number | undefined, method: string) => boolean

// The caller's own trace header means the caller propagates (a proxy
// forwarding its incoming headers, or manual instrumentation): see start().
const CALLER_TRACE_HEADERS: readonly string[] = ['traceparent', 'b3', 'x-b3-traceid']

/**
 * The URL templates given with withUrlTemplate(). A separate store from the
 * span context, and in the process-wide registry so every copy of core
 * reads the same one. Only read once per traced call.
 */
const templates = ((registry as Registry & { urlTemplates?: Storage<string> }).urlTemplates ??= new AsyncLocalStorage<string>())

/**
 * Runs `fn(...args)` so that the outgoing calls it makes are named and
 * tagged with `template`: `GET /users/{id}` with `url.template`, instead of
 * just `GET` (URLs with ids in them make poor span names). Nothing is sent
 * to the callee; every call made inside `fn`, including ones in callbacks
 * and after awaits, gets the template, so wrap one call at a time.
 *
 * @example
 * const res = await withUrlTemplate('/users/{id}', fetch, `${base}/users/${id}`)
 */
export function withUrlTemplate<A extends unknown[], R>(template: string, fn: (...args: A) => R, ...args: A): R {
  if (typeof template !== 'string' || template === '') {
    throw new TracingError(ERR_INVALID_ARGUMENT, `withUrlTemplate() takes a non-empty template string, got ${inspect(template)}`)
  }
  return templates.run(template, fn, ...args)
}

/**
 * Copies headers only where the caller has not set them. One instance is
 * reused for every call: inject() runs synchronously and its setter calls
 * never start another call, so the fields cannot be overwritten mid-use.
 */
class PreservingSetter implements Setter {
  carrier: unknown = undefined
  getter: Getter | undefined = undefined
  setter: Setter | undefined = undefined

  set(_box: unknown, name: string, value: string): void {
    const carrier = this.carrier
    if (this.getter!.get(carrier, name) !== undefined) {
      debug('outgoing call already has a %s header; the caller\'s value is kept', name)
      return
    }
    this.setter!.set(carrier, name, value)
  }
}

const preserving = new PreservingSetter()

function injectPreserving(tracer: Tracer, context: Context, carrier: unknown, getter: Getter, setter: Setter): void {
  preserving.carrier = carrier
  preserving.getter = getter
  preserving.setter = setter
  try {
    tracer.inject(carrier, context, preserving)
  } catch (err) {
    // A custom propagator or a carrier that refuses a header: the call goes out without it.
    debug('injecting into an outgoing call failed: %o', err)
  } finally {
    preserving.carrier = undefined
    preserving.getter = undefined
    preserving.setter = undefined
  }
}

/** Pass to HttpClientCall#end() for a call its caller cancelled without an error object (the deprecated req.abort()). */
export const CALL_ABORTED: unique symbol = Symbol('spanline.http.aborted')

const NO_HEADERS: readonly string[] = Object.freeze([])

function headerNames(list: readonly string[] | undefined, option: string): readonly string[] {
  if (list === undefined) return NO_HEADERS
  if (!Array.isArray(list) || list.some((h) => typeof h !== 'string')) {
    throw new TracingError(ERR_INVALID_ARGUMENT, `${option} must be an array of header names`)
  }
  return list.map((h) => h.toLowerCase())
}

/** Records the named headers found in `carrier` as string-array attributes under `prefix`. */
function captureHeaders(span: Span, prefix: string, names: readonly string[], carrier: unknown, getter: Getter): void {
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!
    const value = getter.get(carrier, name)
    if (value !== undefined) span.setAttribute(prefix + name, typeof value === 'string' ? [value] : value.slice())
  }
}

/**
 * One traced outgoing call: the instrumentation reports what it sees
 * (response, peer, timeout, error) and calls end() exactly when the call is
 * over: the response body fully received, or the call failed.
 */
export class HttpClientCall {
  readonly span: Span
  readonly #responseHeaders: readonly string[]
  #error: unknown = undefined
  #hasError: boolean = false
  #timedOut: boolean = false
  #done: boolean = false

  constructor(span: Span, responseHeaders: readonly string[] = NO_HEADERS) {
    this.span = span
    this.#responseHeaders = responseHeaders
  }

  /**
   * Response headers arrived. 4xx and 5xx set status Error: on the client
   * side, the call failed. `headers` and `getter` give the response headers
   * to capture, if any were named in `captureHeaders.response`.
   */
  response(statusCode: number, protocolVersion?: string, headers?: unknown, getter?: Getter): void {
    const span = this.span
    if (this.#done || !span.isRecording() || typeof statusCode !== 'number') return
    if (getter !== undefined) captureHeaders(span, ATTR_HTTP_RESPONSE_HEADER_PREFIX, this.#responseHeaders, headers, getter)
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, statusCode)
    if (protocolVersion !== undefined) span.setAttribute(ATTR_NETWORK_PROTOCOL_VERSION, protocolVersion)
    if (statusCode >= 400) {
      span.setAttribute(ATTR_ERROR_TYPE, String(statusCode))
      span.setStatus(SpanStatusCode.ERROR)
    }
  }

  /** The connection the call went over (the peer, unlike server.address, is after DNS and proxies). */
  peer(address: string | undefined, port: number | undefined, protocolVersion?: string): void {
    const span = this.span
    if (this.#done || !span.isRecording()) return
    if (typeof address === 'string' && address !== '') {
      span.setAttribute(ATTR_NETWORK_PEER_ADDRESS, address)
      if (typeof port === 'number') span.setAttribute(ATTR_NETWORK_PEER_PORT, port)
    }
    if (protocolVersion !== undefined) span.setAttribute(ATTR_NETWORK_PROTOCOL_VERSION, protocolVersion)
  }

  /**
   * The call's own timer fired (`req.setTimeout`, the `timeout` option). Not
   * an error by itself (the caller may keep waiting); if the call then fails,
   * whatever the error (destroy() gives ECONNRESET), it failed by timing out.
   */
  timedOut(): void {
    this.#timedOut = true
  }

  /** Records the first error of the call; end() reports it. */
  fail(error: unknown): void {
    if (this.#hasError) return
    this.#error = error
    this.#hasError = true
  }

  /** Whether end() has run. */
  get done(): boolean {
    return this.#done
  }

  /**
   * Ends the span, once. With an error (given here or to fail()): a
   * cancellation by the caller (an `AbortError`: AbortController#abort(),
   * the deprecated req.abort()) is not a failure of the call: the status
   * stays unset and an `aborted` event marks the moment. A timeout sets
   * `error.type` `timeout`; any other error sets `error.type` to its code
   * (ECONNREFUSED, ENOTFOUND, UND_ERR_SOCKET) or else its type, records it
   * as an `exception` event, and sets status Error.
   */
  end(error?: unknown): void {
    if (this.#done) return
    this.#done = true
    if (error !== undefined) this.fail(error)
    const span = this.span
    if (span.isRecording() && this.#hasError) {
      const err = this.#error
      if (!this.#timedOut && isAbortError(err)) {
        span.addEvent('aborted')
      } else {
        const type = this.#timedOut ? 'timeout' : errorType(err)
        span.setAttribute(ATTR_ERROR_TYPE, type)
        span.recordException(err)
        span.setStatus(SpanStatusCode.ERROR, errorMessage(err) ?? (this.#timedOut ? 'timed out' : undefined))
      }
    }
    span.end()
  }
}

/** A caller's cancellation: AbortSignal (DOMException or Node's AbortError), or the CALL_ABORTED marker. */
function isAbortError(error: unknown): boolean {
  return error === CALL_ABORTED || (error !== null && typeof error === 'object' && (error as { name?: unknown }).name === 'AbortError')
}

/** error.type of a failed call: the error's code (ECONNREFUSED...), `timeout`, else its class. */
function errorType(error: unknown): string {
  if (error === null || typeof error !== 'object') return '_OTHER'
  const e = error as { code?: unknown; name?: unknown }
  if (typeof e.code === 'string' && e.code !== '') return e.code
  if (e.name === 'TimeoutError') return 'timeout'
  return exceptionType(error)
}

function errorMessage(error: unknown): string | undefined {
  const message = (error as { message?: unknown } | null | undefined)?.message
  return typeof message === 'string' && message !== '' ? message : undefined
}

/**
 * The decisions for outgoing calls, made once per call by start():
 * - tracing suppressed (the exporter's own requests, work done for an
 *   ignored incoming request): no span, no headers;
 * - no active span: no span unless `rootSpans`; only baggage set with
 *   runWithBaggage() is sent (there is no trace to continue);
 * - an ignored URL: no span, no headers;
 * - the caller set `traceparent` (or b3) itself: no span and nothing added;
 *   the caller is propagating its own context, and a CLIENT span that the
 *   callee does not point to would be a dead end in the trace;
 * - otherwise a CLIENT span, child of the active span, made by the tracer
 *   that made that span, and its context injected with that tracer's
 *   propagators (headers the caller set are never overwritten).
 *
 * @example
 * const tracing = new HttpClientTracing({ ignore: 'metadata.google.internal' })
 * const call = tracing.start('GET', 'https://api.example.com/users/1', headers, defaultGetter, defaultSetter)
 */
export class HttpClientTracing {
  readonly #tracer: Tracer | undefined
  readonly #ignore: ClientIgnoreMatcher | undefined
  readonly #rootSpans: boolean
  readonly #sensitive: ReadonlySet<string>
  readonly #knownMethods: ReadonlySet<string>
  readonly #requestHeaders: readonly string[]
  readonly #responseHeaders: readonly string[]

  constructor(options: HttpClientOptions = {}) {
    if (options === null || typeof options !== 'object') {
      throw new TracingError(ERR_INVALID_ARGUMENT, `HTTP client options must be an object, got ${inspect(options)}`)
    }
    for (const key of Object.keys(options)) {
      if (!OPTION_NAMES.includes(key)) {
        throw new TracingError(ERR_INVALID_ARGUMENT, `unknown HTTP client option "${key}"; known options: ${OPTION_NAMES.join(', ')}`)
      }
    }
    const tracer = options.tracer
    if (tracer !== undefined && (tracer === null || typeof tracer !== 'object')) {
      throw new TracingError(ERR_INVALID_ARGUMENT, 'tracer must be a Tracer (from createTracer()) or tracer options')
    }
    if (options.rootSpans !== undefined && typeof options.rootSpans !== 'boolean') {
      throw new TracingError(ERR_INVALID_ARGUMENT, `rootSpans must be a boolean, got ${inspect(options.rootSpans)}`)
    }
    const known = options.knownMethods
    if (known !== undefined && (!Array.isArray(known) || known.some((m) => typeof m !== 'string'))) {
      throw new TracingError(ERR_INVALID_ARGUMENT, 'knownMethods must be an array of strings')
    }
    this.#tracer = tracer === undefined || typeof (tracer as Tracer).startSpan === 'function' ? tracer as Tracer | undefined : createTracer(tracer as TracerOptions)
    this.#ignore = compileClientIgnore(options.ignore)
    this.#rootSpans = options.rootSpans === true
    this.#sensitive = sensitiveSet(options.sensitiveQueryParams)
    this.#knownMethods = new Set(known ?? DEFAULT_KNOWN_METHODS)
    this.#requestHeaders = headerNames(options.captureHeaders?.request, 'captureHeaders.request')
    this.#responseHeaders = headerNames(options.captureHeaders?.response, 'captureHeaders.response')
  }

  /**
   * Decides whether the call gets a span (see the class comment), starts
   * it and injects its context into `carrier` through `setter`; `getter`
   * reads the caller's headers. Call it in the caller's async context, before
   * the request headers are written. Returns undefined for calls that are
   * not traced. Never throws.
   *
   * @param url The URL as called: `scheme://host[:port]/path?query`.
   * Credentials in it and sensitive query values are redacted in `url.full`.
   */
  start(method: string, url: string, carrier: unknown, getter: Getter, setter: Setter): HttpClientCall | undefined {
    try {
      return this.#start(method, url, carrier, getter, setter)
    } catch (err) {
      debug('outgoing call %s %s not traced: %o', method, url, err)
      return undefined
    }
  }

  #start(method: string, url: string, carrier: unknown, getter: Getter, setter: Setter): HttpClientCall | undefined {
    const context = getActiveContext()
    if (context.suppressed) return undefined
    const parent = context.span
    if (parent === undefined && !this.#rootSpans) {
      // No trace to continue; baggage set without a span still travels.
      if (context.baggage !== undefined && !callerPropagates(carrier, getter)) {
        injectPreserving(this.#tracer ?? ensureGlobalTracer(), context, carrier, getter, setter)
      }
      return undefined
    }
    const origin = parseOrigin(url)
    if (this.#ignore !== undefined && this.#ignore(url, origin.host.toLowerCase(), origin.port, method)) return undefined
    if (callerPropagates(carrier, getter)) {
      debug('outgoing call %s %s carries the caller\'s own trace header: no CLIENT span, nothing injected', method, origin.host)
      return undefined
    }
    const tracer = tracerOf(parent) ?? this.#tracer ?? ensureGlobalTracer()
    const known = this.#knownMethods.has(method)
    const template = templates.getStore()
    const base = known ? method : 'HTTP'
    const span = tracer.startSpan(template === undefined ? base : `${base} ${template}`, { kind: SpanKind.CLIENT, parent: context })
    if (span.isRecording()) {
      span.setAttribute(ATTR_HTTP_REQUEST_METHOD, known ? method : '_OTHER')
      if (!known) span.setAttribute(ATTR_HTTP_REQUEST_METHOD_ORIGINAL, method)
      span.setAttribute(ATTR_URL_FULL, redactUrl(url, this.#sensitive))
      if (origin.host !== '') span.setAttribute(ATTR_SERVER_ADDRESS, origin.host)
      if (origin.port !== undefined) span.setAttribute(ATTR_SERVER_PORT, origin.port)
      if (template !== undefined) span.setAttribute(ATTR_URL_TEMPLATE, template)
      // Before injecting: the caller's own headers, not ours.
      if (this.#requestHeaders.length > 0) captureHeaders(span, ATTR_HTTP_REQUEST_HEADER_PREFIX, this.#requestHeaders, carrier, getter)
    }
    injectPreserving(tracer, context.withSpan(span), carrier, getter, setter)
    // An unsampled call still propagates its ids (sampled=0) but has nothing to record or end.
    return span.isRecording() ? new HttpClientCall(span, this.#responseHeaders) : undefined
  }
}

function callerPropagates(carrier: unknown, getter: Getter): boolean {
  for (let i = 0; i < CALLER_TRACE_HEADERS.length; i++) {
    if (getter.get(carrier, CALLER_TRACE_HEADERS[i]!) !== undefined) return true
  }
  return false
}

const COLON = 0x3a
const SLASH = 0x2f
const QUESTION = 0x3f
const HASH = 0x23
const AT = 0x40
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d

interface Origin {
  /** The host as written (IPv6 without brackets); '' when the URL has none. */
  readonly host: string
  /** The explicit port, else the scheme's default (http 80, https 443). */
  readonly port: number | undefined
}

/**
 * server.address and server.port of `url` in one pass over its authority,
 * without building a URL object: the instrumentations already hold a URL
 * that Node or undici parsed and validated.
 */
function parseOrigin(url: string): Origin {
  const sep = url.indexOf('://')
  if (sep === -1) return { host: '', port: undefined }
  const start = sep + 3
  let end = start
  let at = -1
  for (; end < url.length; end++) {
    const c = url.charCodeAt(end)
    if (c === SLASH || c === QUESTION || c === HASH) break
    if (c === AT) at = end
  }
  const hostStart = at === -1 ? start : at + 1
  let host: string
  let portText = ''
  if (url.charCodeAt(hostStart) === OPEN_BRACKET) {
    const close = url.indexOf(']', hostStart)
    if (close === -1 || close > end) return { host: url.slice(hostStart, end), port: undefined }
    host = url.slice(hostStart + 1, close)
    if (close + 1 < end && url.charCodeAt(close + 1) === COLON) portText = url.slice(close + 2, end)
  } else {
    const colon = url.lastIndexOf(':', end - 1)
    if (colon >= hostStart) {
      host = url.slice(hostStart, colon)
      portText = url.slice(colon + 1, end)
    } else host = url.slice(hostStart, end)
  }
  let port: number | undefined
  if (portText !== '') {
    const n = Number(portText)
    port = Number.isInteger(n) && n >= 0 && n <= 65535 ? n : undefined
  } else {
    const scheme = url.slice(0, sep).toLowerCase()
    port = scheme === 'https' || scheme === 'wss' ? 443 : scheme === 'http' || scheme === 'ws' ? 80 : undefined
  }
  return { host, port }
}

/**
 * Compiles the `ignore` option (see ClientIgnoreRule). Returns undefined when
 * nothing is ignored, so calls skip the check altogether.
 *
 * @throws TracingError (ERR_INVALID_ARGUMENT) naming the first invalid rule.
 */
export function compileClientIgnore(rules: ClientIgnoreRule | readonly ClientIgnoreRule[] | undefined): ClientIgnoreMatcher | undefined {
  if (rules === undefined || (rules as unknown) === null) return undefined
  const list: readonly unknown[] = Array.isArray(rules) ? rules : [rules]
  const hosts = new Set<string>()
  const prefixes: string[] = []
  const regexps: RegExp[] = []
  const functions: Array<(url: string, method: string) => unknown> = []
  for (let i = 0; i < list.length; i++) {
    const rule = list[i]
    const name = list === rules ? `ignore[${i}]` : 'ignore'
    if (typeof rule === 'string') {
      if (rule.includes('://')) prefixes.push(rule)
      else if (rule !== '' && !/[/?#@\s]/.test(rule)) hosts.add(hostKey(rule.toLowerCase()))
      else throw new TracingError(ERR_INVALID_ARGUMENT, `${name} must be a host name or a URL prefix with its scheme, got ${inspect(rule)}`)
    } else if (types.isRegExp(rule)) {
      regexps.push(rule.global || rule.sticky ? new RegExp(rule.source, rule.flags.replace(/[gy]/g, '')) : rule)
    } else if (typeof rule === 'function') {
      functions.push(rule as (url: string, method: string) => unknown)
    } else {
      throw new TracingError(ERR_INVALID_ARGUMENT, `${name} must be a string, a RegExp or a function, got ${inspect(rule, { depth: 1 })}`)
    }
  }
  if (hosts.size === 0 && prefixes.length === 0 && regexps.length === 0 && functions.length === 0) return undefined

  return function isIgnoredCall(url: string, host: string, port: number | undefined, method: string): boolean {
    if (hosts.size > 0 && (hosts.has(host) || (port !== undefined && hosts.has(withPort(host, port))))) return true
    for (let i = 0; i < prefixes.length; i++) {
      if (url.startsWith(prefixes[i]!)) return true
    }
    for (let i = 0; i < regexps.length; i++) {
      try {
        if (regexps[i]!.test(url)) return true
      } catch (err) {
        debug('ignore RegExp threw; call not ignored: %o', err)
      }
    }
    for (let i = 0; i < functions.length; i++) {
      try {
        if (functions[i]!(url, method) === true) return true
      } catch (err) {
        debug('ignore function threw; call not ignored: %o', err)
      }
    }
    return false
  }
}

/** A host rule as stored: `[::1]` is the host `::1`; `[::1]:4318` and `localhost:4318` stay as written. */
function hostKey(rule: string): string {
  return rule.charCodeAt(0) === OPEN_BRACKET && rule.charCodeAt(rule.length - 1) === CLOSE_BRACKET ? rule.slice(1, -1) : rule
}

function withPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}
