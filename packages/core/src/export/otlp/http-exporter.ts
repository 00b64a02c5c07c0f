import { debug, warnOnce } from '../../diag.ts'
import type { ReadableSpan } from '../../span.ts'
import { VERSION } from '../../version.ts'
import type { ExportResult, SpanExporter } from '../processor.ts'
import { resolveOtlpConfig, type OtlpConfig, type OtlpExporterOptions } from './config.ts'
import { HttpPoster, type PostResponse } from './http-post.ts'
import { encodeJson } from './json.ts'
import { encodeProtobuf } from './protobuf.ts'
import { parsePartialSuccess } from './response.ts'
// Builtins by process.getBuiltinModule(), not ES imports: start-up time (see @spanline/core's src/diag.ts).
const { promisify } = process.getBuiltinModule('node:util')

// node:zlib is taken with process.getBuiltinModule when gzip is first used
// (and node:net / node:tls by http-post.ts when it first connects), not
// imported: an ES import of a builtin builds its ESM facade, and this module
// loads at start-up with every tracer.

let gzipPromise: ((body: Uint8Array) => Promise<Buffer>) | undefined

/** zlib's gzip as a promise, made on first use. */
function gzip(body: Uint8Array): Promise<Buffer> {
  gzipPromise ??= promisify(process.getBuiltinModule('node:zlib').gzip)
  return gzipPromise(body)
}

/** Response bodies are read up to this size: enough for any error message or partial success. */
const MAX_RESPONSE_BYTES = 64 * 1024
/** The retryable statuses of https://opentelemetry.io/docs/specs/otlp/#failures-1 */
const RETRYABLE_STATUS = new Set([429, 502, 503, 504])
const INITIAL_BACKOFF_MS = 500
const MAX_BACKOFF_MS = 5000

/**
 * Sends spans to an OTLP/HTTP endpoint (an OpenTelemetry Collector, Jaeger,
 * Tempo: all listen on :4318). Retries only what the OTLP spec calls
 * retryable (429, 502, 503, 504, network errors) with exponential backoff and
 * jitter, honouring Retry-After, all within the export timeout. Its requests
 * run with tracing suppressed, so they are never traced themselves and carry
 * no trace headers.
 *
 * @example
 * new BatchSpanProcessor(new OtlpHttpExporter({ url: 'http://collector:4318/v1/traces' }))
 */
export class OtlpHttpExporter implements SpanExporter {
  readonly config: OtlpConfig
  readonly #poster: HttpPoster
  readonly #inFlight = new Set<Promise<ExportResult>>()
  #shutdown = false
  /**
   * With the protobuf protocol (the default), the batch processor hands over
   * request bodies it encoded span by span (see span-queue.ts); undefined
   * with http/json, whose spans are encoded at export.
   */
  readonly exportProtobuf: ((body: Buffer, spanCount: number) => Promise<ExportResult>) | undefined

  constructor(options: OtlpExporterOptions = {}) {
    this.config = resolveOtlpConfig(options)
    const headers: Record<string, string> = {
      'user-agent': `spanline/${VERSION}`,
      ...this.config.headers,
      'content-type': this.config.protocol === 'http/json' ? 'application/json' : 'application/x-protobuf',
    }
    if (this.config.compression === 'gzip') headers['content-encoding'] = 'gzip'
    // One kept-alive connection serves batch after batch; idle connections
    // never hold the process open (see http-post.ts).
    this.#poster = new HttpPoster(this.config.url, { headers, ca: this.config.ca, maxBody: MAX_RESPONSE_BYTES })
    this.exportProtobuf = this.config.protocol === 'http/protobuf' ? (body, spanCount) => this.#track(this.#exportBody(body, spanCount)) : undefined
  }

  export(spans: readonly ReadableSpan[]): Promise<ExportResult> {
    return this.#track(this.#export(spans))
  }

  #track(p: Promise<ExportResult>): Promise<ExportResult> {
    this.#inFlight.add(p)
    void p.finally(() => this.#inFlight.delete(p))
    return p
  }

  async forceFlush(): Promise<void> {
    await Promise.allSettled(this.#inFlight)
  }

  async shutdown(): Promise<void> {
    if (this.#shutdown) return
    this.#shutdown = true
    await this.forceFlush()
    this.#poster.close()
  }

  async #export(spans: readonly ReadableSpan[]): Promise<ExportResult> {
    if (this.#shutdown) return SHUT_DOWN
    if (spans.length === 0) return { ok: true }
    let body: Buffer
    try {
      body = this.config.protocol === 'http/json' ? Buffer.from(encodeJson(spans)) : encodeProtobuf(spans)
    } catch (err) {
      return fail('encode', `could not encode ${spans.length} spans: ${(err as Error).message}`)
    }
    return this.#exportBody(body, spans.length)
  }

  /** Compresses (if configured) and sends one encoded request, retrying within the export timeout. */
  async #exportBody(encoded: Buffer, spanCount: number): Promise<ExportResult> {
    if (this.#shutdown) return SHUT_DOWN
    const deadline = Date.now() + this.config.timeoutMillis
    let body: Uint8Array = encoded
    if (this.config.compression === 'gzip') {
      try {
        body = await gzip(encoded)
      } catch (err) {
        return fail('encode', `could not compress ${spanCount} spans: ${(err as Error).message}`)
      }
    }
    for (let attempt = 1; ; attempt++) {
      // Network errors are kept as data, not tested with instanceof: errors
      // made by Node's internals may come from another realm (jest, vm).
      let response: PostResponse | undefined
      let failure: string | undefined
      try {
        response = await this.#poster.post(body, deadline - Date.now())
      } catch (err) {
        const code = (err as NodeJS.ErrnoException | undefined)?.code
        // A reply that is not HTTP says more than its code: keep what was wrong with it.
        failure = code === 'SPANLINE_EXPORT_BAD_RESPONSE'
          ? `an invalid HTTP response: ${(err as Error).message}`
          : String(code ?? (err as Error | undefined)?.message ?? err)
      }
      let retryAfter: number | undefined
      if (response === undefined) {
        if (failure === 'SPANLINE_EXPORT_TIMEOUT') {
          return fail('timeout', `OTLP export to ${this.config.url.href} timed out after ${this.config.timeoutMillis} ms`)
        }
        warnOnce('SPANLINE_EXPORT_UNREACHABLE',
          `cannot reach the OTLP endpoint ${this.config.url.href} (${failure}); spans will be dropped while it is down. ` +
          'Set OTEL_EXPORTER_OTLP_ENDPOINT to your collector, or OTEL_TRACES_EXPORTER=console to print traces in the terminal')
        debug('OTLP export attempt %d failed: %s', attempt, failure)
      } else if (response.status >= 200 && response.status < 300) {
        const partial = parsePartialSuccess(response.body, this.config.protocol, response.headers['content-type'])
        if (partial !== undefined && (partial.rejected > 0 || partial.message !== '')) {
          warnOnce('SPANLINE_EXPORT_PARTIAL', `the OTLP endpoint ${this.config.url.href} rejected some spans: ${partial.message || `${partial.rejected} rejected`}`)
          return { ok: true, rejected: partial.rejected }
        }
        return { ok: true }
      } else if (RETRYABLE_STATUS.has(response.status)) {
        retryAfter = parseRetryAfter(response.headers['retry-after'])
        debug('OTLP export attempt %d: HTTP %d, retrying', attempt, response.status)
      } else {
        const text = response.body.toString('utf8', 0, Math.min(response.body.length, 200)).replace(/\s+/g, ' ')
        return fail(`http-${response.status}`, `the OTLP endpoint ${this.config.url.href} answered HTTP ${response.status}${text ? `: ${text}` : ''}; not retried`)
      }
      const backoff = retryAfter ?? jitter(Math.min(INITIAL_BACKOFF_MS * 2 ** (attempt - 1), MAX_BACKOFF_MS))
      if (Date.now() + backoff >= deadline) {
        const why = response === undefined ? failure : `HTTP ${response.status}`
        return fail('retries', `OTLP export to ${this.config.url.href} failed (${why}) and the next retry would pass the ${this.config.timeoutMillis} ms export timeout`)
      }
      await sleep(backoff)
    }
  }
}

const SHUT_DOWN: ExportResult = { ok: false, error: new Error('OTLP exporter is shut down') }

function fail(kind: string, message: string): ExportResult {
  warnOnce(`SPANLINE_EXPORT_FAILED_${kind.toUpperCase()}`, message)
  return { ok: false, error: new Error(message) }
}

function jitter(ms: number): number {
  // ±20%: clients that failed together do not retry together.
  return Math.round(ms * (0.8 + Math.random() * 0.4))
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

/** Retry-After as delta-seconds or an HTTP date (RFC 9110 10.2.3), in ms; undefined if absent or invalid. */
export function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value
  if (v === undefined) return undefined
  const trimmed = v.trim()
  if (/^\d{1,10}$/.test(trimmed)) return Number(trimmed) * 1000
  const date = Date.parse(trimmed)
  if (Number.isNaN(date)) return undefined
  return Math.max(0, date - Date.now())
}
