/**
 * The one error class Spanline throws. Misconfiguration is reported
 * synchronously, at the call that received the bad value, with a stable
 * `code` (cf. fastify's FST_ERR_*, undici's UND_ERR_*): match on `code`,
 * never on the message.
 */
export class TracingError extends Error {
  readonly code: string

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'TracingError'
    this.code = code
  }
}

/** Error codes, grouped here so they are easy to grep and document. */
export const ERR_INVALID_ARGUMENT = 'SPANLINE_ERR_INVALID_ARGUMENT'
export const ERR_INVALID_TRACESTATE = 'SPANLINE_ERR_INVALID_TRACESTATE'
export const ERR_INVALID_BAGGAGE = 'SPANLINE_ERR_INVALID_BAGGAGE'
export const ERR_INVALID_SAMPLER = 'SPANLINE_ERR_INVALID_SAMPLER'
export const ERR_INVALID_PROPAGATOR = 'SPANLINE_ERR_INVALID_PROPAGATOR'
export const ERR_INVALID_LIMIT = 'SPANLINE_ERR_INVALID_LIMIT'
