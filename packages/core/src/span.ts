import { cleanAttributeValue, cutStringValues, isValidKey, limitAttributes } from './attributes.ts'
import { fromEpochMillis, now } from './clock.ts'
import { debug, warnOnce } from './diag.ts'
import { hexOfWords, hexWords, idWords, idWordsOfHex, takeId } from './ids.ts'
import type { SpanLimits } from './limits.ts'
import type { TraceState } from './propagation/tracestate.ts'
import type { Resource } from './resource.ts'
import {
  SpanStatusCode,
  TraceFlags,
  type Attributes,
  type AttributeValue,
  type InstrumentationScope,
  type Link,
  type SpanContext,
  type SpanEvent,
  type SpanKind,
  type SpanLink,
  type TimeInput,
} from './types.ts'

/**
 * A span as user code and instrumentation see it. A span is also its own
 * SpanContext (traceId, spanId, traceFlags, traceState, isRemote), so reading
 * the ids allocates nothing.
 */
export interface Span extends SpanContext {
  /** False for spans that are not sampled or not recorded: their methods do nothing. */
  isRecording(): boolean
  setAttribute(key: string, value: AttributeValue | undefined): this
  setAttributes(attributes: Attributes): this
  addEvent(name: string, attributes?: Attributes, time?: TimeInput): this
  addLink(link: Link): this
  /** Adds an `exception` event (exception.type/.message/.stacktrace). Does not set the status. */
  recordException(error: unknown, time?: TimeInput): this
  /** OK is final; ERROR may be replaced by OK; UNSET is ignored; the message is kept for ERROR only. */
  setStatus(code: SpanStatusCode, message?: string): this
  updateName(name: string): this
  /** Ends the span once; a second call is ignored. */
  end(endTime?: TimeInput): void
  readonly ended: boolean
}

/** What exporters and processors read from a finished span. */
export interface ReadableSpan extends SpanContext {
  readonly name: string
  readonly kind: SpanKind
  readonly parentSpanId: string | undefined
  readonly parentIsRemote: boolean
  /** Monotonic ms; see clock.ts for the conversion to Unix time. */
  readonly startTime: number
  readonly endTime: number
  readonly attributes: Attributes | null
  readonly droppedAttributesCount: number
  readonly events: readonly SpanEvent[] | null
  readonly droppedEventsCount: number
  readonly links: readonly SpanLink[] | null
  readonly droppedLinksCount: number
  readonly statusCode: SpanStatusCode
  readonly statusMessage: string | undefined
  readonly resource: Resource
  readonly scope: InstrumentationScope
  readonly ended: boolean
}

/**
 * Internal (http/server.ts): what computes a span's attributes later, when
 * they are first needed, rather than when the span starts. See
 * RecordingSpan#deferAttributes.
 */
export interface AttributeSource {
  /** Gives `span` its attributes, with adoptAttributes(pairs, true). Called at most once. */
  addAttributes(span: RecordingSpan): void
  /**
   * Optional, for an encoder that only needs to read them (see
   * RecordingSpan#fillDeferredAttributes): writes the same attributes into
   * `out` as pairs (key, value...) from index 0 and returns how many entries
   * it wrote. May be asked more than once. May set `lead` (see AttributeLead).
   */
  fillAttributes?(out: Array<string | number>, lead: AttributeLead): number
}

/**
 * Internal (the protobuf encoder and http/request-lead.ts): what a source's
 * fillAttributes() may say about the entries it wrote first. Two fills that
 * give the same `key` (compared by identity), `limit` and `stamp` wrote the
 * same first `count` entries (keys and values, in order); with the same
 * `longStamp` too, the same first `longCount`; with the same `longestStamp`
 * as well, the same first `longestCount`. The protobuf encoder, which
 * compares each span's attributes with the previous one's to copy those
 * that repeat (see writeSpanAttributes), then need not compare those. One
 * per encoder, reused: the fill sets it.
 */
export class AttributeLead {
  /** What the stamps are of (never the same stamp twice for one key); null: nothing vouched for. */
  key: object | null = null
  stamp: number = 0
  count: number = 0
  longStamp: number = 0
  longCount: number = 0
  longestStamp: number = 0
  longestCount: number = 0
  /** The length limit the span cut string values to (see fillDeferredAttributes): the values depend on it too. */
  limit: number = Infinity
}

/** What a recording span needs from the tracer that made it. */
export interface SpanPipeline {
  readonly limits: SpanLimits
  readonly resource: Resource
  onEnd(span: RecordingSpan): void
}

/**
 * A sampled (or record-only) span. Every field is assigned in the
 * constructor so all spans share one hidden class; attributes, events and
 * links stay null until first used, since most spans have few or none.
 */
export class RecordingSpan implements Span, ReadableSpan {
  // Fields are assigned in the constructor, not by class field initializers:
  // an initializer first defines every field as undefined (a separate
  // function, each define a map transition) and the constructor then stores
  // them again. Assigned once, in one place, the constructor stays small
  // enough for the optimising compiler to inline into Tracer#startSpan, and
  // every span still gets the same hidden class.

  /**
   * The ids as 32-bit words (ids.ts's idWords, in order), copied out of the
   * id pool when the span starts, so that nothing here points into the pool
   * (it is refilled in place). The hex strings are made on first read: the
   * protobuf encoder writes the words and never needs them. A remote
   * parent from a header gives its words too (see NonRecordingSpan).
   * All four trace words 0 (never a valid id; a pool's has no 8-byte word of
   * zeros, a header's may) means the trace id is known only as hex: from a
   * sampler that read it, or from a parent known only as hex (another loaded
   * copy of core, a SpanContext of the user's). Both parent words 0: no
   * parent, or one known only as hex.
   */
  declare readonly traceId0: number
  declare readonly traceId1: number
  declare readonly traceId2: number
  declare readonly traceId3: number
  declare readonly spanId0: number
  declare readonly spanId1: number
  declare readonly parentId0: number
  declare readonly parentId1: number
  /**
   * The ids as hex, made on first use (the words above are what the span is
   * made with and what the encoder reads). Plain fields, not #private ones,
   * as is the attributes' view below: a class's private fields are defined by
   * an initializer that each construction calls, and with it and the
   * private stores this constructor was over what V8 on Node 24 would
   * inline into startSpan (measured: ~600 instructions more per span,
   * bench/instructions.mjs, Express, Koa and Fastify on Node 24). Nothing
   * secret is in them.
   */
  private declare traceHex: string | undefined
  private declare spanHex: string | undefined
  private declare parentHex: string | undefined
  declare readonly traceFlags: number
  declare readonly traceState: TraceState | undefined
  declare readonly parentIsRemote: boolean
  declare readonly kind: SpanKind
  declare readonly startTime: number
  declare readonly scope: InstrumentationScope
  /** The tracer that made this span (see tracerOf). */
  declare readonly tracer: unknown
  declare name: string
  /** -1 until the span ends. */
  declare endTime: number
  /**
   * Attributes as one array of pairs in insertion order, each key followed by
   * its value: setting one is a short scan and two stores, where a plain
   * object with data-dependent keys makes every access megamorphic.
   * `attributes` builds the object view on demand; the protobuf encoder reads
   * the pairs. One array, not a keys array and a values array beside it: the
   * first push gives an array room for 17 entries whatever is pushed, so two
   * arrays cost two of those (~370 bytes for a span of 4 attributes, then
   * garbage) and two growth calls, where one holds 8 attributes.
   */
  declare attributePairs: AttributeValue[] | null
  /** `attributes`, once made from the pairs (see above); null until asked for, and after a change. */
  private declare attributeView: Attributes | null
  declare droppedAttributesCount: number
  declare events: SpanEvent[] | null
  declare droppedEventsCount: number
  declare links: SpanLink[] | null
  declare droppedLinksCount: number
  declare statusCode: SpanStatusCode
  declare statusMessage: string | undefined
  declare ended: boolean
  readonly #pipeline: SpanPipeline
  /**
   * Where attributes still to be made come from (see deferAttributes); null
   * once they are made, or when there are none. Private, so that printing or
   * serialising a span never shows the source (a request's state holds its
   * headers, cookies and authorization included) nor trips on its cycle back
   * to the span.
   */
  #source: AttributeSource | null

  /**
   * Made by Tracer#startSpan, not by user code. A root span takes its trace
   * id from the id pool here, unless `rootTraceId` is given (the hex that a
   * sampler read; ignored for a child, whose trace id is its parent's). The
   * span id is taken here; the start time is the caller's (see
   * Tracer#startSpan for why the clock is not read here).
   */
  constructor(
    pipeline: SpanPipeline,
    tracer: unknown,
    scope: InstrumentationScope,
    name: string,
    kind: SpanKind,
    parent: SpanContext | undefined,
    rootTraceId: string | undefined,
    traceFlags: number,
    traceState: TraceState | undefined,
    startTime: number,
  ) {
    this.#pipeline = pipeline
    this.tracer = tracer
    this.scope = scope
    this.name = name
    this.kind = kind
    // Worked out first, then stored in one order: every span gets the same hidden class.
    let t0 = 0
    let t1 = 0
    let t2 = 0
    let t3 = 0
    let p0 = 0
    let p1 = 0
    let traceHex: string | undefined
    let parentHex: string | undefined
    // The same id rules as NonRecordingSpan's constructor (a new trace's id
    // and the span's in one take; a local parent's trace words copied, else
    // its hex): kept as two copies, since this constructor's size is what
    // lets V8 inline it into startSpan (see there). Change both together.
    const words = idWords
    // A new trace: its id and the span's in one take. One call for both
    // cases: each call site would inline takeId again, and every byte here
    // counts against startSpan's inlining budget (see there).
    const newTrace = parent === undefined && rootTraceId === undefined
    let at = takeId(newTrace ? 24 : 8) >> 2
    if (newTrace) {
      t0 = words[at]!
      t1 = words[at + 1]!
      t2 = words[at + 2]!
      t3 = words[at + 3]!
      at += 4
    } else if (parent === undefined) {
      traceHex = rootTraceId
    } else if (parent instanceof RecordingSpan || (parent instanceof NonRecordingSpan && (parent.spanId0 | parent.spanId1) !== 0)) {
      // A span of ours, local or a remote parent from a header (see
      // NonRecordingSpan: span words mean valid ids): its words, and its hex
      // where made (trace words 0: the hex is all there is). The two classes
      // name these fields alike; one branch for both keeps this constructor
      // within what V8 inlines at all (460 bytes of bytecode).
      const ours = parent as RecordingSpan
      t0 = ours.traceId0
      t1 = ours.traceId1
      t2 = ours.traceId2
      t3 = ours.traceId3
      traceHex = ours.traceHex
      p0 = ours.spanId0
      p1 = ours.spanId1
      parentHex = ours.spanHex
    } else {
      traceHex = parent.traceId
      parentHex = parent.spanId
    }
    this.traceId0 = t0
    this.traceId1 = t1
    this.traceId2 = t2
    this.traceId3 = t3
    this.spanId0 = words[at]!
    this.spanId1 = words[at + 1]!
    this.parentId0 = p0
    this.parentId1 = p1
    this.traceHex = traceHex
    this.spanHex = undefined
    this.parentHex = parentHex
    this.traceFlags = traceFlags
    this.traceState = traceState
    this.parentIsRemote = parent?.isRemote ?? false
    this.startTime = startTime
    this.endTime = -1
    this.attributePairs = null
    this.attributeView = null
    this.droppedAttributesCount = 0
    this.events = null
    this.droppedEventsCount = 0
    this.links = null
    this.droppedLinksCount = 0
    this.statusCode = SpanStatusCode.UNSET
    this.statusMessage = undefined
    this.ended = false
    this.#source = null
  }

  get traceId(): string {
    return (this.traceHex ??= hexOfWords(16, this.traceId0, this.traceId1, this.traceId2, this.traceId3))
  }

  get spanId(): string {
    return (this.spanHex ??= hexOfWords(8, this.spanId0, this.spanId1, 0, 0))
  }

  get parentSpanId(): string | undefined {
    if (this.parentHex !== undefined || (this.parentId0 | this.parentId1) === 0) return this.parentHex
    return (this.parentHex = hexOfWords(8, this.parentId0, this.parentId1, 0, 0))
  }

  /** A span made here is never remote (a prototype getter: one field less per span). */
  get isRemote(): false {
    return false
  }

  get resource(): Resource {
    return this.#pipeline.resource
  }

  isRecording(): boolean {
    return !this.ended
  }

  setAttribute(key: string, value: AttributeValue | undefined): this {
    return RecordingSpan.#set(this, key, value, 0)
  }

  /**
   * Internal (http/server.ts): setAttribute() for a key that none of the
   * span's first `known` attributes has (the caller set those itself), so
   * only the ones after them are searched for it.
   */
  setAttributeAfter(known: number, key: string, value: AttributeValue | undefined): this {
    return RecordingSpan.#set(this, key, value, known)
  }

  /**
   * Static, not an instance method: a private instance method would give
   * every span a brand (one more field, and constructor bytecode that kept
   * it from being inlined into startSpan).
   */
  static #set<T extends RecordingSpan>(span: T, key: string, value: AttributeValue | undefined, from: number): T {
    if (span.ended) return ignoredAfterEnd(span, 'setAttribute')
    // Deferred attributes first: they come before any set after them, as if set at the start.
    if (span.#source !== null) span.resolveAttributes()
    if (value === undefined || !isValidKey(key)) return span
    const limits = span.#pipeline.limits
    const clean = cleanAttributeValue(value, limits.attributeValueLengthLimit)
    if (clean === undefined) {
      debug('attribute %s on span %s dropped: unsupported value type', key, span.name)
      return span
    }
    let pairs = span.attributePairs
    if (pairs === null) pairs = span.attributePairs = []
    span.attributeView = null
    for (let i = from * 2; i < pairs.length; i += 2) {
      if (pairs[i] === key) {
        // Updating an existing key never counts against the limit.
        pairs[i + 1] = clean
        return span
      }
    }
    if (pairs.length >= limits.attributeCountLimit * 2) {
      span.droppedAttributesCount++
      return span
    }
    pairs.push(key, clean)
    return span
  }

  /**
   * Internal (the HTTP semantics in http/server.ts): gives the span its first
   * attributes in one step, adopting the array of pairs (each key followed by
   * its value), which the caller must not touch afterwards. The keys must be
   * valid and distinct and the values strings or numbers: constants and
   * values read from a request, where a setAttribute() call per attribute
   * (checks, a duplicate scan) cost a quarter of a microsecond per request.
   * Limits apply as in setAttribute(). Returns false, having done nothing,
   * if the span already has attributes (a sampler gave it some), has some
   * deferred, or has ended: the caller then sets them one by one. `late`:
   * the deferred attributes of an AttributeSource, which may come after the
   * span ended.
   */
  adoptAttributes(pairs: Array<string | number>, late?: boolean): boolean {
    if ((this.ended && late !== true) || this.attributePairs !== null || this.#source !== null) return false
    const limits = this.#pipeline.limits
    cutStringValues(pairs, pairs.length, limits.attributeValueLengthLimit)
    const count = limits.attributeCountLimit
    if (pairs.length > count * 2) {
      this.droppedAttributesCount += (pairs.length >> 1) - count
      pairs.length = count * 2
    }
    this.attributePairs = pairs
    this.attributeView = null
    return true
  }

  /**
   * Internal (the HTTP semantics in http/server.ts): the span's first
   * attributes are to come from `source`, asked for them only when they are
   * first needed: when something reads or sets the span's attributes, or when
   * an exporter encodes the span (in a batch, a few dozen spans at a time,
   * off the request's path and with the encoder's code hot in the CPU's
   * caches; the protobuf encoder has them written into an array of its own,
   * and the span never gets them: see fillDeferredAttributes). The
   * source must keep what it needs for that (not the request: that would
   * keep request and response objects alive until then), and may add at
   * most `count` attributes. Returns false, having done nothing, when
   * the span cannot wait for them: it has attributes already (a sampler's),
   * has ended, or its count limit is below `count` (deferred attributes must
   * never change droppedAttributesCount, which readers take as final). The
   * caller then sets them now.
   */
  deferAttributes(source: AttributeSource, count: number): boolean {
    if (this.ended || this.attributePairs !== null || this.#source !== null || this.#pipeline.limits.attributeCountLimit < count) return false
    this.#source = source
    return true
  }

  /**
   * Computes the attributes deferAttributes() left for later, if any are
   * still to come. What reads attributePairs directly calls this first (the
   * protobuf encoder, when fillDeferredAttributes cannot serve it);
   * `attributes`, setAttribute() and the like call it themselves. A source
   * that throws (a bug of ours) leaves the span without those attributes
   * rather than losing it or reaching the app.
   */
  resolveAttributes(): void {
    const source = this.#source
    if (source === null) return
    this.#source = null
    try {
      source.addAttributes(this)
    } catch (err) {
      // One warning whatever the error (its text would make each a new one); details in NODE_DEBUG.
      warnOnce('SPANLINE_ATTRIBUTES_FAILED', 'the attributes of a span could not be made; it goes without them. NODE_DEBUG=spanline shows why')
      debug('computing the attributes of span %s threw: %o', this.name, err)
    }
  }

  /** Attributes this span keeps at most (its tracer's span limits). */
  get attributeCountLimit(): number {
    return this.#pipeline.limits.attributeCountLimit
  }

  /**
   * Internal (the protobuf encoder): writes the attributes still deferred
   * (see deferAttributes) into `out` as pairs from index 0, within the
   * span's length limit, without giving them to the span, and returns how
   * many entries it wrote. Why: a span encoded and then dropped would make
   * an array only to throw it away. -1 when none are deferred, or their
   * source cannot write them (or throws: resolveAttributes() then reports
   * it); the caller reads attributePairs after resolveAttributes() instead.
   * `lead` says which of the first entries the source vouches for (see
   * AttributeLead): its key is null unless the source set it.
   */
  fillDeferredAttributes(out: Array<string | number>, lead: AttributeLead): number {
    lead.key = null
    const source = this.#source
    if (source === null || source.fillAttributes === undefined) return -1
    let count: number
    try {
      count = source.fillAttributes(out, lead)
    } catch {
      lead.key = null
      return -1
    }
    const limit = this.#pipeline.limits.attributeValueLengthLimit
    cutStringValues(out, count, limit)
    lead.limit = limit
    return count
  }

  /** The attributes as an object (null when there are none), made on first read after a change. */
  get attributes(): Attributes | null {
    if (this.#source !== null) this.resolveAttributes()
    if (this.attributeView !== null) return this.attributeView
    const pairs = this.attributePairs
    if (pairs === null) return null
    const out: Attributes = {}
    for (let i = 0; i < pairs.length; i += 2) out[pairs[i] as string] = pairs[i + 1]!
    return (this.attributeView = out)
  }

  setAttributes(attributes: Attributes): this {
    for (const key in attributes) this.setAttribute(key, attributes[key])
    return this
  }

  addEvent(name: string, attributes?: Attributes, time?: TimeInput): this {
    if (this.ended) return ignoredAfterEnd(this, 'addEvent')
    const limits = this.#pipeline.limits
    const events = (this.events ??= [])
    if (events.length >= limits.eventCountLimit) {
      this.droppedEventsCount++
      return this
    }
    const limited = limitAttributes(attributes, limits.attributePerEventCountLimit, limits.attributeValueLengthLimit)
    events.push({
      name: String(name),
      time: time === undefined ? now() : fromEpochMillis(time),
      attributes: limited.attributes,
      droppedAttributesCount: limited.dropped,
    })
    return this
  }

  addLink(link: Link): this {
    if (this.ended) return ignoredAfterEnd(this, 'addLink')
    const limits = this.#pipeline.limits
    const links = (this.links ??= [])
    if (links.length >= limits.linkCountLimit) {
      this.droppedLinksCount++
      return this
    }
    const limited = limitAttributes(link.attributes, limits.attributePerLinkCountLimit, limits.attributeValueLengthLimit)
    links.push({ context: link.context, attributes: limited.attributes, droppedAttributesCount: limited.dropped })
    return this
  }

  recordException(error: unknown, time?: TimeInput): this {
    if (this.ended) return ignoredAfterEnd(this, 'recordException')
    return this.addEvent('exception', exceptionAttributes(error), time)
  }

  setStatus(code: SpanStatusCode, message?: string): this {
    if (this.ended) return ignoredAfterEnd(this, 'setStatus')
    // https://opentelemetry.io/docs/specs/otel/trace/api/#set-status
    if (code === SpanStatusCode.UNSET || this.statusCode === SpanStatusCode.OK) return this
    if (code !== SpanStatusCode.OK && code !== SpanStatusCode.ERROR) {
      debug('setStatus ignored: unknown status code %j', code)
      return this
    }
    this.statusCode = code
    this.statusMessage = code === SpanStatusCode.ERROR && message !== undefined ? String(message) : undefined
    return this
  }

  updateName(name: string): this {
    if (this.ended) return ignoredAfterEnd(this, 'updateName')
    // String() only for a non-string (plain JavaScript callers): calling it on every span was a builtin call each time.
    this.name = typeof name === 'string' ? name : String(name)
    return this
  }

  end(endTime?: TimeInput): void {
    if (this.ended) {
      debug('span %s (%s) ended twice; the second end is ignored', this.name, this.spanId)
      return
    }
    const t = endTime === undefined ? now() : fromEpochMillis(endTime)
    // A caller-given end before the start would export a negative duration.
    this.endTime = t < this.startTime ? this.startTime : t
    this.ended = true
    this.#pipeline.onEnd(this)
  }
}

function ignoredAfterEnd<T extends RecordingSpan>(span: T, what: string): T {
  debug('%s on ended span %s (%s) ignored', what, span.name, span.spanId)
  return span
}

/**
 * The type of a thrown value, for `exception.type` and `error.type`: the
 * error's class, which is `err.name` unless that is empty or the generic
 * "Error" of a subclass that did not set it, then the constructor's name.
 * A thrown primitive reports its typeof.
 */
export function exceptionType(error: unknown): string {
  if (error === null || typeof error !== 'object') return typeof error
  const e = error as { name?: unknown; constructor?: { name?: unknown } }
  if (typeof e.name === 'string' && e.name !== '' && e.name !== 'Error') return e.name
  const ctor = e.constructor?.name
  if (typeof ctor === 'string' && ctor !== '' && ctor !== 'Object') return ctor
  return 'Error'
}

/**
 * The attributes of an `exception` event
 * (https://opentelemetry.io/docs/specs/semconv/exceptions/exceptions-spans/).
 */
export function exceptionAttributes(error: unknown): Attributes {
  if (error !== null && typeof error === 'object') {
    const e = error as { message?: unknown; stack?: unknown }
    const attributes: Attributes = { 'exception.type': exceptionType(error) }
    if (typeof e.message === 'string') attributes['exception.message'] = e.message
    if (typeof e.stack === 'string') attributes['exception.stacktrace'] = e.stack
    return attributes
  }
  return { 'exception.type': typeof error, 'exception.message': String(error) }
}

/**
 * A span that records nothing: unsampled, created while tracing is
 * suppressed or shut down, or a remote parent extracted from headers. It
 * still carries its ids, so context propagates with sampled=0. Every method
 * is a no-op, as pino turns disabled log levels into noop.
 */
export class NonRecordingSpan implements Span {
  // Assigned in the constructor only, as in RecordingSpan, but for one real
  // field: see Context (a class without any keeps a slow instanceof).
  readonly traceFlags: number
  declare readonly traceState: TraceState | undefined
  declare readonly isRemote: boolean
  declare ended: boolean
  /**
   * A span the tracer made (unsampled, or suppressed) keeps its ids as a
   * recording span does: 32-bit words copied from the id pool, the hex made
   * on first read. Most such spans are never asked for their ids (a server
   * span sampled out, no outgoing call), and making both as hex (a native
   * call each) was more than half of what tracing added to an unsampled
   * request (callgrind, Node 20). All trace words 0: the trace id is known
   * as hex only. A remote parent from a traceparent header is made from the
   * words its parser read (remoteSpanOfWords), so that its children copy
   * words and skip the tracer's check of the ids; one made from hex ids (a
   * B3 header, or by hand) gets their words too when both ids are valid (see
   * idWordsOfHex), and when either is not, all six words are 0: the tracer
   * then checks the hex (and ignores such a parent). Span words non-zero
   * thus means valid ids.
   */
  declare readonly traceId0: number
  declare readonly traceId1: number
  declare readonly traceId2: number
  declare readonly traceId3: number
  declare readonly spanId0: number
  declare readonly spanId1: number
  /**
   * The ids as hex, made on first read (or given). Named as RecordingSpan's
   * are, which its constructor relies on: it copies a parent's words and hex
   * the same way whichever of the two classes the parent is.
   */
  private declare traceHex: string | undefined
  private declare spanHex: string | undefined

  constructor(traceId: string, spanId: string, traceFlags: number, traceState: TraceState | undefined, isRemote: boolean)
  /** Internal (see localNonRecordingSpan): ids from the pool, in `parent`'s trace or in `rootTraceId` (or a new one). */
  constructor(traceId: typeof FROM_POOL, parent: SpanContext | undefined, traceFlags: number, traceState: TraceState | undefined, isRemote: false, rootTraceId: string | undefined)
  /** Internal (see remoteSpanOfWords): valid ids, as words in ids.ts's hexWords. */
  constructor(traceId: typeof FROM_WORDS, spanId: undefined, traceFlags: number, traceState: TraceState | undefined, isRemote: true)
  constructor(traceId: string | typeof FROM_POOL | typeof FROM_WORDS, spanIdOrParent: string | SpanContext | undefined, traceFlags: number,
    traceState: TraceState | undefined, isRemote: boolean, rootTraceId?: string) {
    this.traceFlags = traceFlags
    this.traceState = traceState
    this.isRemote = isRemote
    this.ended = false
    let t0 = 0
    let t1 = 0
    let t2 = 0
    let t3 = 0
    let s0 = 0
    let s1 = 0
    let traceHex: string | undefined
    let spanHex: string | undefined
    if (traceId !== FROM_POOL) {
      if (traceId !== FROM_WORDS) {
        traceHex = traceId
        spanHex = spanIdOrParent as string
      }
      if (traceId === FROM_WORDS || idWordsOfHex(traceId, spanIdOrParent as string)) {
        const w = hexWords
        t0 = w[0]!
        t1 = w[1]!
        t2 = w[2]!
        t3 = w[3]!
        s0 = w[4]!
        s1 = w[5]!
      }
    } else {
      // As in RecordingSpan's constructor (see there why the two are copies).
      const parent = spanIdOrParent as SpanContext | undefined
      const words = idWords
      const newTrace = parent === undefined && rootTraceId === undefined
      let at = takeId(newTrace ? 24 : 8) >> 2
      if (newTrace) {
        t0 = words[at]!
        t1 = words[at + 1]!
        t2 = words[at + 2]!
        t3 = words[at + 3]!
        at += 4
      } else if (parent === undefined) traceHex = rootTraceId
      else if ((parent instanceof RecordingSpan || parent instanceof NonRecordingSpan) && (parent.traceId0 | parent.traceId1 | parent.traceId2 | parent.traceId3) !== 0) {
        t0 = parent.traceId0
        t1 = parent.traceId1
        t2 = parent.traceId2
        t3 = parent.traceId3
      } else traceHex = parent.traceId
      s0 = words[at]!
      s1 = words[at + 1]!
    }
    this.traceId0 = t0
    this.traceId1 = t1
    this.traceId2 = t2
    this.traceId3 = t3
    this.spanId0 = s0
    this.spanId1 = s1
    this.traceHex = traceHex
    this.spanHex = spanHex
  }

  get traceId(): string {
    return (this.traceHex ??= hexOfWords(16, this.traceId0, this.traceId1, this.traceId2, this.traceId3))
  }

  get spanId(): string {
    return (this.spanHex ??= hexOfWords(8, this.spanId0, this.spanId1, 0, 0))
  }

  isRecording(): boolean {
    return false
  }
  setAttribute(): this {
    return this
  }
  setAttributes(): this {
    return this
  }
  addEvent(): this {
    return this
  }
  addLink(): this {
    return this
  }
  recordException(): this {
    return this
  }
  setStatus(): this {
    return this
  }
  updateName(): this {
    return this
  }
  end(): void {
    this.ended = true
  }
}

/** The markers of NonRecordingSpan's internal constructors. */
const FROM_POOL: unique symbol = Symbol('spanline.fromPool')
const FROM_WORDS: unique symbol = Symbol('spanline.fromWords')

/**
 * Internal (tracer.ts): an unsampled or suppressed span, a child of `parent`
 * (none: a root, in `rootTraceId`'s trace when given, else a new one), its
 * ids from the id pool and made hex only when read.
 */
export function localNonRecordingSpan(parent: SpanContext | undefined, rootTraceId: string | undefined, traceFlags: number,
  traceState: TraceState | undefined): NonRecordingSpan {
  return new NonRecordingSpan(FROM_POOL, parent, traceFlags, traceState, false, rootTraceId)
}

/** True when the sampled bit of the trace flags is set. */
export function isSampled(context: SpanContext): boolean {
  return (context.traceFlags & TraceFlags.SAMPLED) !== 0
}

/**
 * Internal (trace-context.ts): a remote parent whose ids a header parser
 * has just read into ids.ts's hexWords (see readTraceparent), and checked.
 * Its hex is made only if read.
 */
export function remoteSpanOfWords(traceFlags: number, traceState: TraceState | undefined): NonRecordingSpan {
  return new NonRecordingSpan(FROM_WORDS, undefined, traceFlags, traceState, true)
}

/**
 * Wraps a remote SpanContext given as hex (a B3 header's) as a span, to be a
 * parent; with words too when both ids are valid (see NonRecordingSpan).
 */
export function remoteSpan(traceId: string, spanId: string, traceFlags: number, traceState: TraceState | undefined): NonRecordingSpan {
  return new NonRecordingSpan(traceId, spanId, traceFlags, traceState, true)
}
