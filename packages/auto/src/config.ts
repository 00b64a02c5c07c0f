import { envList, envString, warnOnce, WARN_INVALID_ENV, type Env, type HttpServerOptions } from '@spanline/core'
import { LOG_LEVELS, type LogLevel } from './diag.ts'

/**
 * The preload is configured by the environment only. Everything a tracer
 * needs (OTEL_SERVICE_NAME, OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_*,
 * OTEL_TRACES_SAMPLER[_ARG], OTEL_PROPAGATORS, OTEL_BSP_*, span limits) is
 * read by core's createTracer(); this reads what is left: which parts to
 * install, which requests to ignore, which headers to capture, and how
 * loud to be. The rule is core's: a bad value is reported once, naming the
 * variable, and the default is used; the app always starts.
 */
export type { Env } from '@spanline/core'

/** The parts of the preload, as SPANLINE_DISABLED_INSTRUMENTATIONS names them. */
export const INSTRUMENTATIONS = ['http-server', 'express', 'koa', 'fastify', 'fetch', 'http-client'] as const
export type InstrumentationName = (typeof INSTRUMENTATIONS)[number]

export interface AutoConfig {
  /** OTEL_SDK_DISABLED=true: install nothing, and a global tracer that records and propagates nothing. */
  readonly sdkDisabled: boolean
  readonly logLevel: LogLevel
  /** The instrumentations to install (all but the disabled ones). */
  readonly instrumentations: ReadonlySet<InstrumentationName>
  /** For every SERVER span, whichever layer starts it: ignored paths and captured headers. */
  readonly server: HttpServerOptions
  /** For every CLIENT span: captured headers. */
  readonly client: ClientCapture
}

/** The client options the environment sets (passed to @spanline/http's instrument()). */
export interface ClientCapture {
  readonly captureHeaders?: { readonly request: readonly string[]; readonly response: readonly string[] }
}


export const ENV_DISABLED_INSTRUMENTATIONS = 'SPANLINE_DISABLED_INSTRUMENTATIONS'
export const ENV_IGNORE_PATHS = 'SPANLINE_IGNORE_PATHS'
export const ENV_SERVER_REQUEST_HEADERS = 'OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_REQUEST_HEADERS'
export const ENV_SERVER_RESPONSE_HEADERS = 'OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_RESPONSE_HEADERS'
export const ENV_CLIENT_REQUEST_HEADERS = 'OTEL_INSTRUMENTATION_HTTP_CLIENT_CAPTURE_REQUEST_HEADERS'
export const ENV_CLIENT_RESPONSE_HEADERS = 'OTEL_INSTRUMENTATION_HTTP_CLIENT_CAPTURE_RESPONSE_HEADERS'

/** Reads the preload's configuration from `env`, reporting bad values once each. */
export function readConfig(env: Env): AutoConfig {
  const logLevel = readLogLevel(env)
  // Only `true` disables; any other value is reported by core when it creates the tracer.
  const sdkDisabled = envString(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true'

  const instrumentations = new Set<InstrumentationName>(INSTRUMENTATIONS)
  for (const raw of envList(env, ENV_DISABLED_INSTRUMENTATIONS) ?? []) {
    const name = raw.toLowerCase()
    if ((INSTRUMENTATIONS as readonly string[]).includes(name)) instrumentations.delete(name as InstrumentationName)
    else invalid(ENV_DISABLED_INSTRUMENTATIONS, env, `names an unknown instrumentation ${JSON.stringify(raw)}, ignored; known: ${INSTRUMENTATIONS.join(', ')}`)
  }

  const ignore: string[] = []
  for (const path of envList(env, ENV_IGNORE_PATHS) ?? []) {
    if (path.startsWith('/')) ignore.push(path)
    else invalid(ENV_IGNORE_PATHS, env, `entry ${JSON.stringify(path)} is not a path starting with "/", ignored`)
  }

  const request = headerNames(env, ENV_SERVER_REQUEST_HEADERS)
  const response = headerNames(env, ENV_SERVER_RESPONSE_HEADERS)
  const clientRequest = headerNames(env, ENV_CLIENT_REQUEST_HEADERS)
  const clientResponse = headerNames(env, ENV_CLIENT_RESPONSE_HEADERS)

  const server: HttpServerOptions = {
    ...(ignore.length > 0 && { ignore }),
    ...((request.length > 0 || response.length > 0) && { captureHeaders: { request, response } }),
  }
  const client: ClientCapture = {
    ...((clientRequest.length > 0 || clientResponse.length > 0) && { captureHeaders: { request: clientRequest, response: clientResponse } }),
  }
  return { sdkDisabled, logLevel, instrumentations, server, client }
}

/** OTEL_LOG_LEVEL alone: applied before anything else is read, so that `none` silences every report. */
export function readLogLevel(env: Env): LogLevel {
  const v = envString(env, 'OTEL_LOG_LEVEL')?.toLowerCase()
  if (v === undefined) return 'info'
  if ((LOG_LEVELS as readonly string[]).includes(v)) return v as LogLevel
  invalid('OTEL_LOG_LEVEL', env, `is not one of ${LOG_LEVELS.join(', ')}; using info`)
  return 'info'
}

// RFC 9110 5.1: a field name is a token.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

function headerNames(env: Env, name: string): string[] {
  const out: string[] = []
  for (const header of envList(env, name) ?? []) {
    if (TOKEN.test(header)) out.push(header.toLowerCase())
    else invalid(name, env, `entry ${JSON.stringify(header)} is not a header name, ignored`)
  }
  return out
}

function invalid(name: string, env: Env, problem: string): void {
  warnOnce(WARN_INVALID_ENV, `${name}=${JSON.stringify(env[name])} ${problem}`)
}
