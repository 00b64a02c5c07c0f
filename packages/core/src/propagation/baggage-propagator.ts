import type { Context } from '../context.ts'
import { Baggage } from './baggage.ts'
import { defaultGetter, defaultSetter, type Getter, type Setter } from './carrier.ts'
import type { TextMapPropagator } from './propagator.ts'

const FIELDS = Object.freeze(['baggage'])

/** W3C Baggage (https://www.w3.org/TR/baggage/); the grammar is in baggage.ts. */
export class W3CBaggagePropagator implements TextMapPropagator {
  inject(context: Context, carrier: unknown, setter: Setter = defaultSetter): void {
    const baggage = context.baggage
    if (baggage === undefined || baggage.size === 0) return
    const value = baggage.serialize()
    if (value !== '') setter.set(carrier, 'baggage', value)
  }

  extract(context: Context, carrier: unknown, getter: Getter = defaultGetter): Context {
    const raw = getter.get(carrier, 'baggage')
    if (raw === undefined) return context
    const baggage = Baggage.parse(raw)
    return baggage.size === 0 ? context : context.withBaggage(baggage)
  }

  fields(): readonly string[] {
    return FIELDS
  }
}
