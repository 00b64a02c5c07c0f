import { now } from '../clock.ts'
import { debug } from '../diag.ts'
import type { Env } from '../env.ts'
import { ERR_INVALID_ARGUMENT, TracingError } from '../errors.ts'
import type { ReadableSpan } from '../span.ts'
import type { ExportResult, SpanExporter } from './processor.ts'
import { DEFAULT_MAX_LINES, renderBlock } from './waterfall.ts'

// The pure renderer lives in waterfall.ts; it is part of this exporter's API.
export { renderWaterfall, type WaterfallOptions } from './waterfall.ts'

/** Where the console exporter writes: process.stdout, or anything with write(string). */
export interface ConsoleStream {
  write(chunk: string): unknown
  readonly isTTY?: boolean | undefined
  readonly columns?: number | undefined
}

export interface ConsoleExporterOptions {
  /** Where to write (default process.stdout). Anything with write(string) and optional isTTY. */
  readonly stream?: ConsoleStream
  /** ANSI colours. Default: when the stream is a TTY and NO_COLOR is unset; FORCE_COLOR forces them on (or off with 0). */
  readonly colors?: boolean
  /** Most lines printed per trace (default 100): larger traces are collapsed, then cut. */
  readonly maxLines?: number
  /** How long a trace stays open after its local root ends, for late children and sibling services (default 50 ms). */
  readonly quietPeriodMs?: number
  /** Longest a trace waits for its local root, from its first span, before it prints anyway (default 10 s). */
  readonly maxWaitMs?: number
  /** Most traces buffered at once (default 1000); spans of further traces are dropped and counted. */
  readonly maxTraces?: number
  /** Most spans buffered per trace (default 10000); further ones are dropped and counted. */
  readonly maxSpansPerTrace?: number
  /** Environment to read NO_COLOR, FORCE_COLOR and TERM from (default process.env). */
  readonly env?: Env
}

/** The spans of one trace waiting to be printed. */
interface Pending {
  readonly traceId: string
  readonly spans: ReadableSpan[]
  /** The trace was printed before: these spans print as a continuation block. */
  readonly continued: boolean
  readonly firstSeen: number
  /** A possible local root has ended; the print waits for the quiet period. */
  armed: boolean
  armedAt: number
  dropped: number
  due: number
  timer: ReturnType<typeof setTimeout> | undefined
}

const OK: ExportResult = Object.freeze({ ok: true })
const OPTION_NAMES = ['stream', 'colors', 'maxLines', 'quietPeriodMs', 'maxWaitMs', 'maxTraces', 'maxSpansPerTrace', 'env']
/** Span ids kept across all printed traces, to tell "printed above" from "not ended" in continuation blocks. */
const REMEMBERED_SPAN_IDS = 10_000

/**
 * Prints each finished trace once, as a waterfall (see renderWaterfall): the
 * exporter for development, and for OTEL_TRACES_EXPORTER=console. Spans are
 * buffered per trace and printed together once the trace's local root has
 * ended and a short quiet period has passed; spans arriving after that print
 * as a continuation block. Give it spans as they end (SimpleSpanProcessor):
 * the quiet period already batches, and a batch processor's delay would split
 * traces.
 *
 * @example
 * const tracer = createTracer({ processors: [new SimpleSpanProcessor(new ConsoleSpanExporter())] })
 */
export class ConsoleSpanExporter implements SpanExporter {
  readonly #stream: ConsoleStream
  readonly #colors: boolean
  readonly #maxLines: number
  readonly #quietPeriodMs: number
  readonly #maxWaitMs: number
  readonly #maxTraces: number
  readonly #maxSpansPerTrace: number
  /** Insertion order is first arrival: forceFlush() prints traces in the order they began. */
  readonly #pending = new Map<string, Pending>()
  /** Recently printed traces, oldest first, with their span ids while within REMEMBERED_SPAN_IDS. */
  readonly #printed = new Map<string, Set<string> | undefined>()
  #rememberedIds = 0
  /** Spans of traces that found the buffer full, not yet reported. */
  #droppedSpans = 0
  #stopped = false
  // One bound function per exporter, not a closure per timer.
  readonly #onTimer = (entry: Pending): void => this.#fire(entry)
  readonly #onExit = (): void => this.#printAll()

  constructor(options: ConsoleExporterOptions = {}) {
    validate(options)
    this.#stream = options.stream ?? process.stdout
    this.#colors = options.colors ?? autoColors(this.#stream, options.env ?? process.env)
    this.#maxLines = options.maxLines ?? DEFAULT_MAX_LINES
    this.#quietPeriodMs = options.quietPeriodMs ?? 50
    this.#maxWaitMs = Math.max(options.maxWaitMs ?? 10_000, this.#quietPeriodMs)
    this.#maxTraces = options.maxTraces ?? 1000
    this.#maxSpansPerTrace = options.maxSpansPerTrace ?? 10_000
  }

  export(spans: readonly ReadableSpan[]): Promise<ExportResult> {
    if (this.#stopped) return Promise.resolve({ ok: false, error: new Error('console exporter is shut down') })
    try {
      for (const span of spans) this.#add(span)
    } catch (err) {
      debug('console exporter: buffering failed: %o', err)
      return Promise.resolve({ ok: false, error: err instanceof Error ? err : new Error(String(err)) })
    }
    return Promise.resolve(OK)
  }

  /** Prints every buffered trace now, finished or not. */
  forceFlush(): Promise<void> {
    this.#printAll()
    return Promise.resolve()
  }

  /** Prints every buffered trace; spans exported afterwards are refused. */
  shutdown(): Promise<void> {
    if (!this.#stopped) {
      this.#printAll()
      this.#stopped = true
    }
    return Promise.resolve()
  }

  #add(span: ReadableSpan): void {
    let entry = this.#pending.get(span.traceId)
    if (entry === undefined) {
      if (this.#pending.size >= this.#maxTraces) {
        this.#droppedSpans++
        return
      }
      entry = {
        traceId: span.traceId,
        spans: [],
        continued: this.#printed.has(span.traceId),
        firstSeen: now(),
        armed: false,
        armedAt: 0,
        dropped: 0,
        due: 0,
        timer: undefined,
      }
      if (this.#pending.size === 0) watchExit(this.#onExit)
      this.#pending.set(span.traceId, entry)
    }
    if (entry.spans.length >= this.#maxSpansPerTrace) {
      entry.dropped++
      return
    }
    entry.spans.push(span)
    // A span without a local parent may be the local root: a new trace's root,
    // or a SERVER span continuing a remote caller. Late spans of a printed
    // trace have nothing else to wait for.
    if (!entry.armed && (entry.continued || span.parentSpanId === undefined || span.parentIsRemote)) {
      entry.armed = true
      entry.armedAt = now()
    }
    this.#schedule(entry)
  }

  /**
   * Armed: print after the quiet period, restarted by every span of the
   * trace, but never later than maxWait after arming (a trace that keeps
   * growing still prints). Not armed: print after maxWait from the first
   * span, so children of a span that never ends are not held forever.
   */
  #schedule(entry: Pending): void {
    const t = now()
    const due = entry.armed
      ? Math.min(t + this.#quietPeriodMs, entry.armedAt + this.#maxWaitMs)
      : entry.firstSeen + this.#maxWaitMs
    if (entry.timer !== undefined) {
      if (due === entry.due) return
      clearTimeout(entry.timer)
    }
    entry.due = due
    entry.timer = setTimeout(this.#onTimer, Math.max(0, due - t), entry)
    // A dev tool must not keep the process alive; the exit hook prints what is left.
    entry.timer.unref()
  }

  #fire(entry: Pending): void {
    entry.timer = undefined
    if (this.#pending.get(entry.traceId) !== entry) return
    if (entry.continued || now() >= entry.firstSeen + this.#maxWaitMs || isComplete(entry.spans)) {
      this.#print(entry)
      return
    }
    // What ended was a SERVER span of a sibling service in this process,
    // called by a span still open here: wait for the real local root.
    entry.armed = false
    this.#schedule(entry)
  }

  #printAll(): void {
    for (const entry of [...this.#pending.values()]) this.#print(entry)
    if (this.#droppedSpans > 0) {
      this.#write(`\n${this.#droppedNote()}\n`)
      this.#droppedSpans = 0
    }
  }

  #print(entry: Pending): void {
    if (entry.timer !== undefined) clearTimeout(entry.timer)
    entry.timer = undefined
    this.#pending.delete(entry.traceId)
    if (this.#pending.size === 0) unwatchExit(this.#onExit)
    const notes: string[] = []
    if (entry.dropped > 0) {
      notes.push(`${entry.dropped} more spans of this trace were dropped: at most ${this.#maxSpansPerTrace} are buffered per trace`)
    }
    if (this.#droppedSpans > 0) {
      notes.push(this.#droppedNote())
      this.#droppedSpans = 0
    }
    const stream = this.#stream
    const columns = stream.isTTY === true && typeof stream.columns === 'number' && stream.columns > 0 ? stream.columns : undefined
    let text: string
    try {
      text = renderBlock(entry.spans, {
        colors: this.#colors,
        maxLines: this.#maxLines,
        // One column short of the edge: some terminals wrap a line that fills the last column.
        ...(columns !== undefined && { width: columns - 1 }),
        continued: entry.continued,
        ...(entry.continued && { printedSpanIds: this.#printed.get(entry.traceId) }),
        notes,
      })
    } catch (err) {
      debug('console exporter: rendering trace %s failed: %o', entry.traceId, err)
      return
    }
    this.#remember(entry)
    this.#write(`\n${text}\n`)
  }

  #droppedNote(): string {
    return `${this.#droppedSpans} spans of other traces were dropped: at most ${this.#maxTraces} traces are buffered`
  }

  /** Records a printed trace (bounded), so its late spans print as a continuation. */
  #remember(entry: Pending): void {
    const printed = this.#printed
    let ids = printed.get(entry.traceId)
    printed.delete(entry.traceId)
    if (ids !== undefined || !entry.continued) {
      ids ??= new Set()
      for (const span of entry.spans) ids.add(span.spanId)
      this.#rememberedIds += entry.spans.length
    }
    printed.set(entry.traceId, ids)
    while (printed.size > this.#maxTraces) {
      const [oldest, oldIds] = printed.entries().next().value!
      if (oldIds !== undefined) this.#rememberedIds -= oldIds.size
      printed.delete(oldest)
    }
    // Keep the trace ids, forget the span ids of the oldest traces first.
    for (const [traceId, oldIds] of printed) {
      if (this.#rememberedIds <= REMEMBERED_SPAN_IDS) break
      if (oldIds === undefined) continue
      this.#rememberedIds -= oldIds.size
      printed.set(traceId, undefined)
    }
  }

  #write(text: string): void {
    try {
      this.#stream.write(text)
    } catch (err) {
      debug('console exporter: write failed: %o', err)
    }
  }
}

/**
 * True when the local part of the trace is done: its root (no parent) has
 * ended, or every span whose parent is missing has a remote parent (this
 * process served a request and nothing local is still open above it). A
 * missing local parent means an enclosing span is still running.
 */
function isComplete(spans: readonly ReadableSpan[]): boolean {
  const ids = new Set<string>()
  for (const s of spans) {
    if (s.parentSpanId === undefined) return true
    ids.add(s.spanId)
  }
  for (const s of spans) if (!ids.has(s.parentSpanId!) && !s.parentIsRemote) return false
  return true
}

/**
 * https://no-color.org and the FORCE_COLOR convention (Node, chalk):
 * FORCE_COLOR wins (0 or false turn colour off), then NO_COLOR, then a dumb
 * terminal; otherwise colour only on a TTY, never into pipes or files.
 */
function autoColors(stream: ConsoleStream, env: Env): boolean {
  const force = env['FORCE_COLOR']
  if (force !== undefined) return force !== '0' && force.toLowerCase() !== 'false'
  const noColor = env['NO_COLOR']
  if (noColor !== undefined && noColor !== '') return false
  if (env['TERM'] === 'dumb') return false
  return stream.isTTY === true
}

function validate(options: ConsoleExporterOptions): void {
  if (options === null || typeof options !== 'object') {
    throw new TracingError(ERR_INVALID_ARGUMENT, `console exporter options must be an object, got ${String(options)}`)
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_NAMES.includes(key)) {
      throw new TracingError(ERR_INVALID_ARGUMENT, `unknown console exporter option "${key}"; known options: ${OPTION_NAMES.join(', ')}`)
    }
  }
  if (options.stream !== undefined && typeof options.stream?.write !== 'function') {
    throw new TracingError(ERR_INVALID_ARGUMENT, 'stream must have a write(string) method')
  }
  if (options.colors !== undefined && typeof options.colors !== 'boolean') {
    throw new TracingError(ERR_INVALID_ARGUMENT, 'colors must be a boolean')
  }
  const counts = ['maxLines', 'maxTraces', 'maxSpansPerTrace'] as const
  for (const name of counts) {
    const v = options[name]
    if (v !== undefined && !(Number.isInteger(v) && v >= 1)) {
      throw new TracingError(ERR_INVALID_ARGUMENT, `${name} must be a positive integer, got ${String(v)}`)
    }
  }
  const delays = ['quietPeriodMs', 'maxWaitMs'] as const
  for (const name of delays) {
    const v = options[name]
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v >= 0)) {
      throw new TracingError(ERR_INVALID_ARGUMENT, `${name} must be a non-negative number of milliseconds, got ${String(v)}`)
    }
  }
}

// One 'exit' listener for all exporters, whatever their number: timers are
// unref()'d, so a script that ends right after its root span would otherwise
// lose its last trace. Exporters are held only while they have something to print.
const flushers = new Set<() => void>()

function watchExit(flush: () => void): void {
  if (flushers.size === 0) process.on('exit', flushAtExit)
  flushers.add(flush)
}

function unwatchExit(flush: () => void): void {
  if (flushers.delete(flush) && flushers.size === 0) process.off('exit', flushAtExit)
}

function flushAtExit(): void {
  // 'exit' allows only synchronous work; printing is synchronous.
  for (const flush of [...flushers]) {
    try {
      flush()
    } catch (err) {
      debug('console exporter: printing at exit failed: %o', err)
    }
  }
}
