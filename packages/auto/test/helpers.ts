import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { ReceivedSpan } from '@spanline/core/testing'

/**
 * Child processes started the way users start their apps: `node --import
 * @spanline/auto app.mjs` (or --require), from the fixtures folder, where
 * `@spanline/auto` resolves to this package's built dist/bundle/ (a
 * package can import itself by name). Children run on process.execPath, so
 * `npm test` covers every Node it runs jest on.
 */
export const packageDir = join(__dirname, '..')
export const fixturesDir = join(__dirname, 'fixtures')
export const preload = join(packageDir, 'dist', 'bundle', 'index.js')

export function assertBuilt(): void {
  if (!existsSync(preload)) throw new Error('packages/auto/dist/bundle is missing: build first (npm run build: tsc -b, then node scripts/bundle.mjs)')
}

export type Flag = '--import' | '--require'

export interface App {
  readonly port: number
  readonly url: string
  stdout(): string
  stderr(): string
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>
  signal(name: NodeJS.Signals): void
  stop(): Promise<void>
}

export interface StartOptions {
  readonly flag?: Flag | undefined
  /** The preload's specifier (default `@spanline/auto`, resolved from `cwd`). */
  readonly specifier?: string
  readonly env?: Record<string, string | undefined>
  readonly cwd?: string
  /** Extra node flags, before the preload. */
  readonly nodeArgs?: readonly string[]
}

/** The parent's environment without anything that configures tracing. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('OTEL_') || k.startsWith('SPANLINE_') || k === 'NODE_OPTIONS' || k === 'NODE_DEBUG' || k === 'NODE_NO_WARNINGS') continue
    env[k] = v
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k]
    else env[k] = v
  }
  return env
}

const live = new Set<ChildProcess>()

/** Starts `script` (in the fixtures folder) and resolves once it prints `listening <port>`. */
export function startApp(script: string, options: StartOptions = {}): Promise<App> {
  const args = [...(options.nodeArgs ?? [])]
  if (options.flag !== undefined) args.push(options.flag, options.specifier ?? '@spanline/auto')
  args.push(script)
  const child = spawn(process.execPath, args, {
    cwd: options.cwd ?? fixturesDir,
    env: cleanEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  live.add(child)
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    live.delete(child)
    resolve(code)
  }))
  return new Promise((resolve, reject) => {
    let settled = false
    const timer = setTimeout(() => fail(new Error('did not start within 30 s')), 30000)
    function fail(e: Error): void {
      if (settled) return
      settled = true
      clearTimeout(timer)
      child.kill()
      reject(new Error(`${script} ${args.join(' ')}: ${e.message}\nstdout: ${out}\nstderr: ${err}`))
    }
    child.on('exit', (code) => fail(new Error(`exited with ${code}`)))
    child.stdout!.on('data', () => {
      const m = /listening (\d+)/.exec(out)
      if (m === null || settled) return
      settled = true
      clearTimeout(timer)
      const port = Number(m[1])
      resolve({
        port,
        url: `http://127.0.0.1:${port}`,
        stdout: () => out,
        stderr: () => err,
        exited,
        signal(name) {
          child.kill(name)
        },
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill()
          await exited
        },
      })
    })
  })
}

/** Kills every child still running (afterAll). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((c) => new Promise<void>((resolve) => {
    if (c.exitCode !== null || c.signalCode !== null) return resolve()
    c.on('exit', () => resolve())
    c.kill()
  })))
}

/** Polls `read` until `ok` holds (or throws after `timeoutMs`), returning the last value. */
export async function waitFor<T>(read: () => T, ok: (value: T) => boolean, timeoutMs = 10000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = read()
    if (ok(value)) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(value, null, 1).slice(0, 2000)}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

export const SERVER = 2
export const CLIENT = 3

/** The SERVER spans of requests to `path` (by url.path). */
export function serverSpans(spans: readonly ReceivedSpan[], path: string): ReceivedSpan[] {
  return spans.filter((s) => s.kind === SERVER && s.attributes['url.path'] === path)
}

export async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { headers })
  const text = await res.text()
  let body: Record<string, unknown>
  try {
    body = JSON.parse(text) as Record<string, unknown>
  } catch {
    body = { text }
  }
  return { status: res.status, body }
}
