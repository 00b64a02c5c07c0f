import type { Context } from '../context.ts'
import type { Getter, Setter } from './carrier.ts'

/**
 * Reads a context from request headers and writes one into outgoing headers.
 * https://opentelemetry.io/docs/specs/otel/context/api-propagators/
 */
export interface TextMapPropagator {
  /** Writes the context's span (and baggage) into `carrier`. */
  inject(context: Context, carrier: unknown, setter?: Setter): void
  /**
   * Returns `context` with what `carrier` holds: a remote parent span, and
   * baggage. Invalid or hostile headers are ignored per their spec: the
   * context comes back unchanged. Never throws.
   */
  extract(context: Context, carrier: unknown, getter?: Getter): Context
  /** The header names this propagator reads and writes (lower-case). */
  fields(): readonly string[]
}
