// OpenTelemetry JS for the side-by-side benchmarks lives in bench/otel, a
// plain npm folder outside the pnpm workspace: installing its ~140 packages
// with the workspace would slow down every `npm test`. ensureOtel() installs
// it on first use and returns the path of its package.json, for createRequire.
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const folder = fileURLToPath(new URL('../otel/', import.meta.url))

export function ensureOtel() {
  if (!existsSync(`${folder}node_modules/@opentelemetry/sdk-trace-node/package.json`)) {
    console.error('installing OpenTelemetry JS into bench/otel (once) ...')
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
    execFileSync(npm, ['install', '--prefix', folder, '--no-audit', '--no-fund', '--loglevel=error'], { stdio: 'inherit' })
  }
  return `${folder}package.json`
}
