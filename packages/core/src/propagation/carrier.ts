/**
 * How propagators read and write headers on whatever carries them: Node's
 * incoming headers object (keys already lower-case), outgoing
 * OutgoingHttpHeaders (keys in any case), fetch/undici `Headers`, a Map, or a
 * plain object.
 */
export type HeaderValue = string | readonly string[] | undefined

export interface Getter {
  /** `name` is lower-case. Returns the value(s), or undefined when absent. */
  get(carrier: unknown, name: string): HeaderValue
}

export interface Setter {
  /** `name` is lower-case. Replaces any value already under that name, in any case. */
  set(carrier: unknown, name: string, value: string): void
}

type Gettable = { get(name: string): unknown }
type Settable = { set(name: string, value: string): unknown }

function normalize(v: unknown): HeaderValue {
  if (typeof v === 'string') return v
  if (Array.isArray(v)) return v.map(String)
  if (typeof v === 'number') return String(v)
  return undefined
}

/**
 * Works with every carrier above. For plain objects the exact lower-case key
 * is tried first; only when it is absent are the keys scanned ignoring case
 * (an OutgoingHttpHeaders may say `Traceparent`).
 */
export const defaultGetter: Getter = {
  get(carrier: unknown, name: string): HeaderValue {
    if (carrier === null || typeof carrier !== 'object') return undefined
    if (typeof (carrier as Gettable).get === 'function') {
      return normalize((carrier as Gettable).get(name))
    }
    const obj = carrier as Record<string, unknown>
    const exact = obj[name]
    if (exact !== undefined) return normalize(exact)
    for (const key in obj) {
      if (key.length === name.length && key.toLowerCase() === name) return normalize(obj[key])
    }
    return undefined
  },
}

type IncomingHeaders = Record<string, string | string[] | undefined>

/**
 * For Node's IncomingMessage#headers only: Node lower-cases every key, so a
 * single property read is enough (this is the per-request server path).
 * The W3C headers are read by name: one read site per header, which sees
 * the few header layouts a service's clients send, where one site read by a
 * varying name is megamorphic (a stub cache probe per header, per request).
 */
export const incomingHeadersGetter: Getter = {
  get(carrier: unknown, name: string): HeaderValue {
    const headers = carrier as IncomingHeaders
    switch (name) {
      case 'traceparent':
        return headers.traceparent
      case 'tracestate':
        return headers.tracestate
      case 'baggage':
        return headers.baggage
      default:
        return headers[name]
    }
  },
}

export const defaultSetter: Setter = {
  set(carrier: unknown, name: string, value: string): void {
    if (carrier === null || typeof carrier !== 'object') return
    if (typeof (carrier as Settable).set === 'function') {
      ;(carrier as Settable).set(name, value)
      return
    }
    const obj = carrier as Record<string, unknown>
    if (obj[name] === undefined) {
      // Replace a differently-cased copy rather than sending the header twice.
      for (const key in obj) {
        if (key.length === name.length && key !== name && key.toLowerCase() === name) delete obj[key]
      }
    }
    obj[name] = value
  },
}
