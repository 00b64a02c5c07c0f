import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createServer as createHttpsServer } from 'node:https'
import { gunzipSync } from 'node:zlib'
import { decodeTraceRequest, type OtlpJson } from '../export/otlp/decode.ts'

/** One request the receiver got, decoded. */
export interface ReceivedRequest {
  readonly method: string
  readonly path: string
  readonly headers: IncomingHttpHeaders
  readonly protocol: 'http/protobuf' | 'http/json' | 'unknown'
  /** The body after gzip decoding. */
  readonly body: Buffer
  /** The ExportTraceServiceRequest in the OTLP JSON mapping, or undefined if it did not decode. */
  readonly payload: OtlpJson | undefined
}

/** A span as received, in the OTLP JSON mapping, with its resource and scope flattened in. */
export interface ReceivedSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly name: string
  readonly kind: number
  readonly startTimeUnixNano: string
  readonly endTimeUnixNano: string
  /** Attributes as plain values (ints as numbers when safe, else strings). */
  readonly attributes: Record<string, unknown>
  readonly resource: Record<string, unknown>
  readonly scope: { readonly name: string; readonly version?: string }
  readonly status: { readonly code?: number; readonly message?: string }
  /** The span exactly as received. */
  readonly raw: OtlpJson
}

export interface ReceiverReply {
  readonly status: number
  readonly headers?: Record<string, string>
  readonly body?: string | Buffer
}

export interface OtlpReceiverOptions {
  /** Port on 127.0.0.1 (default: a free one). */
  readonly port?: number
  /** Serve https with this key and certificate (PEM). */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer }
  /** Decides each response (default 200 with an empty body). May be async, or never resolve (a hung backend). */
  readonly respond?: (request: ReceivedRequest, index: number) => ReceiverReply | undefined | Promise<ReceiverReply | undefined>
}

export interface OtlpReceiver {
  /** The base endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT takes it: http://127.0.0.1:PORT */
  readonly endpoint: string
  /** The traces URL: http://127.0.0.1:PORT/v1/traces */
  readonly url: string
  readonly requests: ReceivedRequest[]
  /** Every span received so far, in arrival order. */
  spans(): ReceivedSpan[]
  /** Resolves once at least `count` spans have arrived; rejects after `timeoutMs` (default 5000). */
  waitForSpans(count: number, timeoutMs?: number): Promise<ReceivedSpan[]>
  close(): Promise<void>
}

/**
 * A small OTLP/HTTP traces receiver on 127.0.0.1 (random port), for tests
 * that go through the real exporter: it decodes protobuf or JSON, gzip or
 * not, and can be told how to answer (to play a failing backend). It keeps
 * every request and span it receives, for assertions: not a sink for
 * long-running load (bench/soak.mjs uses a discarding server).
 *
 * @example
 * const receiver = await startOtlpReceiver()
 * const tracer = createTracer({ exporters: [new OtlpHttpExporter({ url: receiver.url })] })
 * ...
 * const spans = await receiver.waitForSpans(2)
 */
export async function startOtlpReceiver(options: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
  const requests: ReceivedRequest[] = []
  const received: ReceivedSpan[] = []
  let waiters: { count: number; resolve: () => void }[] = []

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    let body = Buffer.concat(chunks)
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body)
    const type = req.headers['content-type'] ?? ''
    const protocol = type.includes('json') ? 'http/json' : type.includes('protobuf') ? 'http/protobuf' : 'unknown'
    let payload: OtlpJson | undefined
    try {
      payload = protocol === 'http/json' ? (JSON.parse(body.toString('utf8')) as OtlpJson) : decodeTraceRequest(body)
    } catch {
      payload = undefined
    }
    const request: ReceivedRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, protocol, body, payload }
    const index = requests.push(request) - 1
    const reply = (await options.respond?.(request, index)) ?? { status: 200 }
    // Spans count as received only when the backend says it accepted them.
    if (reply.status >= 200 && reply.status < 300 && payload !== undefined) {
      received.push(...flatten(payload))
      const ready = waiters.filter((w) => received.length >= w.count)
      waiters = waiters.filter((w) => received.length < w.count)
      for (const w of ready) w.resolve()
    }
    res.writeHead(reply.status, reply.headers)
    res.end(reply.body)
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500)
      res.end(String(err))
    })
  }
  const server = options.tls === undefined ? createServer(onRequest) : createHttpsServer(options.tls, onRequest)
  server.listen(options.port ?? 0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const endpoint = `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`

  return {
    endpoint,
    url: `${endpoint}/v1/traces`,
    requests,
    spans: () => received.slice(),
    waitForSpans(count: number, timeoutMs = 5000): Promise<ReceivedSpan[]> {
      if (received.length >= count) return Promise.resolve(received.slice())
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== waiter)
          reject(new Error(`waited ${timeoutMs} ms for ${count} spans, received ${received.length}`))
        }, timeoutMs)
        const waiter = { count, resolve: () => { clearTimeout(timer); resolve(received.slice()) } }
        waiters.push(waiter)
      })
    },
    close(): Promise<void> {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

type KV = { key: string; value?: Record<string, unknown> }

/** AnyValue → a plain value. */
export function anyValue(v: Record<string, unknown> | undefined): unknown {
  if (v === undefined) return undefined
  if ('stringValue' in v) return v.stringValue
  if ('boolValue' in v) return v.boolValue
  if ('intValue' in v) {
    const n = Number(v.intValue)
    return Number.isSafeInteger(n) ? n : String(v.intValue)
  }
  if ('doubleValue' in v) return typeof v.doubleValue === 'string' ? Number(v.doubleValue) : v.doubleValue
  if ('arrayValue' in v) return ((v.arrayValue as { values?: Record<string, unknown>[] }).values ?? []).map(anyValue)
  if ('kvlistValue' in v) return attributeMap((v.kvlistValue as { values?: KV[] }).values)
  if ('bytesValue' in v) return v.bytesValue
  return undefined
}

export function attributeMap(list: readonly KV[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const kv of list ?? []) out[kv.key] = anyValue(kv.value)
  return out
}

function flatten(payload: OtlpJson): ReceivedSpan[] {
  const out: ReceivedSpan[] = []
  for (const rs of (payload.resourceSpans ?? []) as OtlpJson[]) {
    const resource = attributeMap(((rs.resource ?? {}) as { attributes?: KV[] }).attributes)
    for (const ss of (rs.scopeSpans ?? []) as OtlpJson[]) {
      const scope = (ss.scope ?? { name: '' }) as { name: string; version?: string }
      for (const span of (ss.spans ?? []) as OtlpJson[]) {
        const parent = span.parentSpanId as string | undefined
        out.push({
          traceId: span.traceId as string,
          spanId: span.spanId as string,
          parentSpanId: parent === undefined || parent === '' ? undefined : parent,
          name: (span.name as string | undefined) ?? '',
          kind: (span.kind as number | undefined) ?? 0,
          startTimeUnixNano: String(span.startTimeUnixNano ?? '0'),
          endTimeUnixNano: String(span.endTimeUnixNano ?? '0'),
          attributes: attributeMap(span.attributes as KV[] | undefined),
          resource,
          scope,
          status: (span.status ?? {}) as { code?: number; message?: string },
          raw: span,
        })
      }
    }
  }
  return out
}
