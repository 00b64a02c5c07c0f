import type { Context } from '../context.ts'
import { remoteSpanOfWords } from '../span.ts'
import { defaultGetter, defaultSetter, type Getter, type Setter } from './carrier.ts'
import type { TextMapPropagator } from './propagator.ts'
import { formatTraceparent, readTraceparent } from './traceparent.ts'
import { TraceState } from './tracestate.ts'

const FIELDS = Object.freeze(['traceparent', 'tracestate'])

/**
 * W3C Trace Context Level 2 (https://www.w3.org/TR/trace-context-2/).
 * The header grammar lives in traceparent.ts and tracestate.ts; this file
 * only moves values between headers and the context. tracestate is parsed
 * only when traceparent is valid (spec section 3.3.1.1: without a valid
 * traceparent, tracestate must be discarded).
 */
export class W3CTraceContextPropagator implements TextMapPropagator {
  inject(context: Context, carrier: unknown, setter: Setter = defaultSetter): void {
    const span = context.span
    if (span === undefined) return
    setter.set(carrier, 'traceparent', formatTraceparent(span.traceId, span.spanId, span.traceFlags))
    if (span.traceState !== undefined && span.traceState.size > 0) {
      const value = span.traceState.serialize()
      if (value !== '') setter.set(carrier, 'tracestate', value)
    }
  }

  extract(context: Context, carrier: unknown, getter: Getter = defaultGetter): Context {
    const traceparent = getter.get(carrier, 'traceparent')
    if (traceparent === undefined) return context
    // Both headers are taken before the ids are read into ids.ts's scratch
    // words, which the span then copies: a getter is the caller's code.
    const tracestate = getter.get(carrier, 'tracestate')
    const traceFlags = readTraceparent(traceparent)
    if (traceFlags < 0) return context
    return context.withSpan(remoteSpanOfWords(traceFlags, TraceState.parse(tracestate)))
  }

  fields(): readonly string[] {
    return FIELDS
  }
}
