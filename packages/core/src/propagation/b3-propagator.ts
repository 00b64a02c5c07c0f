import type { Context } from '../context.ts'
import { isSampled, remoteSpan } from '../span.ts'
import { TraceFlags } from '../types.ts'
import { formatB3Single, parseB3Multi, parseB3Single, type ParsedB3 } from './b3.ts'
import { defaultGetter, defaultSetter, type Getter, type Setter } from './carrier.ts'
import type { TextMapPropagator } from './propagator.ts'

function toContext(context: Context, b3: ParsedB3 | null): Context {
  if (b3 === null) return context
  // Debug implies sampled (b3-propagation: "Debug is encoded as X-B3-Flags: 1
  // ... implies an accept decision"). A deferred decision (no sampling state)
  // is propagated as not sampled, as OpenTelemetry does.
  const flags = b3.debug || b3.sampled === true ? TraceFlags.SAMPLED : TraceFlags.NONE
  return context.withSpan(remoteSpan(b3.traceId, b3.spanId, flags, undefined))
}

const SINGLE_FIELDS = Object.freeze(['b3'])

/** Zipkin B3, single header: `b3: {traceId}-{spanId}-{1|0}`. */
export class B3SinglePropagator implements TextMapPropagator {
  inject(context: Context, carrier: unknown, setter: Setter = defaultSetter): void {
    const span = context.span
    if (span === undefined) return
    setter.set(carrier, 'b3', formatB3Single(span.traceId, span.spanId, isSampled(span)))
  }

  extract(context: Context, carrier: unknown, getter: Getter = defaultGetter): Context {
    return toContext(context, parseB3Single(getter.get(carrier, 'b3')))
  }

  fields(): readonly string[] {
    return SINGLE_FIELDS
  }
}

const MULTI_FIELDS = Object.freeze(['x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags'])

/** Zipkin B3, one header per field: X-B3-TraceId, X-B3-SpanId, X-B3-Sampled. */
export class B3MultiPropagator implements TextMapPropagator {
  inject(context: Context, carrier: unknown, setter: Setter = defaultSetter): void {
    const span = context.span
    if (span === undefined) return
    setter.set(carrier, 'x-b3-traceid', span.traceId)
    setter.set(carrier, 'x-b3-spanid', span.spanId)
    setter.set(carrier, 'x-b3-sampled', isSampled(span) ? '1' : '0')
  }

  extract(context: Context, carrier: unknown, getter: Getter = defaultGetter): Context {
    if (getter.get(carrier, 'x-b3-traceid') === undefined) return context
    return toContext(context, parseB3Multi((name) => getter.get(carrier, name)))
  }

  fields(): readonly string[] {
    return MULTI_FIELDS
  }
}
