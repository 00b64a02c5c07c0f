import type { Context } from '../context.ts'
import type { Getter, Setter } from './carrier.ts'
import type { TextMapPropagator } from './propagator.ts'

/**
 * Several formats at once. Injection writes every format. Extraction takes
 * the span from the FIRST format in the configured order that holds a valid
 * one: the propagators run last-to-first, each replacing the span only when
 * its own headers are valid, so the earliest valid format is the one left.
 * Baggage is independent of the span and always extracted.
 */
export class CompositePropagator implements TextMapPropagator {
  readonly #propagators: readonly TextMapPropagator[]
  readonly #fields: readonly string[]

  constructor(propagators: readonly TextMapPropagator[]) {
    this.#propagators = propagators.slice()
    this.#fields = Object.freeze([...new Set(propagators.flatMap((p) => p.fields()))])
  }

  inject(context: Context, carrier: unknown, setter?: Setter): void {
    for (const p of this.#propagators) p.inject(context, carrier, setter)
  }

  extract(context: Context, carrier: unknown, getter?: Getter): Context {
    let result = context
    for (let i = this.#propagators.length - 1; i >= 0; i--) {
      result = this.#propagators[i]!.extract(result, carrier, getter)
    }
    return result
  }

  fields(): readonly string[] {
    return this.#fields
  }
}
