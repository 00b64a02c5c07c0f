import type { EventEmitter } from 'node:events'
import { registry } from './global.ts'
import type { Baggage } from './propagation/baggage.ts'
import type { Span } from './span.ts'

/**
 * What is "current" for a piece of async work: the active span, the baggage,
 * and whether tracing is suppressed (the exporter's own requests, ignored
 * routes). A fixed three-field immutable object: setting a value makes one
 * small object, not a copy of a Map as OpenTelemetry's Context does.
 */
export class Context {
  // Assigned in the constructor only (a class field is first defined as
  // undefined by a separate initializer, then assigned), except for one:
  // V8 compiles `instanceof` of a class that has no instance field at all,
  // and whose name the bundle sets in a static block (esbuild's keepNames),
  // to a generic builtin call (measured: 2-3x slower), and isContext() runs
  // on every span. See also ServerRequestState and NonRecordingSpan.
  readonly span: Span | undefined
  declare readonly baggage: Baggage | undefined
  declare readonly suppressed: boolean

  constructor(span: Span | undefined, baggage: Baggage | undefined, suppressed: boolean) {
    this.span = span
    this.baggage = baggage
    this.suppressed = suppressed
  }

  withSpan(span: Span | undefined): Context {
    return new Context(span, this.baggage, this.suppressed)
  }

  withBaggage(baggage: Baggage | undefined): Context {
    return new Context(this.span, baggage, this.suppressed)
  }

  withSuppressed(suppressed: boolean): Context {
    return suppressed === this.suppressed ? this : new Context(this.span, this.baggage, suppressed)
  }
}

/** The empty context: no span, no baggage, tracing on. */
export const ROOT_CONTEXT: Context = new Context(undefined, undefined, false)

const storage = registry.storage as import('node:async_hooks').AsyncLocalStorage<Context>

/** The current context (ROOT_CONTEXT outside any). */
export function getActiveContext(): Context {
  return storage.getStore() ?? ROOT_CONTEXT
}

/** The current span, or undefined. */
export function getActiveSpan(): Span | undefined {
  return storage.getStore()?.span
}

/**
 * Runs `fn(...args)` with `context` current and returns its result. Passing
 * the function and its arguments, rather than a closure, lets hot paths call
 * this without allocating one.
 *
 * @example
 * runWithContext(extract(req.headers), handle, req, res)
 */
export function runWithContext<A extends unknown[], R>(context: Context, fn: (...args: A) => R, ...args: A): R {
  return storage.run(context, fn, ...args)
}

/**
 * Runs `fn(...args)` with `span` as the active span: spans started inside,
 * across awaits, timers and callbacks, become its children.
 *
 * @example
 * const span = tracer.startSpan('load user')
 * try { return await runWithSpan(span, loadUser, id) } finally { span.end() }
 */
export function runWithSpan<A extends unknown[], R>(span: Span, fn: (...args: A) => R, ...args: A): R {
  return storage.run(getActiveContext().withSpan(span), fn, ...args)
}

/** Runs `fn(...args)` with tracing suppressed: no spans are recorded inside. */
export function runSuppressed<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): R {
  return storage.run(getActiveContext().withSuppressed(true), fn, ...args)
}

/** True when the current context suppresses tracing. */
export function isSuppressed(): boolean {
  return storage.getStore()?.suppressed === true
}

/**
 * Returns a function that runs `fn` in `context` (the current one by
 * default) wherever it is later called from: for callbacks handed to code
 * that loses the async context (connection pools, some queue libraries).
 */
export function bindToContext<F extends (...args: never[]) => unknown>(fn: F, context: Context = getActiveContext()): F {
  if (typeof fn !== 'function') return fn
  return function boundToContext(this: unknown, ...args: unknown[]): unknown {
    return storage.run(context, Reflect.apply, fn, this, args)
  } as unknown as F
}

const ADD_METHODS = ['on', 'addListener', 'prependListener', 'once', 'prependOnceListener'] as const
const REMOVE_METHODS = ['off', 'removeListener'] as const
const kBound = Symbol('spanline.boundListeners')

type Listener = (...args: unknown[]) => unknown
type BoundEmitter = EventEmitter & { [kBound]?: Map<string | symbol, WeakMap<Listener, Listener[]>> }

/**
 * Makes every listener later added to `emitter` run in `context` (the
 * current one by default), whatever context emits the event. Removing a
 * listener by its original function still works. Binding twice is a no-op.
 */
export function bindEmitter<E extends EventEmitter>(emitter: E, context: Context = getActiveContext()): E {
  const target = emitter as BoundEmitter
  if (target[kBound] !== undefined) return emitter
  const byEvent = new Map<string | symbol, WeakMap<Listener, Listener[]>>()
  Object.defineProperty(target, kBound, { value: byEvent, enumerable: false })
  for (const method of ADD_METHODS) {
    const original = target[method] as (this: EventEmitter, event: string | symbol, listener: Listener) => EventEmitter
    Object.defineProperty(target, method, {
      configurable: true,
      writable: true,
      value: function addBoundListener(this: EventEmitter, event: string | symbol, listener: Listener): EventEmitter {
        if (typeof listener !== 'function') return original.call(this, event, listener)
        let map = byEvent.get(event)
        if (map === undefined) byEvent.set(event, (map = new WeakMap()))
        const bound = bindToContext(listener, context)
        // The same listener may be added several times; each removal takes
        // off the latest, as EventEmitter#removeListener does.
        const list = map.get(listener)
        if (list === undefined) map.set(listener, [bound])
        else list.push(bound)
        return original.call(this, event, bound)
      },
    })
  }
  for (const method of REMOVE_METHODS) {
    const original = target[method] as (this: EventEmitter, event: string | symbol, listener: Listener) => EventEmitter
    Object.defineProperty(target, method, {
      configurable: true,
      writable: true,
      value: function removeBoundListener(this: EventEmitter, event: string | symbol, listener: Listener): EventEmitter {
        const list = byEvent.get(event)?.get(listener)
        if (list === undefined || list.length === 0) return original.call(this, event, listener)
        // Take the latest wrapper still registered (a `once` one may have fired).
        const raw = this.rawListeners(event) as (Listener & { listener?: Listener })[]
        for (let i = list.length - 1; i >= 0; i--) {
          const bound = list[i]!
          if (raw.some((l) => l === bound || l.listener === bound)) {
            list.splice(i, 1)
            return original.call(this, event, bound)
          }
        }
        list.length = 0
        return original.call(this, event, listener)
      },
    })
  }
  return emitter
}

/** The current baggage, or undefined when there is none. */
export function getActiveBaggage(): Baggage | undefined {
  return storage.getStore()?.baggage
}

/**
 * Runs `fn(...args)` with `baggage` current; outgoing calls made inside
 * carry it in the `baggage` header.
 *
 * @example
 * const baggage = (getActiveBaggage() ?? Baggage.EMPTY).set('tenant.id', tenant)
 * await runWithBaggage(baggage, handle, req)
 */
export function runWithBaggage<A extends unknown[], R>(baggage: Baggage | undefined, fn: (...args: A) => R, ...args: A): R {
  return storage.run(getActiveContext().withBaggage(baggage), fn, ...args)
}
