import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { TLS_DIR } from './helpers.ts'

/**
 * The BUILT package (dist/bundle/: `npm run build` first) in real Node
 * processes, as apps load it: ESM apps with named imports from node:http
 * (live bindings, kept in step by syncBuiltinESMExports() when the wrap is
 * used), CommonJS apps destructuring require('http'), and fetch() over
 * https, which needs the self-signed test CA at process start
 * (NODE_EXTRA_CA_CERTS).
 */
const packageDir = join(__dirname, '..')

function run(args: string[], env: NodeJS.ProcessEnv = {}): Record<string, unknown> {
  try {
    const stdout = execFileSync(process.execPath, args, {
      cwd: packageDir,
      encoding: 'utf8',
      env: { ...process.env, NODE_NO_WARNINGS: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    return JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string }
    throw new Error(`child failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`)
  }
}

// Shared by the scripts: a tracer into memory, a server recording the
// traceparent it receives, and the check that each header names its span.
const SETUP = `
  const exporter = new InMemorySpanExporter()
  const tracer = createTracer({ env: {}, serviceName: 'child', processors: [new SimpleSpanProcessor(exporter)] })
  const received = []
  const onRequest = (req, res) => { received.push(req.headers.traceparent ?? null); res.end('ok') }
  const listen = (server) => new Promise((r) => server.listen(0, '127.0.0.1', () => r(server.address().port)))
  const until = (req) => new Promise((resolve, reject) => {
    req.on('error', reject)
    req.on('response', (res) => { res.resume(); res.on('end', resolve) })
  })
  const report = (extra) => {
    const spans = exporter.getFinishedSpans().filter((s) => s.kind === 3)
    console.log(JSON.stringify({
      urls: spans.map((s) => new URL(s.attributes['url.full']).pathname),
      parented: spans.every((s) => s.parentSpanId === parent.spanId),
      headersMatch: received.length === spans.length && spans.every((s, i) => received[i] === '00-' + s.traceId + '-' + s.spanId + '-03'),
      ...extra,
    }))
  }
`

describe('module formats (built dist in child processes)', () => {
  beforeAll(() => {
    if (!existsSync(join(packageDir, 'dist', 'bundle', 'index.js'))) {
      throw new Error('packages/http/dist/bundle is missing: build first (npm run build: tsc -b, then node scripts/bundle.mjs)')
    }
  })

  it.each(['auto', 'wrap'])('ESM: named imports from node:http are traced (%s), and restored by uninstrument()', (mode) => {
    const script = `
      import { createServer, get, request } from 'node:http'
      import { createTracer, runWithSpan, SimpleSpanProcessor } from '@spanline/core'
      import { InMemorySpanExporter } from '@spanline/core/testing'
      import { instrument, uninstrument, _forceNodeHttpMode, _nodeHttpMode } from '@spanline/http'
      ${SETUP}
      const before = [request, get]
      if (${JSON.stringify(mode)} === 'wrap') _forceNodeHttpMode('wrap')
      instrument({ tracer })
      const used = _nodeHttpMode()
      const names = [request.name, get.name]
      const base = 'http://127.0.0.1:' + await listen(createServer(onRequest))
      const parent = tracer.startSpan('parent')
      await runWithSpan(parent, async () => {
        await until(request(base + '/named-request').end())
        await until(get(base + '/named-get'))
      })
      parent.end()
      uninstrument()
      report({ used, names, restored: request === before[0] && get === before[1] })
      process.exit(0)
    `
    const out = run(['--input-type=module', '-e', script])
    // The wrappers (if used) keep Node's function names.
    expect(out).toEqual({ urls: ['/named-request', '/named-get'], parented: true, headersMatch: true, used: expect.any(String), names: ['request', 'get'], restored: true })
    if (mode === 'wrap') expect(out.used).toBe('wrap')
  })

  it('CommonJS: `const { get } = require(\'http\')` after instrument() is traced', () => {
    const script = `
      const { createTracer, runWithSpan, SimpleSpanProcessor } = require('@spanline/core')
      const { InMemorySpanExporter } = require('@spanline/core/testing')
      const { instrument, uninstrument } = require('@spanline/http')
      ${SETUP}
      const originalGet = require('http').get
      instrument({ tracer })
      const { get, request, createServer } = require('http')
      const parent = tracer.startSpan('parent')
      listen(createServer(onRequest)).then(async (port) => {
        const base = 'http://127.0.0.1:' + port
        await runWithSpan(parent, async () => {
          await until(get(base + '/cjs-get'))
          await until(request(base + '/cjs-request').end())
        })
        parent.end()
        uninstrument()
        report({ restored: require('http').get === originalGet })
        process.exit(0)
      })
    `
    expect(run(['-e', script])).toEqual({ urls: ['/cjs-get', '/cjs-request'], parented: true, headersMatch: true, restored: true })
  })

  it('fetch() over https (self-signed CA via NODE_EXTRA_CA_CERTS)', () => {
    const script = `
      import { readFileSync } from 'node:fs'
      import { createServer } from 'node:https'
      import { createTracer, runWithSpan, SimpleSpanProcessor } from '@spanline/core'
      import { InMemorySpanExporter } from '@spanline/core/testing'
      import { instrument, uninstrument } from '@spanline/http'
      ${SETUP}
      instrument({ tracer })
      const dir = ${JSON.stringify(TLS_DIR)}
      const port = await listen(createServer({ key: readFileSync(dir + '/key.pem'), cert: readFileSync(dir + '/cert.pem') }, onRequest))
      const parent = tracer.startSpan('parent')
      const body = await runWithSpan(parent, async () => (await fetch('https://127.0.0.1:' + port + '/over-tls')).text())
      parent.end()
      await new Promise((r) => setTimeout(r, 20))
      uninstrument()
      const span = exporter.getFinishedSpans().find((s) => s.kind === 3)
      report({ body, full: span.attributes['url.full'] === 'https://127.0.0.1:' + port + '/over-tls', port: span.attributes['server.port'] === port })
      process.exit(0)
    `
    expect(run(['--input-type=module', '-e', script], { NODE_EXTRA_CA_CERTS: join(TLS_DIR, 'cert.pem') })).toEqual({
      urls: ['/over-tls'], parented: true, headersMatch: true, body: 'ok', full: true, port: true,
    })
  })
})
