import { warnOnce } from './diag.ts'

/**
 * Reading OpenTelemetry's environment variables. The rule everywhere: a bad
 * value is reported once (naming the variable and the value) and the default
 * is used, so a typo in a deployment never stops the app. Bad values given in
 * code throw instead (see errors.ts): the developer is there to fix them.
 */
export type Env = Readonly<Record<string, string | undefined>>

export const WARN_INVALID_ENV = 'SPANLINE_INVALID_ENV'

/** The trimmed value, or undefined when unset or blank. */
export function envString(env: Env, name: string): string | undefined {
  const raw = env[name]
  if (raw === undefined) return undefined
  const v = raw.trim()
  return v === '' ? undefined : v
}

/** A non-negative integer, or undefined (unset, or reported as invalid). */
export function envInteger(env: Env, name: string): number | undefined {
  const v = envString(env, name)
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0) {
    warnOnce(WARN_INVALID_ENV, `${name}=${JSON.stringify(env[name])} is not a non-negative integer; using the default`)
    return undefined
  }
  return n
}

/** true/false (case-insensitive), or undefined (unset, or reported as invalid). */
export function envBoolean(env: Env, name: string): boolean | undefined {
  const v = envString(env, name)
  if (v === undefined) return undefined
  const lower = v.toLowerCase()
  if (lower === 'true') return true
  if (lower === 'false') return false
  warnOnce(WARN_INVALID_ENV, `${name}=${JSON.stringify(env[name])} is not "true" or "false"; using the default`)
  return undefined
}

/** A comma-separated list, trimmed, blanks dropped; undefined when unset. */
export function envList(env: Env, name: string): string[] | undefined {
  const v = envString(env, name)
  if (v === undefined) return undefined
  const out: string[] = []
  for (const part of v.split(',')) {
    const p = part.trim()
    if (p !== '') out.push(p)
  }
  return out
}
