import { cleanAttributeValue } from './attributes.ts'
import { warnOnce } from './diag.ts'
import { envString, WARN_INVALID_ENV, type Env } from './env.ts'
import type { Attributes } from './types.ts'
import { VERSION } from './version.ts'
// Builtins by process.getBuiltinModule(), not ES imports: start-up time (see @spanline/core's src/diag.ts).
const { hostname } = process.getBuiltinModule('node:os')
const { dirname, join, resolve, sep } = process.getBuiltinModule('node:path')
const fs = process.getBuiltinModule('node:fs')

/** The entity producing spans: one per tracer, shared by all its spans. */
export interface Resource {
  readonly attributes: Attributes
}

export interface ResourceOptions {
  /** service.name; wins over every other source. */
  readonly serviceName?: string
  /** Extra attributes; they win over detected ones, except service.name from `serviceName`. */
  readonly attributes?: Attributes
  readonly env?: Env
  /** Where to start looking for the app's package.json (default: the main script's folder, then the cwd). */
  readonly appDir?: string
}

/**
 * Builds the resource. service.name comes from, in order: the option,
 * OTEL_SERVICE_NAME, service.name in OTEL_RESOURCE_ATTRIBUTES, the `name` of
 * the app's package.json, and last `unknown_service:node`
 * (https://opentelemetry.io/docs/specs/semconv/resource/#service).
 */
export function createResource(options: ResourceOptions = {}): Resource {
  const env = options.env ?? process.env
  const fromEnv = parseResourceAttributes(env)
  const attributes: Attributes = {
    'host.name': hostname(),
    'process.pid': process.pid,
    'process.runtime.name': 'nodejs',
    'process.runtime.version': process.versions.node,
    'process.runtime.description': 'Node.js',
    'telemetry.sdk.name': 'spanline',
    'telemetry.sdk.language': 'nodejs',
    'telemetry.sdk.version': VERSION,
    ...fromEnv,
  }
  if (options.attributes !== undefined) {
    for (const key in options.attributes) {
      const v = cleanAttributeValue(options.attributes[key], Infinity)
      if (v !== undefined) attributes[key] = v
    }
  }
  attributes['service.name'] = options.serviceName ??
    envString(env, 'OTEL_SERVICE_NAME') ??
    (typeof fromEnv['service.name'] === 'string' ? fromEnv['service.name'] : undefined) ??
    (typeof options.attributes?.['service.name'] === 'string' ? options.attributes['service.name'] : undefined) ??
    appPackageName(options.appDir) ??
    'unknown_service:node'
  return { attributes }
}

/**
 * OTEL_RESOURCE_ATTRIBUTES: `key1=value1,key2=value2`, values
 * percent-encoded (W3C Baggage octets). A malformed pair is reported and
 * skipped; the rest are kept.
 */
export function parseResourceAttributes(env: Env): Attributes {
  const raw = envString(env, 'OTEL_RESOURCE_ATTRIBUTES')
  const out: Attributes = {}
  if (raw === undefined) return out
  for (const pair of raw.split(',')) {
    if (pair.trim() === '') continue
    const eq = pair.indexOf('=')
    const key = eq > 0 ? pair.slice(0, eq).trim() : ''
    if (key === '' || key === '__proto__') {
      warnOnce(WARN_INVALID_ENV, `OTEL_RESOURCE_ATTRIBUTES: ignoring ${JSON.stringify(pair)}, expected key=value`)
      continue
    }
    try {
      out[key] = decodeURIComponent(pair.slice(eq + 1).trim())
    } catch {
      warnOnce(WARN_INVALID_ENV, `OTEL_RESOURCE_ATTRIBUTES: ignoring ${JSON.stringify(pair)}, its value is not valid percent-encoding`)
    }
  }
  return out
}

/** The `name` of the nearest package.json above the app's entry point. */
function appPackageName(appDir: string | undefined): string | undefined {
  const starts = appDir !== undefined ? [appDir] : [process.argv[1] ? dirname(resolve(process.argv[1])) : undefined, process.cwd()]
  for (const start of starts) {
    if (start === undefined) continue
    let dir = resolve(start)
    // An entry point inside node_modules is a tool (jest, a CLI), not the app.
    if (dir.split(sep).includes('node_modules')) continue
    for (;;) {
      const file = join(dir, 'package.json')
      if (fs.existsSync(file)) {
        try {
          const name = (JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: unknown }).name
          if (typeof name === 'string' && name !== '') return name
        } catch {
          // An unreadable package.json: keep looking further up.
        }
      }
      const parent = dirname(dir)
      if (parent === dir) break
      dir = parent
    }
  }
  return undefined
}
