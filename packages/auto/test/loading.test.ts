import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { assertBuilt, cleanEnv, packageDir, preload } from './helpers.ts'

/**
 * The preload must never change how the app's own modules load. An app in a
 * temporary folder (no @spanline/auto to resolve there, so the preload is
 * given by path) has modules named like the frameworks: its own
 * `lib/express/index.js`, a `node_modules/express` of an unknown version,
 * and a package called `not-koa` in a `node_modules/koa` folder with Koa's
 * entry path. It reports each module's compiled source (the CommonJS
 * wrapper's text, through `arguments.callee`), what it exported, the module
 * cache, and an error thrown while loading, from require and from import.
 * The report must be the same with and without the preload.
 */
const files: Record<string, string> = {
  'package.json': JSON.stringify({ name: 'loading-app', private: true }),
  'lib/express/index.js': `exports.source = arguments.callee.toString()\nexports.kind = 'app module named express'\n`,
  'node_modules/express/package.json': JSON.stringify({ name: 'express', version: '0.0.1' }),
  'node_modules/express/index.js':
    `function express() { return 'fake' }\nexpress.application = { handle() { return 'original' } }\nexpress.source = arguments.callee.toString()\nmodule.exports = express\n`,
  'node_modules/koa/package.json': JSON.stringify({ name: 'not-koa', version: '3.0.0', main: 'lib/application.js' }),
  'node_modules/koa/lib/application.js':
    `class Application { callback() { return 'original' } }\nApplication.source = arguments.callee.toString()\nmodule.exports = Application\n`,
  'lib/thrower.js': `exports.before = true\nthrow new TypeError('app module failed to load')\n`,
  'lib/esm-thrower.mjs': `export const before = true\nthrow new RangeError('esm app module failed')\n`,
  'lib/esm.mjs': `import express from 'express'\nimport Koa from 'koa'\nimport own from './express/index.js'\nexport default { express, Koa, own }\n`,
  // A CommonJS tree reached first from ESM (not through require).
  'lib/esm-first.mjs': `import a from './tree/a.cjs'\nexport default a\n`,
  'lib/tree/a.cjs': `const b = require('./b.cjs')\nmodule.exports = { b, source: arguments.callee.toString(), cache: typeof require.cache, main: require.main === module, paths: module.paths.length, resolved: require.resolve('./b.cjs').endsWith('b.cjs') }\n`,
  'lib/tree/b.cjs': `module.exports = { parent: module.parent ? require('node:path').basename(module.parent.filename) : null, source: arguments.callee.toString() }\n`,
  'main.cjs': `
const path = require('node:path')
const rel = (f) => path.relative(__dirname, f)
function describeError(e) {
  return { name: e.name, message: e.message, ctor: e.constructor.name,
    frames: e.stack.split('\\n').filter((l) => l.includes(__dirname)).map((l) => l.trim().replace(__dirname, '<app>')) }
}
async function main() {
  const tree = (await import('./lib/esm-first.mjs')).default
  const express = require('express')
  const Koa = require('koa')
  const own = require('./lib/express')
  let thrown
  try { require('./lib/thrower.js') } catch (e) { thrown = describeError(e) }
  let esmThrown
  try { await import('./lib/esm-thrower.mjs') } catch (e) { esmThrown = describeError(e) }
  const esm = (await import('./lib/esm.mjs')).default
  console.log(JSON.stringify({
    express: { source: express.source, handle: express.application.handle.toString(), call: express(), sameFromImport: esm.express === express },
    koa: { source: Koa.source, callback: Koa.prototype.callback.toString(), sameFromImport: esm.Koa === Koa },
    own: { source: own.source, kind: own.kind, sameFromImport: esm.own === own },
    thrown, esmThrown, tree,
    cache: Object.keys(require.cache).filter((f) => f.startsWith(__dirname)).map(rel).sort(),
  }, null, 1))
}
main()
`,
}

let dir: string

beforeAll(() => {
  assertBuilt()
  dir = mkdtempSync(join(tmpdir(), 'spanline-auto-loading-'))
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true })
    writeFileSync(join(dir, name), text)
  }
})

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

function run(args: string[], env: Record<string, string> = {}): { stdout: string; stderr: string } {
  const res = spawnSync(process.execPath, [...args, 'main.cjs'], {
    cwd: dir,
    encoding: 'utf8',
    env: cleanEnv({ OTEL_TRACES_EXPORTER: 'none', ...env }),
  })
  if (res.status !== 0) throw new Error(`child failed (${res.status}): ${res.stdout}\n${res.stderr}`)
  return { stdout: res.stdout, stderr: res.stderr }
}

describe('loading the app\'s own modules', () => {
  it('is the same with the preload as without (modules named like frameworks, thrown errors, the module cache)', () => {
    const plain = run([])
    const report = JSON.parse(plain.stdout) as Record<string, Record<string, unknown>>
    // The report does see what it should: sources, the errors with their frames.
    expect(report.express!.source).toContain("function express() { return 'fake' }")
    expect(report.koa!.source).toContain("callback() { return 'original' }")
    expect(report.thrown).toMatchObject({ name: 'TypeError', message: 'app module failed to load' })
    expect((report.thrown!.frames as string[])[0]).toContain('<app>/lib/thrower.js:2:7')
    expect(report.esmThrown).toMatchObject({ name: 'RangeError', message: 'esm app module failed' })
    expect(report.express!.sameFromImport).toBe(true)
    expect(report.tree).toMatchObject({ b: { parent: 'a.cjs' }, cache: 'object', main: false, resolved: true })

    const imported = run(['--import', pathToFileURL(preload).href])
    const required = run(['--require', preload])
    expect(imported.stdout).toBe(plain.stdout)
    expect(required.stdout).toBe(plain.stdout)
  })

  it('skips a framework of an unknown version with one debug line, and says nothing of other packages', () => {
    const { stderr, stdout } = run(['--import', pathToFileURL(preload).href], { OTEL_LOG_LEVEL: 'debug' })
    expect(JSON.parse(stdout).express.handle).toContain("return 'original'")
    const lines = stderr.split('\n').filter((l) => l.includes('express') && l.includes('outside the supported range'))
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^spanline debug: express 0\.0\.1 at .* is outside the supported range \^4\.17\.0 \|\| \^5\.0\.0; not instrumented/)
    // Nothing about the package in the koa folder (only the start-up summary names Koa).
    expect(stderr.split('\n').filter((l) => l.includes('koa') && !l.includes('instrumented http-server'))).toEqual([])
  })
})

describe('what the preload loads at start-up', () => {
  // Start-up cost (README, "Start-up cost"): nothing the app may never use.
  const probe = `
    const loaded = process.moduleLoadList
    console.log(JSON.stringify({
      entry: require('node:path').basename(require.resolve('@spanline/auto')),
      requireModule: process.features.require_module === true,
      undici: loaded.some((m) => m.includes('undici')),
      zlib: loaded.includes('NativeModule zlib'),
      https: loaded.includes('NativeModule https'),
      tls: loaded.includes('NativeModule tls'),
      clientChannel: Function.prototype.toString.call(require('node:http').ClientRequest).includes('onClientRequestCreatedChannel'),
    }))`

  it.each(['--import', '--require'])('%s @spanline/auto: the synchronous entry where require(esm) exists; not undici, zlib, nor https where Node has the client channel', (flag) => {
    const res = spawnSync(process.execPath, [flag, '@spanline/auto', '-e', probe], {
      cwd: join(__dirname, 'fixtures'),
      encoding: 'utf8',
      env: cleanEnv({ OTEL_TRACES_EXPORTER: 'otlp' }),
    })
    expect(res.status).toBe(0)
    const out = JSON.parse(res.stdout) as Record<string, unknown>
    // "module-sync": the graph behind the entry is loaded with require(), synchronously.
    expect(out.entry).toBe(out.requireModule ? 'index-sync.js' : 'index.js')
    // node:http is taken without its ESM facade, whose WebSocket getters would load undici (Node 22+).
    expect(out.undici).toBe(false)
    // The OTLP exporter takes node:zlib only to gzip.
    expect(out.zlib).toBe(false)
    // https servers are reached through net.Server, https requests through
    // the client channel: node:https (with node:tls and node:crypto) only
    // where its request() must be wrapped (Node 20).
    expect(out.https).toBe(!out.clientChannel)
    expect(out.tls).toBe(!out.clientChannel)
  })

  it('both entries run the same start module: one process requiring the module-sync entry and importing the default one evaluates it once', () => {
    // Each entry is its own bundle and loads start.js (a bundle too) by
    // path; a start inlined into both would be evaluated twice, and say so
    // under NODE_DEBUG=spanline.
    const sync = join(packageDir, 'dist', 'bundle', 'index-sync.js')
    const script = `
      const a = require(${JSON.stringify(sync)})
      import(${JSON.stringify(pathToFileURL(preload).href)}).then((b) => console.log(JSON.stringify({ same: a.tracer === b.tracer && a.shutdown === b.shutdown })))`
    const res = spawnSync(process.execPath, ['-e', script], {
      cwd: join(__dirname, 'fixtures'),
      encoding: 'utf8',
      env: cleanEnv({ OTEL_TRACES_EXPORTER: 'none', NODE_DEBUG: 'spanline' }),
    })
    expect(res.status).toBe(0)
    expect(JSON.parse(res.stdout)).toEqual({ same: true })
    expect(res.stderr).toContain('instrumented')
    expect(res.stderr).not.toContain('loaded a second time')
  })
})
