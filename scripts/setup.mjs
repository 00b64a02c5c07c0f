// One-time (and idempotent) set-up behind `npm start` and `npm test`:
// installs the pnpm-managed dependencies on a machine that has only Node.js
// and npm, then builds every package with `tsc -b` (incremental) and bundles
// each package's output into one file per entry (scripts/bundle.mjs).
// Usage: node scripts/setup.mjs [--no-build]
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const pnpmSpec = rootPkg.packageManager // e.g. "pnpm@10.34.8"
const stampFile = join(root, 'node_modules', '.spanline-setup')

function run(cmd, args, what) {
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: process.env })
  if (res.status !== 0) {
    console.error(`setup: ${what} failed (${cmd} ${args.join(' ')} exited ${res.status ?? res.signal})`)
    process.exit(res.status || 1)
  }
}

// Every manifest and the lock file decide whether an install is due.
function manifestHash() {
  const h = createHash('sha256')
  const files = ['package.json', 'pnpm-lock.yaml', 'pnpm-workspace.yaml']
  for (const dir of ['packages', 'examples', 'bench']) {
    const abs = join(root, dir)
    if (!existsSync(abs)) continue
    if (existsSync(join(abs, 'package.json'))) files.push(join(dir, 'package.json'))
    for (const name of readdirSync(abs).sort()) {
      if (existsSync(join(abs, name, 'package.json'))) files.push(join(dir, name, 'package.json'))
    }
  }
  for (const f of files) {
    h.update(f)
    if (existsSync(join(root, f))) h.update(readFileSync(join(root, f)))
  }
  return h.digest('hex')
}

const want = manifestHash()
const have = existsSync(stampFile) ? readFileSync(stampFile, 'utf8') : ''
if (want !== have) {
  console.log(`setup: installing dependencies with ${pnpmSpec} (through npm exec, no global pnpm needed)`)
  const args = ['exec', '--yes', `--package=${pnpmSpec}`, '--', 'pnpm', 'install']
  // CI must install exactly the committed lock file; a developer who just
  // edited a manifest gets the lock file updated instead.
  if (process.env.CI && existsSync(join(root, 'pnpm-lock.yaml'))) args.push('--frozen-lockfile')
  run('npm', args, 'dependency install')
  writeFileSync(stampFile, manifestHash())
}

if (!process.argv.includes('--no-build')) {
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b'], 'build (tsc -b)')
  run(process.execPath, [join(root, 'scripts', 'bundle.mjs')], 'bundle (scripts/bundle.mjs)')
}
