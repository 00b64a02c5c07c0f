import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { EntryWatcher, type ModuleTarget } from './module-hooks.ts'
import { EXPRESS_RANGE, KOA_RANGE } from './version.ts'

// The decisions behind both mechanisms, in process (nothing is installed
// here: installing would hook jest's own module loading).
let dir: string
const patched: { name: string; exports: unknown; version: string }[] = []
const targets: ModuleTarget[] = [
  { name: 'express', entry: 'index.js', range: EXPRESS_RANGE, patch: (exports, version) => { patched.push({ name: 'express', exports, version }) } },
  { name: 'koa', entry: 'lib/application.js', range: KOA_RANGE, patch: (exports, version) => { patched.push({ name: 'koa', exports, version }) } },
]

function write(rel: string, text: string): string {
  const file = join(dir, rel)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, text)
  return file
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'spanline-hooks-'))
  write('a/node_modules/express/package.json', JSON.stringify({ name: 'express', version: '5.1.0' }))
  write('a/node_modules/express/index.js', 'module.exports = 1')
  write('b/node_modules/express/package.json', JSON.stringify({ name: 'express', version: '6.0.0' }))
  write('b/node_modules/express/index.js', 'module.exports = 1')
  write('c/node_modules/koa/package.json', JSON.stringify({ name: 'koa-fork', version: '3.0.0' }))
  write('c/node_modules/koa/lib/application.js', 'module.exports = 1')
  write('d/node_modules/koa/package.json', JSON.stringify({ name: 'koa', version: '2.16.1' }))
  write('d/node_modules/koa/lib/application.js', 'module.exports = 1')
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))
beforeEach(() => { patched.length = 0 })

const url = (rel: string): string => pathToFileURL(join(dir, rel)).href

describe('EntryWatcher.loadHook (module.registerHooks)', () => {
  it('returns the next hook\'s result object itself for every other module', () => {
    const watcher = new EntryWatcher(targets)
    for (const rel of ['app.js', 'a/node_modules/express/lib/express.js', 'a/node_modules/express-session/index.js', 'express/index.js']) {
      const result = { format: 'commonjs', source: 'x' }
      expect(watcher.loadHook(url(rel), {}, () => result)).toBe(result)
    }
  })

  it('appends one statement to a supported entry module, after the untouched original', () => {
    const watcher = new EntryWatcher(targets)
    const source = 'module.exports = function express() {}\n// last line without newline'
    const out = watcher.loadHook(url('a/node_modules/express/index.js'), {}, () => ({ format: 'commonjs', source: Buffer.from(source) }))
    expect(out.format).toBe('commonjs')
    const text = String(out.source)
    expect(text.startsWith(source + '\n')).toBe(true)
    expect(text.slice(source.length)).toBe(`\n;globalThis[Symbol.for('spanline.auto.loaded')]?.(module.exports, ${JSON.stringify(join(dir, 'a/node_modules/express/index.js'))});\n`)
  })

  it('leaves alone unknown versions, other packages in a folder of that name, and ES modules', () => {
    const watcher = new EntryWatcher(targets)
    const result = { format: 'commonjs', source: 'x' }
    expect(watcher.loadHook(url('b/node_modules/express/index.js'), {}, () => result)).toBe(result)
    expect(watcher.loadHook(url('c/node_modules/koa/lib/application.js'), {}, () => result)).toBe(result)
    const esm = { format: 'module', source: 'x' }
    expect(watcher.loadHook(url('d/node_modules/koa/lib/application.js'), {}, () => esm)).toBe(esm)
    // require() gives no format: still appended for a supported version.
    expect(String(watcher.loadHook(url('d/node_modules/koa/lib/application.js'), {}, () => ({ source: 'x' })).source)).toContain('spanline.auto.loaded')
  })

  it('passes errors of the next hooks through unchanged', () => {
    const watcher = new EntryWatcher(targets)
    const error = new Error('ENOENT-ish')
    expect(() => watcher.loadHook(url('a/node_modules/express/index.js'), {}, () => { throw error })).toThrow(error)
  })
})

describe('EntryWatcher.onEvaluated', () => {
  it('patches a supported entry once per exports object, with its version', () => {
    const watcher = new EntryWatcher(targets)
    const exports = function express(): void {}
    const file = join(dir, 'a/node_modules/express/index.js')
    watcher.onEvaluated(exports, file)
    watcher.onEvaluated(exports, file)
    expect(patched).toEqual([{ name: 'express', exports, version: '5.1.0' }])
    watcher.onEvaluated({}, join(dir, 'b/node_modules/express/index.js'))
    watcher.onEvaluated({}, join(dir, 'c/node_modules/koa/lib/application.js'))
    watcher.onEvaluated({}, join(dir, 'nowhere/node_modules/koa/lib/application.js'))
    expect(patched).toHaveLength(1)
  })

  it('a patch that throws never reaches the app', () => {
    const watcher = new EntryWatcher([{ ...targets[0]!, patch: () => { throw new Error('incompatible') } }])
    expect(() => watcher.onEvaluated({}, join(dir, 'a/node_modules/express/index.js'))).not.toThrow()
  })
})
