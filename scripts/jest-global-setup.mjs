// jest's globalSetup: refuses to run when a package's bundles (what its
// "exports" load) are older than the tsc output they were made from, i.e.
// after `tsc -b` without scripts/bundle.mjs. The tests that start Node
// processes (zero-code preload, packaging, examples) would otherwise run the
// previous build's code and pass or fail for the wrong reason. A package not
// built at all is left to the tests that need it (they say so).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

/** The newest mtime (ms) of the .js files under `dir`, skipping `skip`; 0 when none. */
function newestJs(dir, skip) {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (path === skip) continue
    if (entry.isDirectory()) newest = Math.max(newest, newestJs(path, skip))
    else if (entry.name.endsWith('.js')) newest = Math.max(newest, statSync(path).mtimeMs)
  }
  return newest
}

/** The files of dist/bundle/ a package's "exports" name. */
function exported(pkg) {
  const targets = []
  const walk = (value) => {
    if (typeof value === 'string') {
      if (value.startsWith('./dist/bundle/')) targets.push(value)
    } else if (value !== null && typeof value === 'object') Object.values(value).forEach(walk)
  }
  walk(pkg.exports)
  return targets
}

export default function checkBundles() {
  const stale = []
  for (const name of readdirSync(join(root, 'packages'))) {
    const dir = join(root, 'packages', name)
    if (!existsSync(join(dir, 'package.json'))) continue
    const targets = exported(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')))
    const dist = join(dir, 'dist')
    const bundle = join(dist, 'bundle')
    const built = targets.length > 0 && existsSync(dist) ? newestJs(dist, bundle) : 0
    if (built === 0) continue
    const outputs = existsSync(bundle) ? readdirSync(bundle).filter((f) => f.endsWith('.js')) : []
    // scripts/bundle.mjs rewrites the whole folder: its oldest file dates the bundle.
    const bundled = Math.min(...outputs.map((f) => statSync(join(bundle, f)).mtimeMs))
    if (!targets.every((t) => existsSync(join(dir, t))) || bundled < built) stale.push(`packages/${name}/dist/bundle`)
  }
  if (stale.length > 0) {
    throw new Error(`${stale.join(', ')}: missing or older than tsc's output beside it, so the tests that start ` +
      'Node processes would run the previous build. Run `node scripts/bundle.mjs` after `tsc -b` (`npm run build` does both).')
  }
}
