import { warnOnce } from '../../diag.ts'
import { envInteger, envString, WARN_INVALID_ENV, type Env } from '../../env.ts'
import { ERR_INVALID_ARGUMENT, TracingError } from '../../errors.ts'

export type OtlpProtocol = 'http/protobuf' | 'http/json'
export type OtlpCompression = 'gzip' | 'none'

export interface OtlpExporterOptions {
  /** The full traces URL, used as-is (like OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). */
  readonly url?: string
  /** Default http/protobuf, as the OTLP spec says. */
  readonly protocol?: OtlpProtocol
  /** Extra request headers (e.g. an API key); merged over OTEL_EXPORTER_OTLP_[TRACES_]HEADERS. */
  readonly headers?: Readonly<Record<string, string>>
  /** Per export call, retries included (ms, default 10000). */
  readonly timeoutMillis?: number
  readonly compression?: OtlpCompression
  /** PEM CA certificate(s) to trust for https (default: Node's CAs; or OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE). */
  readonly ca?: string | Buffer
  readonly env?: Env
}

export interface OtlpConfig {
  readonly url: URL
  readonly protocol: OtlpProtocol
  readonly headers: Readonly<Record<string, string>>
  readonly timeoutMillis: number
  readonly compression: OtlpCompression
  readonly ca: string | Buffer | undefined
}

export const DEFAULT_OTLP_ENDPOINT = 'http://localhost:4318'
const OPTION_NAMES = ['url', 'protocol', 'headers', 'timeoutMillis', 'compression', 'ca', 'env']

/**
 * Resolves the exporter's settings: options in code, then the TRACES_
 * variables, then the general OTEL_EXPORTER_OTLP_ ones, then defaults
 * (https://opentelemetry.io/docs/specs/otel/protocol/exporter/). Bad options
 * throw; bad variables are reported once and replaced by the default.
 */
export function resolveOtlpConfig(options: OtlpExporterOptions = {}): OtlpConfig {
  for (const key of Object.keys(options)) {
    if (!OPTION_NAMES.includes(key)) {
      throw new TracingError(ERR_INVALID_ARGUMENT, `unknown OTLP exporter option "${key}"; known options: ${OPTION_NAMES.join(', ')}`)
    }
  }
  const env = options.env ?? process.env
  return {
    url: resolveUrl(options, env),
    protocol: resolveProtocol(options, env),
    headers: resolveHeaders(options, env),
    timeoutMillis: resolveTimeout(options, env),
    compression: resolveCompression(options, env),
    ca: options.ca ?? resolveCertificate(env),
  }
}

function resolveUrl(options: OtlpExporterOptions, env: Env): URL {
  if (options.url !== undefined) {
    const url = parseHttpUrl(options.url)
    if (url === undefined) throw new TracingError(ERR_INVALID_ARGUMENT, `OTLP url must be an http(s) URL, got ${JSON.stringify(options.url)}`)
    return url
  }
  // The signal-specific variable is used as-is...
  const traces = envString(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')
  if (traces !== undefined) {
    const url = parseHttpUrl(traces)
    if (url !== undefined) return url
    warnOnce(WARN_INVALID_ENV, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=${JSON.stringify(traces)} is not an http(s) URL; ignoring it`)
  }
  // ...the general one gets v1/traces appended after any base path.
  const base = envString(env, 'OTEL_EXPORTER_OTLP_ENDPOINT')
  if (base !== undefined) {
    const url = parseHttpUrl(base)
    if (url !== undefined) return appendTracesPath(url)
    warnOnce(WARN_INVALID_ENV, `OTEL_EXPORTER_OTLP_ENDPOINT=${JSON.stringify(base)} is not an http(s) URL; using ${DEFAULT_OTLP_ENDPOINT}`)
  }
  return appendTracesPath(new URL(DEFAULT_OTLP_ENDPOINT))
}

function parseHttpUrl(value: string): URL | undefined {
  try {
    const url = new URL(value)
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined
  } catch {
    return undefined
  }
}

/** `http://host:4318` → `/v1/traces`; `http://host/base/` → `/base/v1/traces`. */
export function appendTracesPath(base: URL): URL {
  const url = new URL(base.href)
  url.pathname = url.pathname.endsWith('/') ? `${url.pathname}v1/traces` : `${url.pathname}/v1/traces`
  return url
}

function resolveProtocol(options: OtlpExporterOptions, env: Env): OtlpProtocol {
  if (options.protocol !== undefined) {
    if (options.protocol !== 'http/protobuf' && options.protocol !== 'http/json') {
      throw new TracingError(ERR_INVALID_ARGUMENT, `OTLP protocol must be "http/protobuf" or "http/json", got ${JSON.stringify(options.protocol)}`)
    }
    return options.protocol
  }
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const v = envString(env, name)
    if (v === undefined) continue
    if (v === 'http/protobuf' || v === 'http/json') return v
    warnOnce(WARN_INVALID_ENV, `${name}=${JSON.stringify(v)} is not supported (use http/protobuf or http/json); using http/protobuf`)
    return 'http/protobuf'
  }
  return 'http/protobuf'
}

/** An HTTP field name (RFC 9110 5.1: a token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-zA-Z-]+$/
/** An HTTP field value (RFC 9110 5.5): no control characters but tab, so no CR/LF to inject other headers with. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/

function resolveHeaders(options: OtlpExporterOptions, env: Env): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const name of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS']) {
    const raw = envString(env, name)
    if (raw === undefined) continue
    // W3C-baggage-like list: key=value pairs, values percent-encoded.
    for (const pair of raw.split(',')) {
      if (pair.trim() === '') continue
      const eq = pair.indexOf('=')
      const key = eq > 0 ? pair.slice(0, eq).trim().toLowerCase() : ''
      if (key === '' || !HEADER_NAME.test(key)) {
        warnOnce(WARN_INVALID_ENV, `${name}: ignoring ${JSON.stringify(pair)}, expected key=value`)
        continue
      }
      let value: string
      try {
        value = decodeURIComponent(pair.slice(eq + 1).trim())
      } catch {
        warnOnce(WARN_INVALID_ENV, `${name}: ignoring the value of ${JSON.stringify(key)}, it is not valid percent-encoding`)
        continue
      }
      if (!HEADER_VALUE.test(value)) {
        warnOnce(WARN_INVALID_ENV, `${name}: ignoring the value of ${JSON.stringify(key)}, it has control characters (a header value cannot)`)
        continue
      }
      headers[key] = value
    }
  }
  if (options.headers !== undefined) {
    for (const key of Object.keys(options.headers)) {
      const value = options.headers[key]
      if (typeof value !== 'string') throw new TracingError(ERR_INVALID_ARGUMENT, `OTLP header ${JSON.stringify(key)} must be a string`)
      if (!HEADER_NAME.test(key)) throw new TracingError(ERR_INVALID_ARGUMENT, `OTLP header name ${JSON.stringify(key)} is not a valid HTTP field name`)
      if (!HEADER_VALUE.test(value)) throw new TracingError(ERR_INVALID_ARGUMENT, `OTLP header ${JSON.stringify(key)} has control characters in its value (CR, LF, NUL, ...)`)
      headers[key.toLowerCase()] = value
    }
  }
  return headers
}

function resolveTimeout(options: OtlpExporterOptions, env: Env): number {
  if (options.timeoutMillis !== undefined) {
    if (!Number.isInteger(options.timeoutMillis) || options.timeoutMillis <= 0) {
      throw new TracingError(ERR_INVALID_ARGUMENT, `OTLP timeoutMillis must be a positive integer, got ${String(options.timeoutMillis)}`)
    }
    return options.timeoutMillis
  }
  const v = envInteger(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT') ?? envInteger(env, 'OTEL_EXPORTER_OTLP_TIMEOUT')
  return v === undefined || v === 0 ? 10000 : v
}

function resolveCompression(options: OtlpExporterOptions, env: Env): OtlpCompression {
  if (options.compression !== undefined) {
    if (options.compression !== 'gzip' && options.compression !== 'none') {
      throw new TracingError(ERR_INVALID_ARGUMENT, `OTLP compression must be "gzip" or "none", got ${JSON.stringify(options.compression)}`)
    }
    return options.compression
  }
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', 'OTEL_EXPORTER_OTLP_COMPRESSION']) {
    const v = envString(env, name)?.toLowerCase()
    if (v === undefined) continue
    if (v === 'gzip' || v === 'none') return v
    warnOnce(WARN_INVALID_ENV, `${name}=${JSON.stringify(env[name])} is not supported (use gzip or none); sending uncompressed`)
    return 'none'
  }
  return 'none'
}

function resolveCertificate(env: Env): Buffer | undefined {
  // node:fs by process.getBuiltinModule, not an import: an ES import builds
  // node:fs's ESM facade (every export read), a cost of every start-up.
  const { readFileSync } = process.getBuiltinModule('node:fs')
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE', 'OTEL_EXPORTER_OTLP_CERTIFICATE']) {
    const file = envString(env, name)
    if (file === undefined) continue
    try {
      return readFileSync(file)
    } catch (err) {
      warnOnce(WARN_INVALID_ENV, `${name}=${JSON.stringify(file)} could not be read (${(err as Error).message}); using Node's CA certificates`)
      return undefined
    }
  }
  return undefined
}
