import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createTracer, SimpleSpanProcessor, SpanKind, type ReadableSpan, type Tracer } from '@spanline/core'
import { InMemorySpanExporter } from '@spanline/core/testing'

export const TLS_DIR = join(__dirname, '..', '..', 'core', 'test', 'fixtures', 'tls')
export const TLS = { key: readFileSync(join(TLS_DIR, 'key.pem')), cert: readFileSync(join(TLS_DIR, 'cert.pem')) }

export function memoryTracer(serviceName = 'caller'): { tracer: Tracer; exporter: InMemorySpanExporter } {
  const exporter = new InMemorySpanExporter()
  const tracer = createTracer({ env: {}, serviceName, processors: [new SimpleSpanProcessor(exporter)] })
  return { tracer, exporter }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

export function clientSpans(exporter: InMemorySpanExporter): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT)
}

/** What the test server saw of one request. */
export interface Received {
  readonly url: string
  readonly method: string
  /** Every traceparent header line received (more than one would be a bug). */
  readonly traceparents: string[]
  readonly baggage: string | undefined
  readonly body: string
}

/**
 * A server with the routes the client tests need:
 * /ok, /echo (body back), /status/<n>, /slow (first chunk, then the rest
 * after 300 ms), /redirect (302 to /ok), /hang (never answers).
 */
export class TestServer {
  readonly received: Received[] = []
  readonly server: Server
  readonly scheme: string
  port = 0

  constructor(tls = false) {
    this.scheme = tls ? 'https' : 'http'
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.#handle(req, res)
    this.server = tls ? createTlsServer(TLS, handler) : createServer(handler)
  }

  get base(): string {
    return `${this.scheme}://127.0.0.1:${this.port}`
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve))
    this.port = (this.server.address() as AddressInfo).port
    return this
  }

  async close(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise((resolve) => this.server.close(resolve))
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const traceparents: string[] = []
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        if (req.rawHeaders[i]!.toLowerCase() === 'traceparent') traceparents.push(req.rawHeaders[i + 1]!)
      }
      const body = Buffer.concat(chunks).toString()
      this.received.push({ url: req.url!, method: req.method!, traceparents, baggage: req.headers.baggage as string | undefined, body })
      const url = req.url!.split('?')[0]!
      if (url === '/hang') return
      if (url === '/slow') {
        res.write('first ')
        setTimeout(() => res.end('last'), 300)
        return
      }
      if (url === '/redirect') {
        res.writeHead(302, { location: '/ok' }).end()
        return
      }
      if (url.startsWith('/status/')) res.statusCode = Number(url.slice('/status/'.length))
      if (url.startsWith('/delay/')) {
        setTimeout(() => res.end('late'), Number(url.slice('/delay/'.length)))
        return
      }
      res.end(url === '/echo' ? body : 'ok')
    })
  }
}

/** The traceparent a CLIENT span sends. */
export function traceparentOf(span: ReadableSpan): string {
  return `00-${span.traceId}-${span.spanId}-${span.traceFlags.toString(16).padStart(2, '0')}`
}
