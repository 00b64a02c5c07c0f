import { createServer, type Server, type Socket } from 'node:net'
import fc from 'fast-check'
import { HttpPoster, ResponseParser } from './http-post.ts'

/** Feeds `raw` to a fresh parser in the given pieces; returns what it parsed, or the error code. */
function parse(pieces: Buffer[], maxBody = 1 << 20): { status: number; headers: Record<string, string>; body: string; done: boolean; keepAlive: boolean } | string {
  const parser = new ResponseParser(maxBody)
  let done = false
  try {
    for (const piece of pieces) {
      if (done) throw Object.assign(new Error('bytes after done'), { code: 'AFTER' })
      done = parser.push(piece)
    }
  } catch (err) {
    return (err as { code: string }).code
  }
  if (!done && parser.endsAtClose()) done = true
  return { status: parser.status, headers: parser.headers, body: parser.body().toString(), done, keepAlive: parser.keepAlive }
}

/** `raw` cut at the given offsets. */
function split(raw: string, cuts: number[]): Buffer[] {
  const bytes = Buffer.from(raw, 'latin1')
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const pieces: Buffer[] = []
  let from = 0
  for (const c of [...at, bytes.length]) {
    if (c > from) pieces.push(bytes.subarray(from, c))
    from = Math.max(from, c)
  }
  return pieces
}

const RESPONSES: [string, string, { status: number; body: string; headers?: Record<string, string>; keepAlive?: boolean }][] = [
  ['content-length', 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}', { status: 200, body: '{"ok":true}', headers: { 'content-type': 'application/json' } }],
  ['empty body', 'HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n', { status: 200, body: '' }],
  ['204 without length', 'HTTP/1.1 204 No Content\r\n\r\n', { status: 204, body: '' }],
  ['chunked, extensions and trailers', 'HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n5;note=x\r\nhello\r\n1\r\n \r\nA \r\n0123456789\r\n0\r\nx-trailer: 1\r\n\r\n', { status: 400, body: 'hello 0123456789' }],
  ['chunked, no trailers', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', { status: 200, body: 'abc' }],
  ['interim responses first', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', { status: 200, body: 'ok' }],
  ['repeated and folded headers', 'HTTP/1.1 200 OK\r\nX-A: 1\r\nx-a: 2\r\nX-Folded: one\r\n  two\r\nContent-Length: 0\r\n\r\n', { status: 200, body: '', headers: { 'x-a': '1, 2', 'x-folded': 'one two' } }],
  ['connection: close', 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx', { status: 200, body: 'x', keepAlive: false }],
  ['HTTP/1.0 without keep-alive', 'HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx', { status: 200, body: 'x', keepAlive: false }],
  ['body up to the close', 'HTTP/1.1 502 Bad Gateway\r\n\r\nupstream died', { status: 502, body: 'upstream died', keepAlive: false }],
]

describe('ResponseParser', () => {
  it.each(RESPONSES)('parses a response (%s) the same however its bytes arrive (property)', (_name, raw, expected) => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 12 }), (cuts) => {
        const got = parse(split(raw, cuts))
        expect(got).toMatchObject({ status: expected.status, body: expected.body, done: true, keepAlive: expected.keepAlive ?? true })
        if (expected.headers !== undefined) expect(got).toMatchObject({ headers: expected.headers })
      }),
      { numRuns: 100 },
    )
    // And one byte at a time.
    expect(parse(split(raw, [...Array(raw.length).keys()]))).toMatchObject({ status: expected.status, body: expected.body, done: true })
  })

  it.each([
    ['not HTTP', 'SSH-2.0-OpenSSH\r\n\r\n'],
    ['a header without a colon', 'HTTP/1.1 200 OK\r\nbroken\r\n\r\n'],
    ['a bad content-length', 'HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n'],
    ['a negative content-length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n'],
    ['a bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'],
    ['chunk data without its CRLF', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n'],
    ['bytes after the response', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxy'],
    ['a protocol switch', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n'],
  ])('rejects a malformed response: %s', (_name, raw) => {
    expect(parse([Buffer.from(raw, 'latin1')])).toBe('SPANLINE_EXPORT_BAD_RESPONSE')
  })

  it('rejects a response head past 64 KiB instead of buffering it', () => {
    const parser = new ResponseParser(1024)
    const line = Buffer.from(`X-Junk: ${'j'.repeat(1000)}\r\n`)
    parser.push(Buffer.from('HTTP/1.1 200 OK\r\n'))
    expect(() => {
      for (let i = 0; i < 100; i++) parser.push(line)
    }).toThrow(expect.objectContaining({ code: 'SPANLINE_EXPORT_BAD_RESPONSE' }))
  })

  it('keeps at most maxBody bytes of a body and reports it cut short', () => {
    const got = new ResponseParser(10)
    expect(got.push(Buffer.from('HTTP/1.1 500 x\r\nContent-Length: 1000000\r\n\r\n0123456789abcdef'))).toBe(true)
    expect(got.truncated).toBe(true)
    expect(got.body().toString()).toBe('0123456789')
  })

  it('takes the server\'s keep-alive timeout, less a second, when shorter than its own', () => {
    const parser = new ResponseParser(10)
    parser.push(Buffer.from('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=2, max=100\r\nContent-Length: 0\r\n\r\n'))
    expect(parser.idleMs).toBe(1000)
  })
})

interface Scripted {
  readonly server: Server
  readonly url: URL
  /** Requests as received (head and body), per connection. */
  readonly connections: { socket: Socket; requests: { head: string; body: Buffer }[] }[]
  close(): Promise<void>
}

/**
 * A TCP server that reads HTTP/1.1 POSTs (content-length framed) and answers
 * each with `answer(requestIndex, socket)`: raw bytes, or nothing (the
 * handler writes or closes itself).
 */
async function scripted(answer: (i: number, socket: Socket) => string | undefined): Promise<Scripted> {
  const connections: Scripted['connections'] = []
  let count = 0
  const server = createServer((socket) => {
    const connection = { socket, requests: [] as { head: string; body: Buffer }[] }
    connections.push(connection)
    let buffered = Buffer.alloc(0)
    socket.on('error', () => {})
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk])
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n')
        if (end === -1) return
        const head = buffered.toString('latin1', 0, end)
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0)
        if (buffered.length < end + 4 + length) return
        connection.requests.push({ head, body: buffered.subarray(end + 4, end + 4 + length) })
        buffered = buffered.subarray(end + 4 + length)
        const reply = answer(count++, socket)
        if (reply !== undefined) socket.write(reply)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    server,
    url: new URL(`http://127.0.0.1:${port}/v1/traces?x=1`),
    connections,
    close: () => {
      for (const c of connections) c.socket.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'
const options = { headers: { 'content-type': 'application/x-protobuf', 'x-api-key': 'k' }, maxBody: 64 * 1024 }

describe('HttpPoster', () => {
  let server: Scripted | undefined
  afterEach(() => server?.close())

  it('sends batch after batch over one kept-alive connection, bodies intact', async () => {
    server = await scripted(() => OK)
    const poster = new HttpPoster(server.url, options)
    const bodies = [Buffer.from('first'), Buffer.alloc(300_000, 7), Buffer.from([0, 1, 2, 13, 10])]
    for (const body of bodies) {
      const response = await poster.post(body, 2000)
      expect(response).toMatchObject({ status: 200, body: Buffer.from('ok') })
    }
    poster.close()
    expect(server.connections).toHaveLength(1)
    const requests = server.connections[0]!.requests
    expect(requests.map((r) => r.body)).toEqual(bodies)
    expect(requests[0]!.head.split('\r\n')).toEqual([
      'POST /v1/traces?x=1 HTTP/1.1',
      `host: ${server.url.host}`,
      'content-type: application/x-protobuf',
      'x-api-key: k',
      'content-length: 5',
    ])
  })

  it('opens a new connection after Connection: close, after the server closed an idle one, and after a bad response', async () => {
    server = await scripted((i) => (i === 0 ? 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n' : i === 2 ? 'HTTP/1.1 200 OK\r\nContent-Length: zzz\r\n\r\n' : OK))
    const poster = new HttpPoster(server.url, options)
    expect((await poster.post(Buffer.from('a'), 2000)).status).toBe(200)
    expect((await poster.post(Buffer.from('b'), 2000)).status).toBe(200)
    // The server drops the idle connection (its keep-alive timeout).
    server.connections[1]!.socket.destroy()
    await new Promise((r) => setTimeout(r, 50))
    await expect(poster.post(Buffer.from('c'), 2000)).rejects.toMatchObject({ code: 'SPANLINE_EXPORT_BAD_RESPONSE' })
    expect((await poster.post(Buffer.from('d'), 2000)).status).toBe(200)
    poster.close()
    expect(server.connections.map((c) => c.requests.map((r) => r.body.toString()))).toEqual([['a'], ['b'], ['c'], ['d']])
  })

  it('reads a body framed by the end of the connection', async () => {
    server = await scripted((_i, socket) => {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\n\r\nbusy, come back later')
      return undefined
    })
    const poster = new HttpPoster(server.url, options)
    const response = await poster.post(Buffer.from('x'), 2000)
    expect(response.status).toBe(503)
    expect(response.headers['retry-after']).toBe('3')
    expect(response.body.toString()).toBe('busy, come back later')
    poster.close()
  })

  it('fails with the network error when nothing listens, and with a timeout when nothing answers', async () => {
    server = await scripted(() => undefined)
    const poster = new HttpPoster(server.url, options)
    const t0 = Date.now()
    await expect(poster.post(Buffer.from('x'), 200)).rejects.toMatchObject({ code: 'SPANLINE_EXPORT_TIMEOUT' })
    expect(Date.now() - t0).toBeLessThan(1500)
    const port = server.url.port
    await server.close()
    server = undefined
    const refused = new HttpPoster(new URL(`http://127.0.0.1:${port}/v1/traces`), options)
    await expect(refused.post(Buffer.from('x'), 2000)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  })

  it('fails when the connection closes halfway through a response', async () => {
    server = await scripted((_i, socket) => {
      socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part')
      return undefined
    })
    const poster = new HttpPoster(server.url, options)
    await expect(poster.post(Buffer.from('x'), 2000)).rejects.toMatchObject({ code: 'ECONNRESET' })
  })

  it('settles only once the body has been written, even when the response comes first', async () => {
    // The server answers as soon as the head arrives, then reads nothing for
    // 300 ms: a body larger than the kernel's socket buffers can hold cannot
    // be fully written before it reads again.
    let resumedAt = Infinity
    const srv = createServer((socket) => {
      socket.once('data', () => {
        socket.write(OK)
        socket.pause()
        setTimeout(() => {
          resumedAt = Date.now()
          socket.resume()
        }, 300)
      })
    })
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
    try {
      const poster = new HttpPoster(new URL(`http://127.0.0.1:${(srv.address() as { port: number }).port}/`), options)
      const response = await poster.post(Buffer.alloc(64 * 1024 * 1024, 1), 10_000)
      expect(response.status).toBe(200)
      expect(Date.now()).toBeGreaterThanOrEqual(resumedAt)
      poster.close()
    } finally {
      await new Promise((resolve) => srv.close(resolve))
    }
  })

  it('takes an early final answer that closes the connection while the body is still being written', async () => {
    // A 413 before the body was read, as a proxy would send: the answer stands,
    // the unwritten rest of the body is dropped with the connection.
    const srv = createServer((socket) => {
      socket.on('error', () => {})
      socket.once('data', () => {
        socket.pause()
        socket.write('HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 8\r\n\r\ntoo big!')
        setTimeout(() => socket.destroy(), 100)
      })
    })
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
    try {
      const poster = new HttpPoster(new URL(`http://127.0.0.1:${(srv.address() as { port: number }).port}/`), options)
      const response = await poster.post(Buffer.alloc(64 * 1024 * 1024, 1), 10_000)
      expect(response.status).toBe(413)
      expect(response.body.toString()).toBe('too big!')
      // Nothing left behind fires later (a late write callback must not settle or pool anything).
      await new Promise((r) => setTimeout(r, 200))
      poster.close()
    } finally {
      await new Promise((resolve) => srv.close(resolve))
    }
  })

  it('refuses requests after close()', async () => {
    server = await scripted(() => OK)
    const poster = new HttpPoster(server.url, options)
    await poster.post(Buffer.from('x'), 2000)
    const serverSide = server.connections[0]!.socket
    const closed = new Promise((resolve) => serverSide.once('close', resolve))
    poster.close()
    await expect(poster.post(Buffer.from('y'), 2000)).rejects.toMatchObject({ code: 'SPANLINE_EXPORT_CLOSED' })
    // The idle connection was closed, not left to its idle timer.
    await closed
  })
})
