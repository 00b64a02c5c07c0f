/**
 * The OTLP exporter's HTTP/1.1 client: POSTs a body to one endpoint over a
 * kept-alive connection (plain TCP or TLS) and reads the response.
 *
 * Why not node:http: an export is one request every few milliseconds on a
 * busy server, and in a profile of a traced Fastify app (Node 24) node:http's
 * ClientRequest, Agent and IncomingMessage machinery made exporting cost
 * about 1.3 us per request at 512 spans a batch, a quarter of everything
 * tracing cost. Writing the request head and the body in one corked socket
 * write and reading the response with the small parser below does the same
 * exchange for about half the CPU (a loop of POSTs to the benchmark's sink:
 * 120 -> 50 us for 1 KB bodies, 320 -> 155 us for 200 KB, most of the rest
 * being the kernel's). What it leaves out is what an OTLP export never
 * needs: request bodies in pieces, redirects, upgrades, trailers that mean
 * anything.
 *
 * Responses are parsed per RFC 9112: 1xx interim responses are skipped; a
 * body is framed by chunked transfer coding, Content-Length, or the end of
 * the connection; anything malformed fails the request and closes the
 * connection. At most `maxBody` bytes of a body are kept; a longer one ends
 * the read there and the connection is closed.
 */
import type { Socket } from 'node:net'
import type { ConnectionOptions } from 'node:tls'
import { runSuppressed } from '../../context.ts'

export interface PostResponse {
  readonly status: number
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>
  /** The body, up to the client's `maxBody` bytes. */
  readonly body: Buffer
}

export interface HttpPostOptions {
  /** Request headers sent with every request (lower-case names); content-length is added per request. */
  readonly headers: Readonly<Record<string, string>>
  /** Trusted CA certificates for https (PEM), instead of Node's. */
  readonly ca?: string | Buffer | undefined
  /** Response body bytes kept at most. */
  readonly maxBody: number
}

/** Errors carry a `code`, as Node's network errors do (ECONNREFUSED, ...). */
function failure(code: string, message: string): Error {
  return Object.assign(new Error(message), { code })
}

/** A response head larger than this is not an OTLP endpoint's: fail rather than buffer it. */
const MAX_HEAD = 64 * 1024
/** Idle connections are closed after this, before a server's keep-alive timeout (Node's is 5 s) can race a new request. */
const IDLE_MS = 4000

export class HttpPoster {
  readonly #host: string
  readonly #port: number
  readonly #tls: ConnectionOptions | undefined
  /** Request line and fixed headers, up to the content-length value. */
  readonly #head: string
  readonly #maxBody: number
  #idle: Connection[] = []
  #closed = false

  constructor(url: URL, options: HttpPostOptions) {
    // URL keeps the brackets of an IPv6 literal; sockets want the address alone.
    this.#host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
    const https = url.protocol === 'https:'
    this.#port = url.port === '' ? (https ? 443 : 80) : Number(url.port)
    this.#tls = https ? { host: this.#host, port: this.#port, ALPNProtocols: ['http/1.1'], ...(options.ca !== undefined && { ca: options.ca }) } : undefined
    let head = `POST ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`
    for (const name of Object.keys(options.headers)) {
      if (name === 'host' || name === 'content-length' || name === 'transfer-encoding' || name === 'connection') continue
      head += `${name}: ${options.headers[name]}\r\n`
    }
    this.#head = head + 'content-length: '
    this.#maxBody = options.maxBody
  }

  /**
   * Sends `body` and resolves with the response, or rejects (network error,
   * malformed response, or `timeoutMs` passed: code SPANLINE_EXPORT_TIMEOUT).
   * Either way it settles only once the connection no longer reads `body`,
   * so the caller may then reuse its memory.
   */
  post(body: Uint8Array, timeoutMs: number): Promise<PostResponse> {
    if (this.#closed) return Promise.reject(failure('SPANLINE_EXPORT_CLOSED', 'the exporter is shut down'))
    if (timeoutMs <= 0) return Promise.reject(failure('SPANLINE_EXPORT_TIMEOUT', 'export timeout'))
    let connection = this.#idle.pop()
    while (connection !== undefined && connection.socket.destroyed) connection = this.#idle.pop()
    // Connected with tracing suppressed: the socket's callbacks run in that
    // context, so nothing they reach is traced or gets trace headers.
    connection ??= runSuppressed(HttpPoster.#open, this)
    return connection.send(this.#head, body, timeoutMs)
  }

  /** Closes idle connections; requests in flight finish, later ones are refused. */
  close(): void {
    this.#closed = true
    for (const connection of this.#idle) connection.socket.destroy()
    this.#idle = []
  }

  /** A new connection (called suppressed, see post()). */
  static #open(poster: HttpPoster): Connection {
    let socket: Socket
    if (poster.#tls !== undefined) {
      const options = { ...poster.#tls }
      // SNI takes host names only.
      if (process.getBuiltinModule('node:net').isIP(poster.#host) === 0) options.servername = poster.#host
      socket = process.getBuiltinModule('node:tls').connect(options)
    } else socket = process.getBuiltinModule('node:net').connect({ host: poster.#host, port: poster.#port })
    // The request goes out as soon as it is written, as node:http does.
    socket.setNoDelay(true)
    return new Connection(poster, socket, poster.#maxBody)
  }

  /** A connection whose response was read in full and which the server keeps open. */
  release(connection: Connection, idleMs: number): void {
    if (this.#closed) {
      connection.socket.destroy()
      return
    }
    connection.idle(idleMs)
    this.#idle.push(connection)
  }

  /** An idle connection closed or timed out. */
  forget(connection: Connection): void {
    const i = this.#idle.indexOf(connection)
    if (i !== -1) this.#idle.splice(i, 1)
  }
}

type Settle = (error: Error | undefined, response: PostResponse | undefined) => void

/** One socket, one request at a time, and the parser for its responses. */
class Connection {
  readonly socket: Socket
  readonly #poster: HttpPoster
  readonly #parser: ResponseParser
  #settle: Settle | undefined = undefined
  #timer: NodeJS.Timeout | undefined = undefined
  #written = false
  #response: PostResponse | undefined = undefined
  #error: Error | undefined = undefined

  constructor(poster: HttpPoster, socket: Socket, maxBody: number) {
    this.#poster = poster
    this.socket = socket
    this.#parser = new ResponseParser(maxBody)
    socket.on('data', (chunk: Buffer) => this.#onData(chunk))
    socket.on('error', (err: Error) => {
      this.#error ??= err
    })
    socket.on('close', () => this.#onClose())
  }

  send(head: string, body: Uint8Array, timeoutMs: number): Promise<PostResponse> {
    return new Promise((resolve, reject) => {
      this.#settle = (error, response) => (error === undefined ? resolve(response!) : reject(error))
      this.#written = false
      this.#response = undefined
      this.#error = undefined
      this.#parser.reset()
      clearTimeout(this.#timer)
      this.#timer = setTimeout(Connection.#onTimeout, timeoutMs, this)
      this.#timer.unref()
      const socket = this.socket
      // Referenced while a request is out: an export under way keeps the
      // process alive (beforeExit's flush depends on it); idle, it does not.
      socket.ref()
      socket.cork()
      socket.write(`${head}${body.byteLength}\r\n\r\n`, 'latin1')
      socket.write(body, () => this.#onWritten())
      socket.uncork()
    })
  }

  /** Waits, unreferenced, for the next request; closed after `ms`, or when the server closes it. */
  idle(ms: number): void {
    this.socket.unref()
    clearTimeout(this.#timer)
    this.#timer = setTimeout(Connection.#onIdleTimeout, ms, this)
    this.#timer.unref()
  }

  static #onTimeout(connection: Connection): void {
    connection.#timer = undefined
    connection.#error = failure('SPANLINE_EXPORT_TIMEOUT', 'export timeout')
    connection.socket.destroy()
  }

  static #onIdleTimeout(connection: Connection): void {
    connection.#timer = undefined
    connection.socket.destroy()
  }

  #onWritten(): void {
    this.#written = true
    // A destroyed connection settles on 'close' instead (its write callback
    // may come before or after that): never pooled, never settled twice.
    if (this.#settle !== undefined && this.#response !== undefined && !this.socket.destroyed) this.#finish()
  }

  #onData(chunk: Buffer): void {
    if (this.#settle === undefined || this.#response !== undefined) {
      // Bytes nobody asked for (on an idle connection, or after a complete
      // response): the connection is out of step; drop it.
      this.socket.destroy()
      return
    }
    let done: boolean
    try {
      done = this.#parser.push(chunk)
    } catch (err) {
      this.#error ??= err as Error
      this.socket.destroy()
      return
    }
    if (!done) return
    const parser = this.#parser
    this.#response = { status: parser.status, headers: parser.headers, body: parser.body() }
    // The body was cut short or runs to the end of the connection: close it.
    if (parser.truncated || !parser.keepAlive) {
      this.socket.destroy()
      return
    }
    if (this.#written) this.#finish()
  }

  /** Response read and body written: settle, and keep the connection for the next request. */
  #finish(): void {
    const settle = this.#settle!
    const response = this.#response!
    this.#settle = undefined
    this.#poster.release(this, this.#parser.idleMs ?? IDLE_MS)
    settle(undefined, response)
  }

  #onClose(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#poster.forget(this)
    const settle = this.#settle
    if (settle === undefined) return
    this.#settle = undefined
    if (this.#response === undefined && this.#parser.endsAtClose()) {
      const parser = this.#parser
      this.#response = { status: parser.status, headers: parser.headers, body: parser.body() }
    }
    // A complete response stands even if the connection then failed (a 413
    // sent before the body was read, then a reset): the server answered.
    if (this.#response !== undefined) settle(undefined, this.#response)
    else settle(this.#error ?? failure('ECONNRESET', 'the connection closed before the response was complete'), undefined)
  }
}

// Parser states.
const HEAD = 0
const LENGTH = 1
const CHUNK_SIZE = 2
const CHUNK_DATA = 3
const CHUNK_END = 4
const TRAILERS = 5
const UNTIL_CLOSE = 6
const DONE = 7

const CR = 13
const LF = 10

/** An HTTP/1.1 response parser fed the bytes of one response as they arrive. */
export class ResponseParser {
  readonly #maxBody: number
  #state = HEAD
  /** Bytes of an incomplete head, chunk-size line or trailer section. */
  #pending: Buffer | undefined = undefined
  #chunks: Buffer[] = []
  #kept = 0
  /** Body bytes still to come: of the Content-Length, or of the current chunk. */
  #remaining = 0
  status = 0
  headers: Record<string, string> = {}
  keepAlive = true
  truncated = false
  /** How long the server keeps an idle connection (its Keep-Alive: timeout), less a margin. */
  idleMs: number | undefined = undefined

  constructor(maxBody: number) {
    this.#maxBody = maxBody
  }

  reset(): void {
    this.#state = HEAD
    this.#pending = undefined
    this.#chunks = []
    this.#kept = 0
    this.#remaining = 0
    this.status = 0
    this.headers = {}
    this.keepAlive = true
    this.truncated = false
    this.idleMs = undefined
  }

  /** The body kept so far. */
  body(): Buffer {
    return this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks)
  }

  /** True when the connection's end completes the response (a body framed by the close). */
  endsAtClose(): boolean {
    return this.#state === UNTIL_CLOSE
  }

  /** Feeds bytes; true once the response is complete (bytes after it are an error). Throws on a malformed response. */
  push(chunk: Buffer): boolean {
    let data = chunk
    if (this.#pending !== undefined) {
      data = Buffer.concat([this.#pending, chunk])
      this.#pending = undefined
    }
    let at = 0
    while (at < data.length) {
      switch (this.#state) {
        case HEAD: {
          const end = data.indexOf('\r\n\r\n', at, 'latin1')
          if (end === -1) {
            if (data.length - at > MAX_HEAD) throw failure('SPANLINE_EXPORT_BAD_RESPONSE', 'response head too large')
            this.#pending = data.subarray(at)
            return false
          }
          if (end - at > MAX_HEAD) throw failure('SPANLINE_EXPORT_BAD_RESPONSE', 'response head too large')
          this.#parseHead(data.toString('latin1', at, end))
          at = end + 4
          break
        }
        case LENGTH:
          at = this.#bodyBytes(data, at, DONE)
          break
        case CHUNK_SIZE: {
          const end = data.indexOf(LF, at)
          if (end === -1) {
            if (data.length - at > 1024) throw failure('SPANLINE_EXPORT_BAD_RESPONSE', 'chunk size line too long')
            this.#pending = data.subarray(at)
            return false
          }
          this.#remaining = parseChunkSize(data.toString('latin1', at, end))
          at = end + 1
          this.#state = this.#remaining === 0 ? TRAILERS : CHUNK_DATA
          break
        }
        case CHUNK_DATA:
          at = this.#bodyBytes(data, at, CHUNK_END)
          break
        case CHUNK_END: {
          // The CRLF after a chunk's data.
          if (data.length - at < 2) {
            this.#pending = data.subarray(at)
            return false
          }
          if (data[at] !== CR || data[at + 1] !== LF) throw failure('SPANLINE_EXPORT_BAD_RESPONSE', 'malformed chunk')
          at += 2
          this.#state = CHUNK_SIZE
          break
        }
        case TRAILERS: {
          // Trailer fields (ignored) up to an empty line.
          if (data[at] === CR && at + 1 < data.length && data[at + 1] === LF) {
            at += 2
            this.#state = DONE
            break
          }
          const end = data.indexOf('\r\n\r\n', at, 'latin1')
          if (end === -1) {
            if (data.length - at > MAX_HEAD) throw failure('SPANLINE_EXPORT_BAD_RESPONSE', 'trailers too large')
            this.#pending = data.subarray(at)
            return false
          }
          at = end + 4
          this.#state = DONE
          break
        }
        case UNTIL_CLOSE:
          this.#keep(data, at, data.length - at)
          at = data.length
          break
        case DONE:
          throw failure('SPANLINE_EXPORT_BAD_RESPONSE', 'bytes after the end of the response')
      }
      if (this.truncated) return true
    }
    return this.#state === DONE
  }

  /**
   * Body bytes of a known count (the Content-Length, or the current chunk's
   * size) from `at`: kept, and the state moves to `next` once all came.
   * Returns where the bytes it took end.
   */
  #bodyBytes(data: Buffer, at: number, next: number): number {
    const n = Math.min(this.#remaining, data.length - at)
    this.#keep(data, at, n)
    this.#remaining -= n
    if (this.#remaining === 0) this.#state = next
    return at + n
  }

  /** Keeps up to maxBody bytes of the body; past that the response is cut short (truncated). */
  #keep(data: Buffer, at: number, n: number): void {
    const room = this.#maxBody - this.#kept
    if (n > room) {
      n = room
      this.truncated = true
    }
    if (n > 0) {
      this.#chunks.push(data.subarray(at, at + n))
      this.#kept += n
    }
  }

  #parseHead(head: string): void {
    const lines = head.split('\r\n')
    const statusLine = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0]!)
    if (statusLine === null) throw failure('SPANLINE_EXPORT_BAD_RESPONSE', `not an HTTP/1.x response: ${JSON.stringify(lines[0]!.slice(0, 40))}`)
    const status = Number(statusLine[2])
    const headers: Record<string, string> = {}
    let last = ''
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!
      if ((line.startsWith(' ') || line.startsWith('\t')) && last !== '') {
        // obs-fold (RFC 9112 5.2): a continuation of the previous field.
        headers[last] += ` ${line.trim()}`
        continue
      }
      const colon = line.indexOf(':')
      if (colon <= 0) throw failure('SPANLINE_EXPORT_BAD_RESPONSE', 'malformed response header')
      const name = line.slice(0, colon).toLowerCase()
      const value = line.slice(colon + 1).trim()
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
      last = name
    }
    // Interim responses (100 Continue, 103 Early Hints): the final one follows.
    if (status >= 100 && status < 200 && status !== 101) return
    this.status = status
    this.headers = headers
    const connection = headers.connection?.toLowerCase() ?? ''
    this.keepAlive = statusLine[1] === '1' ? !/(^|,)\s*close\s*(,|$)/.test(connection) : /(^|,)\s*keep-alive\s*(,|$)/.test(connection)
    const timeout = /(?:^|,)\s*timeout=(\d+)/i.exec(headers['keep-alive'] ?? '')
    if (timeout !== null) this.idleMs = Math.min(IDLE_MS, Math.max(0, Number(timeout[1]) * 1000 - 1000))
    if (status === 101) throw failure('SPANLINE_EXPORT_BAD_RESPONSE', 'unexpected protocol switch')
    const te = headers['transfer-encoding']
    const length = headers['content-length']
    if (status === 204 || status === 304) this.#state = DONE
    else if (te !== undefined) {
      // RFC 9112 6.3: chunked must be the last coding; anything else is read to the close.
      if (/(^|,)\s*chunked\s*$/i.test(te)) this.#state = CHUNK_SIZE
      else {
        this.#state = UNTIL_CLOSE
        this.keepAlive = false
      }
      // Both framings at once is a smuggling sign: use chunked, never reuse the connection.
      if (length !== undefined) this.keepAlive = false
    } else if (length !== undefined) {
      if (!/^\d{1,15}$/.test(length)) throw failure('SPANLINE_EXPORT_BAD_RESPONSE', `invalid content-length ${JSON.stringify(length.slice(0, 40))}`)
      this.#remaining = Number(length)
      this.#state = this.#remaining === 0 ? DONE : LENGTH
    } else {
      this.#state = UNTIL_CLOSE
      this.keepAlive = false
    }
  }
}

/** A chunk-size line (RFC 9112 7.1): hex digits, then optional extensions, then CR. */
function parseChunkSize(line: string): number {
  const m = /^([0-9a-fA-F]{1,12})[ \t]*(?:;[^\r]*)?\r$/.exec(line)
  if (m === null) throw failure('SPANLINE_EXPORT_BAD_RESPONSE', 'malformed chunk size')
  return parseInt(m[1]!, 16)
}
