import { debug } from './diag.ts'
import type { Attributes, AttributeValue } from './types.ts'

/**
 * Checks one attribute value and applies the length limit. Returns undefined
 * for values OTLP cannot carry (null, objects, mixed arrays), which are
 * dropped (OpenTelemetry's rule), so a bad value from user code never breaks
 * export. Strings are truncated to `maxLength`, in arrays too.
 */
export function cleanAttributeValue(value: unknown, maxLength: number): AttributeValue | undefined {
  switch (typeof value) {
    case 'string':
      return value.length > maxLength ? value.slice(0, maxLength) : value
    case 'number':
    case 'boolean':
      return value
    case 'object':
      if (Array.isArray(value)) return cleanArray(value, maxLength)
      return undefined
    default:
      return undefined
  }
}

function cleanArray(value: readonly unknown[], maxLength: number): AttributeValue | undefined {
  // Homogeneous arrays only; null/undefined elements are not allowed by OTLP's
  // ArrayValue of typed AnyValues in a way every backend accepts, so the whole
  // value is dropped rather than silently changed.
  let kind: string | undefined
  let truncate = false
  for (let i = 0; i < value.length; i++) {
    const t = typeof value[i]
    if (t !== 'string' && t !== 'number' && t !== 'boolean') return undefined
    if (kind === undefined) kind = t
    else if (kind !== t) return undefined
    if (t === 'string' && (value[i] as string).length > maxLength) truncate = true
  }
  if (!truncate) return value.slice() as AttributeValue
  return (value as string[]).map((s) => (s.length > maxLength ? s.slice(0, maxLength) : s))
}

/**
 * Cuts the string values of the first `count` entries of `pairs` (key,
 * value, key, value...) to `maxLength`, in place: the length limit for
 * attributes made in one step rather than set one by one.
 */
export function cutStringValues(pairs: Array<string | number>, count: number, maxLength: number): void {
  if (maxLength === Infinity) return
  for (let i = 1; i < count; i += 2) {
    const v = pairs[i]!
    if (typeof v === 'string' && v.length > maxLength) pairs[i] = v.slice(0, maxLength)
  }
}

/**
 * Copies `input` into a fresh attributes object within the count and length
 * limits (events and links). Returns the object (null if empty) and how many
 * were dropped.
 */
export function limitAttributes(
  input: Attributes | undefined,
  countLimit: number,
  maxLength: number,
): { attributes: Attributes | null; dropped: number } {
  if (input === undefined) return { attributes: null, dropped: 0 }
  let out: Attributes | null = null
  let count = 0
  let dropped = 0
  for (const key in input) {
    const value = cleanAttributeValue(input[key], maxLength)
    if (value === undefined) {
      if (input[key] !== undefined) debug('attribute %s dropped: unsupported value type', key)
      continue
    }
    if (!isValidKey(key)) continue
    if (count >= countLimit) {
      dropped++
      continue
    }
    out ??= {}
    out[key] = value
    count++
  }
  return { attributes: out, dropped }
}

/** Empty keys are meaningless; `__proto__` would change a plain object's prototype. */
export function isValidKey(key: string): boolean {
  if (key === '' || key === '__proto__') {
    debug('attribute key %j rejected', key)
    return false
  }
  return true
}
