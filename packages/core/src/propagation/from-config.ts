import { warnOnce } from '../diag.ts'
import { envList, WARN_INVALID_ENV, type Env } from '../env.ts'
import { ERR_INVALID_PROPAGATOR, TracingError } from '../errors.ts'
import { B3MultiPropagator, B3SinglePropagator } from './b3-propagator.ts'
import { W3CBaggagePropagator } from './baggage-propagator.ts'
import { CompositePropagator } from './composite.ts'
import type { TextMapPropagator } from './propagator.ts'
import { W3CTraceContextPropagator } from './trace-context.ts'

const FACTORIES: Readonly<Record<string, () => TextMapPropagator>> = {
  tracecontext: () => new W3CTraceContextPropagator(),
  baggage: () => new W3CBaggagePropagator(),
  b3: () => new B3SinglePropagator(),
  b3multi: () => new B3MultiPropagator(),
}

export const PROPAGATOR_NAMES: readonly string[] = Object.freeze([...Object.keys(FACTORIES), 'none'])

/**
 * A propagator from names, as OTEL_PROPAGATORS spells them: `tracecontext`,
 * `baggage`, `b3` (single header), `b3multi`, or `none`. Throws on an unknown
 * name (for names given in code).
 *
 * @example
 * createPropagator(['tracecontext', 'baggage', 'b3multi'])
 */
export function createPropagator(names: readonly string[]): TextMapPropagator {
  for (const name of names) {
    if (name !== 'none' && !Object.hasOwn(FACTORIES, name)) {
      throw new TracingError(ERR_INVALID_PROPAGATOR, `unknown propagator "${name}"; known: ${PROPAGATOR_NAMES.join(', ')}`)
    }
  }
  return build(names)
}

function build(names: readonly string[]): TextMapPropagator {
  if (names.includes('none')) return new CompositePropagator([])
  const unique = [...new Set(names)]
  const list = unique.map((n) => FACTORIES[n]!())
  return list.length === 1 ? list[0]! : new CompositePropagator(list)
}

/**
 * OTEL_PROPAGATORS (default `tracecontext,baggage`). Unknown names are
 * reported once and skipped; `none` disables propagation.
 */
export function propagatorFromEnv(env: Env): TextMapPropagator {
  const names = envList(env, 'OTEL_PROPAGATORS')
  if (names === undefined) return build(['tracecontext', 'baggage'])
  const known: string[] = []
  for (const raw of names) {
    const name = raw.toLowerCase()
    if (name === 'none' || Object.hasOwn(FACTORIES, name)) known.push(name)
    else {
      warnOnce(WARN_INVALID_ENV,
        `OTEL_PROPAGATORS: unknown propagator ${JSON.stringify(raw)} skipped; known: ${PROPAGATOR_NAMES.join(', ')}`)
    }
  }
  // Only unknown names given: the spec leaves this open; fall back to the
  // default rather than silently dropping all propagation.
  if (known.length === 0) return build(['tracecontext', 'baggage'])
  return build(known)
}
