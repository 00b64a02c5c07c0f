/**
 * The batch processor's queue for exporters that send OTLP protobuf
 * (SpanExporter#exportProtobuf): each span is encoded soon after it ends
 * (the processor hands them over in short runs), and only its bytes wait for
 * the export.
 *
 * Why: a batch fills over tens of milliseconds on a busy server (512 spans),
 * and it waits up to the schedule delay on a quiet one. An ended span kept
 * as an object that long survives the young generation's collections, so V8
 * copies it (its attribute arrays, its strings) into the old generation,
 * which must later be marked and compacted. Measured on a Koa app, that cost
 * more than everything else the tracer does per request; bytes in one
 * buffer cost the garbage collector nothing, and the span dies young.
 */
import type { Resource } from '../../resource.ts'
import type { ReadableSpan } from '../../span.ts'
import type { InstrumentationScope } from '../../types.ts'
import { sameScope } from './mapping.ts'
import { SpanEncoder, startResourceSpans, startScopeSpans, writeSpan } from './protobuf.ts'
import { ProtoWriter } from './writer.ts'

/** Queued spans taken for one export: an ExportTraceServiceRequest body. */
export interface EncodedBatch {
  readonly body: Buffer
  /** How many spans the body holds. */
  readonly count: number
}

/** Spans sharing a ResourceSpans and ScopeSpans entry. */
interface SpanGroup {
  readonly resource: Resource
  readonly scope: InstrumentationScope
}

/** An arena grown past this by a burst is let go once the queue empties. */
const MAX_IDLE_ARENA = 4 * 1024 * 1024
/**
 * Request bodies at least this big are written into the previous body's
 * buffer once the exporter is done with it. Smaller ones are not worth it,
 * and Buffer.allocUnsafe() carves those from a pool shared with other code.
 */
const MIN_RECYCLED_BODY = 16 * 1024
/** Entries #starts and #groupOf start with; grown by doubling, back to this once a burst past MAX_IDLE_INDEX is taken. */
const INITIAL_INDEX = 64
const MAX_IDLE_INDEX = 4096

export class ProtobufSpanQueue {
  /** The queued spans' encodings, back to back: ScopeSpans.spans entries. */
  readonly #arena = new ProtoWriter()
  readonly #encoder = new SpanEncoder(this.#arena)
  readonly #out = new ProtoWriter()
  /**
   * Where each queued span's bytes start in the arena (they end where the
   * next one's start) and its group (an index into #groups), for the first
   * #count entries. Typed arrays kept from batch to batch, not arrays made
   * per batch and grown by push(): their elements are outside the JS heap,
   * so a young-generation collection never copies them while a batch fills.
   */
  #starts = new Int32Array(INITIAL_INDEX)
  #groupOf = new Int32Array(INITIAL_INDEX)
  #count = 0
  #groups: SpanGroup[] = []
  /** The group of the previous span (almost every span has the same one), and its resource and scope. */
  #last = -1
  #lastResource: Resource | undefined = undefined
  #lastScope: InstrumentationScope | undefined = undefined
  /** Bytes of a request body beyond its spans' (resource, scope), from the last take(). */
  #headerGuess = 512
  /** The buffer of the last body take() handed out, until recycle() gets it back. */
  #lent: Buffer | undefined = undefined
  /** A body buffer the exporter is done with, for the next take(). */
  #spare: Buffer | undefined = undefined

  constructor() {
    this.#arena.reset(0)
  }

  /** Spans queued. */
  get length(): number {
    return this.#count
  }

  /** Encodes an ended span onto the queue. If encoding throws, the queue is left as it was. */
  push(span: ReadableSpan): void {
    const arena = this.#arena
    const start = arena.position
    try {
      writeSpan(this.#encoder, span)
    } catch (err) {
      arena.rewind(start)
      throw err
    }
    const group = this.#groupFor(span)
    const n = this.#count
    if (n === this.#starts.length) this.#grow()
    this.#starts[n] = start
    this.#groupOf[n] = group
    this.#count = n + 1
  }

  #grow(): void {
    const starts = new Int32Array(this.#starts.length * 2)
    starts.set(this.#starts)
    this.#starts = starts
    const groupOf = new Int32Array(starts.length)
    groupOf.set(this.#groupOf)
    this.#groupOf = groupOf
  }

  /**
   * Removes the oldest `max` spans (or all, if fewer) and returns them as a
   * request body, grouped by resource and scope as OTLP nests them, in
   * queue order within each group. The queue must not be empty.
   */
  take(max: number): EncodedBatch {
    const arena = this.#arena
    const starts = this.#starts
    const groupOf = this.#groupOf
    const total = this.#count
    const count = Math.min(max, total)
    const end = count < total ? starts[count]! : arena.position
    const out = this.#out
    const size = end + this.#headerGuess
    const spare = this.#spare
    this.#spare = undefined
    if (spare !== undefined && spare.length >= size) out.resetInto(spare)
    // An eighth more than needed, so that the next, slightly larger batch still fits when this buffer comes back.
    else out.reset(size >= MIN_RECYCLED_BODY ? size + (size >>> 3) : size)
    const first = groupOf[0]!
    let uniform = true
    for (let i = 1; i < count; i++) {
      if (groupOf[i] !== first) {
        uniform = false
        break
      }
    }
    if (uniform) {
      // The common case: one resource and scope, so the spans' bytes are
      // one run, copied in one go.
      const group = this.#groups[first]!
      const resourceSpans = startResourceSpans(out, group.resource)
      const scopeSpans = startScopeSpans(out, group.scope)
      out.raw(arena.view(0, end))
      out.ldelim(scopeSpans, 3)
      out.ldelim(resourceSpans, 3)
    } else {
      this.#writeGrouped(out, count, end)
    }
    // Read before finish(), and after writing: the writer may have grown into a new buffer.
    const whole = out.buffer
    const body = out.finish()
    this.#headerGuess = Math.max(64, body.length - end + 64)
    this.#drop(count, end)
    this.#lent = whole.length >= MIN_RECYCLED_BODY ? whole : undefined
    return { body, count }
  }

  /**
   * Gives back the body of the last take() once the exporter is done with it
   * (its export settled), so the next take() writes into the same memory.
   * Why: a fresh 100 KiB buffer per batch is fresh pages for the kernel to
   * map and fault in; measured, copying a batch into new memory cost up to
   * ten times what copying it into memory used before did. Any other body (an
   * older one whose export outlived its timeout) is ignored and left to the
   * garbage collector.
   */
  recycle(body: Buffer): void {
    const lent = this.#lent
    if (lent === undefined || body.buffer !== lent.buffer) return
    this.#lent = undefined
    this.#spare = lent
  }

  /** take() for a batch of several groups: each resource once, its scopes in order of first appearance. */
  #writeGrouped(out: ProtoWriter, count: number, end: number): void {
    const arena = this.#arena
    const starts = this.#starts
    const groupOf = this.#groupOf
    const groups = this.#groups
    const written = new Uint8Array(groups.length)
    for (let i = 0; i < count; i++) {
      if (written[groupOf[i]!] === 1) continue
      const resource = groups[groupOf[i]!]!.resource
      const resourceSpans = startResourceSpans(out, resource)
      for (let j = i; j < count; j++) {
        const g = groupOf[j]!
        if (written[g] === 1 || groups[g]!.resource !== resource) continue
        written[g] = 1
        const scopeSpans = startScopeSpans(out, groups[g]!.scope)
        for (let k = j; k < count; k++) {
          if (groupOf[k] === g) out.raw(arena.view(starts[k]!, k + 1 < count ? starts[k + 1]! : end))
        }
        out.ldelim(scopeSpans, 3)
      }
      out.ldelim(resourceSpans, 3)
    }
  }

  /** Forgets the oldest `count` spans, whose bytes end at `end`. */
  #drop(count: number, end: number): void {
    const total = this.#count
    if (count === total) {
      this.#count = 0
      if (this.#starts.length > MAX_IDLE_INDEX) {
        this.#starts = new Int32Array(INITIAL_INDEX)
        this.#groupOf = new Int32Array(INITIAL_INDEX)
      }
      this.#groups = []
      this.#last = -1
      this.#lastResource = undefined
      this.#lastScope = undefined
      if (this.#arena.capacity > MAX_IDLE_ARENA) this.#arena.reset(0)
      else this.#arena.rewind(0)
      return
    }
    this.#arena.shift(end)
    const starts = this.#starts
    starts.copyWithin(0, count, total)
    this.#groupOf.copyWithin(0, count, total)
    const left = total - count
    for (let i = 0; i < left; i++) starts[i]! -= end
    this.#count = left
  }

  /**
   * The group of `span`: by resource identity (one per tracer pipeline) and
   * sameScope(), as the batch encoder groups them.
   */
  #groupFor(span: ReadableSpan): number {
    const resource = span.resource
    const scope = span.scope
    if (resource === this.#lastResource && scope === this.#lastScope) return this.#last
    const groups = this.#groups
    let found = -1
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]!
      if (g.resource === resource && sameScope(g.scope, scope)) {
        found = i
        break
      }
    }
    if (found === -1) {
      groups.push({ resource, scope })
      found = groups.length - 1
    }
    this.#last = found
    this.#lastResource = resource
    this.#lastScope = scope
    return found
  }
}
