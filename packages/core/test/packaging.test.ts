import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * These run the BUILT package (dist/bundle/, which `npm test` builds first:
 * tsc -b, then scripts/bundle.mjs) in real Node processes, the way an app
 * installs it: through node_modules, from CommonJS and from ESM, and with two
 * copies of core installed at once.
 */
const coreDir = join(__dirname, '..')
const built = join(coreDir, 'dist', 'bundle', 'index.js')

function install(into: string, version?: string): void {
  mkdirSync(into, { recursive: true })
  const pkg = JSON.parse(readFileSync(join(coreDir, 'package.json'), 'utf8')) as { version: string }
  if (version !== undefined) pkg.version = version
  writeFileSync(join(into, 'package.json'), JSON.stringify(pkg))
  // Only the bundles: what runs must not need tsc's per-file output.
  cpSync(join(coreDir, 'dist', 'bundle'), join(into, 'dist', 'bundle'), { recursive: true })
  if (version !== undefined) {
    // src/version.ts's constant, in whichever bundle file the bundler put it.
    const bundle = join(into, 'dist', 'bundle')
    const declaration = /\bVERSION = (["'])[^"']*\1/
    const files = readdirSync(bundle).filter((f) => f.endsWith('.js') && declaration.test(readFileSync(join(bundle, f), 'utf8')))
    if (files.length !== 1) throw new Error(`VERSION is declared in ${files.length} files of dist/bundle (${files.join(', ')}), expected 1`)
    const file = join(bundle, files[0]!)
    writeFileSync(file, readFileSync(file, 'utf8').replace(declaration, `VERSION = '${version}'`))
  }
}

function run(dir: string, file: string): { stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    return { stdout, stderr: '' }
  } catch (err) {
    const e = err as { stdout: string; stderr: string }
    throw new Error(`child failed:\n${e.stdout}\n${e.stderr}`)
  }
}

describe('packaging (built dist in child processes)', () => {
  let dir: string
  beforeAll(() => {
    if (!existsSync(built)) throw new Error('packages/core/dist is missing: run `npm run build` (npm test does it)')
    dir = mkdtempSync(join(tmpdir(), 'spanline-pkg-'))
    install(join(dir, 'node_modules', '@spanline', 'core'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('a CommonJS app can require() the package and its /testing entry', () => {
    writeFileSync(join(dir, 'app.cjs'), `
      const { createTracer, SimpleSpanProcessor, runWithSpan, getActiveSpan } = require('@spanline/core')
      const { InMemorySpanExporter } = require('@spanline/core/testing')
      const exporter = new InMemorySpanExporter()
      const tracer = createTracer({ serviceName: 'cjs-app', processors: [new SimpleSpanProcessor(exporter)] })
      const parent = tracer.startSpan('parent')
      runWithSpan(parent, () => tracer.startSpan('child').end())
      parent.end()
      const spans = exporter.getFinishedSpans()
      console.log(JSON.stringify({ names: spans.map(s => s.name), linked: spans[0].parentSpanId === spans[1].spanId, active: getActiveSpan() === undefined }))
    `)
    const { stdout } = run(dir, 'app.cjs')
    expect(JSON.parse(stdout)).toEqual({ names: ['child', 'parent'], linked: true, active: true })
  })

  it('an ESM app can import it', () => {
    writeFileSync(join(dir, 'app.mjs'), `
      import { createTracer, VERSION } from '@spanline/core'
      const span = createTracer({ serviceName: 'esm-app' }).startSpan('x')
      console.log(JSON.stringify({ ok: /^[0-9a-f]{32}$/.test(span.traceId), VERSION }))
    `)
    expect(JSON.parse(run(dir, 'app.mjs').stdout)).toEqual({ ok: true, VERSION: expect.any(String) })
  })

  it('two installed copies of core share one context store (and a different version is reported)', () => {
    const nested = join(dir, 'node_modules', 'some-lib', 'node_modules', '@spanline', 'core')
    install(nested, '0.0.1-other')
    writeFileSync(join(dir, 'node_modules', 'some-lib', 'package.json'), JSON.stringify({ name: 'some-lib', version: '1.0.0', main: 'index.js' }))
    writeFileSync(join(dir, 'node_modules', 'some-lib', 'index.js'), `module.exports = require('@spanline/core')`)
    writeFileSync(join(dir, 'two-copies.cjs'), `
      const a = require('@spanline/core')
      const b = require('some-lib')
      const { InMemorySpanExporter } = require('@spanline/core/testing')
      const exporter = new InMemorySpanExporter()
      const tracerA = a.createTracer({ processors: [new a.SimpleSpanProcessor(exporter)] })
      const tracerB = b.createTracer({ processors: [new b.SimpleSpanProcessor(exporter)] })
      const warnings = []
      process.on('warning', (w) => warnings.push(w.message))
      const parent = tracerA.startSpan('from-copy-a')
      const seen = a.runWithSpan(parent, () => {
        tracerB.startSpan('from-copy-b').end()
        return b.getActiveSpan() === parent
      })
      parent.end()
      a.setGlobalTracer(tracerA)
      const spans = exporter.getFinishedSpans()
      setImmediate(() => console.log(JSON.stringify({
        distinctModules: a !== b && a.Tracer !== b.Tracer,
        seen,
        childOfA: spans[0].parentSpanId === parent.spanId,
        globalShared: b.getGlobalTracer() === tracerA,
        warned: warnings.some((w) => w.includes('two versions of @spanline/core')),
      })))
    `)
    const out = JSON.parse(run(dir, 'two-copies.cjs').stdout)
    expect(out).toEqual({ distinctModules: true, seen: true, childOfA: true, globalShared: true, warned: true })
  })
})

describe('every adapter package loads from CommonJS and ESM (built dist)', () => {
  it.each(['express', 'koa', 'fastify'])('@spanline/%s', (name) => {
    const dir = join(__dirname, '..', '..', name)
    if (!existsSync(join(dir, 'dist', 'bundle', 'index.js'))) throw new Error(`packages/${name}/dist is missing: run \`npm run build\``)
    // Self-reference by package name resolves through its "exports", as an installed package does.
    const cjs = execFileSync(process.execPath, ['-e', `console.log(typeof require('@spanline/${name}').tracing)`], { cwd: dir, encoding: 'utf8' })
    expect(cjs.trim()).toBe('function')
    const esm = execFileSync(process.execPath, ['--input-type=module', '-e', `import { tracing } from '@spanline/${name}'; console.log(typeof tracing)`], { cwd: dir, encoding: 'utf8' })
    expect(esm.trim()).toBe('function')
  })
})
