import { toEpochMillis } from '../clock.ts'
import type { ReadableSpan } from '../span.ts'
import { SpanKind, SpanStatusCode, type AttributeValue } from '../types.ts'

/** How renderWaterfall() lays out a trace. */
export interface WaterfallOptions {
  /** ANSI colours (default false; the console exporter turns them on for terminals). */
  readonly colors?: boolean
  /** Line width in columns to fit, e.g. a terminal's. Default: a 40-cell time axis, names up to 56 columns. */
  readonly width?: number
  /** Most lines per trace, header and footer included (default 100). */
  readonly maxLines?: number
}

/** What the console exporter adds for its own blocks; not public API. */
export interface BlockOptions extends WaterfallOptions {
  /** The spans arrived after their trace was printed: a continuation block. */
  readonly continued?: boolean
  /** Span ids already printed for this trace, to say where a missing parent went. */
  readonly printedSpanIds?: ReadonlySet<string> | undefined
  /** Extra footer lines (drop counts). */
  readonly notes?: readonly string[]
}

export const DEFAULT_MAX_LINES = 100
const DEFAULT_BAR = 40
const MAX_BAR = 100
const MIN_BAR = 10
const MAX_NAME = 56
/** Columns of a span name kept before its tail (counts, parent note) is shortened. */
const MIN_LABEL = 20
const MAX_SERVICE = 16
const DURATION_WIDTH = 8
/** Columns per tree level: a child's connector sits under its parent's name. */
const GUIDE = 3
const HEADER_LINES = 2

const ATTR_STATUS = 'http.response.status_code'
/** The pre-1.21 semconv name, still emitted by older instrumentations. */
const ATTR_STATUS_OLD = 'http.status_code'

const KIND_MARK: Readonly<Record<number, string>> = {
  [SpanKind.INTERNAL]: '─',
  [SpanKind.SERVER]: '←',
  [SpanKind.CLIENT]: '→',
  [SpanKind.PRODUCER]: '→',
  [SpanKind.CONSUMER]: '←',
}

interface Problem {
  readonly mark: '✗' | '!'
  readonly text: string | undefined
}

interface Node {
  readonly span: ReadableSpan
  readonly start: number
  readonly end: number
  readonly service: string
  readonly name: string
  readonly problem: Problem | undefined
  parent: Node | undefined
  readonly children: Node[]
  group: Group | undefined
  /** Lines this node and its subtree take with the current collapsing. */
  lines: number
  /** Spans in this subtree, itself included. */
  size: number
  self: number
  /** For subtree roots: where the parent is. */
  note: string
}

/** Siblings sharing service, kind and name: the unit that collapses into one summary line. */
interface Group {
  readonly members: Node[]
  readonly parent: Node | undefined
  collapsed: boolean
  spans: number
  errors: number
  firstError: string | undefined
}

type Item = Node | Group

interface Row {
  readonly service: string
  /** Tree guides, connector and kind mark. */
  readonly guides: string
  readonly label: string
  /** Kept whole when the label is truncated: counts, parent notes. */
  readonly tail: string
  readonly mark: string
  readonly status: string
  readonly duration: string
  /** Bar cells as [from, to) in 0..1 of the axis; a group fills each member's cells. */
  readonly spans: readonly (readonly [number, number])[]
  readonly error: boolean
  readonly group: boolean
  readonly bottleneck: boolean
  /** A detail row (error text under a span): only guides and label are used. */
  readonly detail: boolean
}

/**
 * Renders the spans of a trace as a waterfall: a header, one line per span
 * in tree order with its duration and a bar on a time axis shared by the
 * whole trace, error details, and the span with the largest self time.
 * Spans of several traces give one block per trace, separated by a blank
 * line. Pure: the output depends only on the spans and options.
 *
 * @example
 * process.stdout.write(renderWaterfall(exporter.getFinishedSpans(), { colors: true }) + '\n')
 */
export function renderWaterfall(spans: readonly ReadableSpan[], options: WaterfallOptions = {}): string {
  const byTrace = new Map<string, ReadableSpan[]>()
  for (const span of spans) {
    const list = byTrace.get(span.traceId)
    if (list === undefined) byTrace.set(span.traceId, [span])
    else list.push(span)
  }
  const blocks: string[] = []
  for (const list of byTrace.values()) blocks.push(renderBlock(list, options))
  return blocks.join('\n\n')
}

/** Renders one trace's spans (see renderWaterfall); the console exporter's entry point. */
export function renderBlock(spans: readonly ReadableSpan[], options: BlockOptions = {}): string {
  if (spans.length === 0) return ''
  const colors = options.colors === true
  const maxLines = options.maxLines ?? DEFAULT_MAX_LINES
  const notes = options.notes ?? []

  const nodes = spans.map(toNode)
  const tops = linkTree(nodes)
  for (const top of tops) top.note = parentNote(top.span, options.continued === true, options.printedSpanIds)
  const order = preorder(tops)
  computeSizes(order)

  let t0 = Infinity
  let t1 = -Infinity
  for (const n of nodes) {
    if (n.start < t0) t0 = n.start
    if (n.end > t1) t1 = n.end
  }
  const total = t1 - t0
  const bottleneck = findBottleneck(order)

  // The line budget: the header and footer always print, the body gets the
  // rest, keeping one line for the "not shown" note if anything is hidden.
  const footer = (spans.length > 1 ? 1 : 0) + notes.length
  const body = Math.max(1, maxLines - HEADER_LINES - footer)
  let needed = 0
  for (const top of tops) needed += top.lines
  const budget = needed <= body ? body : Math.max(1, body - 1)
  if (needed > budget) collapse(tops, nodes, needed, budget)

  const { rows, shown, collapsedSpans, collapsedGroups } = buildRows(tops, budget, t0, total, bottleneck)
  const hidden = spans.length - shown
  const cut = hidden - collapsedSpans

  const layout = computeLayout(rows, options.width)
  const palette = servicePalette(rows)
  const lines: string[] = []
  // Cut the title only to fit a terminal: in a file or pipe the full trace id and time matter more.
  const head = title(spans, tops, t0, total, options.continued === true)
  lines.push(options.width === undefined ? head : truncate(head, layout.total))
  lines.push(columnHeader(layout, total, colors))
  for (const row of rows) lines.push(formatRow(row, layout, colors, palette))
  if (hidden > 0) {
    const parts: string[] = []
    if (collapsedSpans > 0) parts.push(`${collapsedSpans} collapsed in ${plural(collapsedGroups, 'group')}`)
    if (cut > 0) parts.push(`${cut} cut`)
    const note = `… ${hidden} of ${plural(spans.length, 'span')} not shown: ${parts.join(', ')} (maxLines ${maxLines})`
    lines.push(paint(colors, '2', truncate(note, layout.total)))
  }
  if (spans.length > 1 && bottleneck !== undefined) {
    lines.push(bottleneckLine(bottleneck, total, layout.total, colors))
  }
  for (const note of notes) lines.push(paint(colors, '2', truncate(sanitize(note), layout.total)))
  const first = lines[0] ?? ''
  lines[0] = paint(colors, '1', first)
  return lines.join('\n')
}

function toNode(span: ReadableSpan): Node {
  const start = span.startTime
  // An unended span (renderWaterfall is public) has endTime -1: show it as an instant.
  const end = span.ended && span.endTime > start ? span.endTime : start
  const service = span.resource?.attributes?.['service.name']
  return {
    span,
    start,
    end,
    service: sanitize(typeof service === 'string' && service !== '' ? service : 'unknown'),
    name: sanitize(span.name) + (span.ended ? '' : ' (not ended)'),
    problem: problemOf(span),
    parent: undefined,
    children: [],
    group: undefined,
    lines: 0,
    size: 0,
    self: 0,
    note: '',
  }
}

/** Links children to parents and returns the subtree roots, sorted by start. */
function linkTree(nodes: Node[]): Node[] {
  const byId = new Map<string, Node>()
  for (const n of nodes) if (!byId.has(n.span.spanId)) byId.set(n.span.spanId, n)
  const tops: Node[] = []
  for (const n of nodes) {
    const id = n.span.parentSpanId
    const parent = id === undefined ? undefined : byId.get(id)
    if (parent === undefined || parent === n || byId.get(n.span.spanId) !== n) tops.push(n)
    else {
      n.parent = parent
      parent.children.push(n)
    }
  }
  // Malformed input (a parent cycle) leaves spans unreachable from any top;
  // cut each cycle at its earliest span so every span is still printed.
  const seen = new Set<Node>()
  markReachable(tops, seen)
  for (const n of nodes) {
    if (seen.has(n)) continue
    const parent = n.parent
    if (parent !== undefined) parent.children.splice(parent.children.indexOf(n), 1)
    n.parent = undefined
    tops.push(n)
    markReachable([n], seen)
  }
  for (const n of nodes) n.children.sort(byStart)
  return tops.sort(byStart)
}

function markReachable(from: readonly Node[], seen: Set<Node>): void {
  const stack = from.slice()
  for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
    if (seen.has(n)) continue
    seen.add(n)
    for (const c of n.children) stack.push(c)
  }
}

/** Earlier start first; at the same start the longer span (likely the parent) first. */
function byStart(a: Node, b: Node): number {
  return a.start - b.start || b.end - a.end
}

function parentNote(span: ReadableSpan, continued: boolean, printed: ReadonlySet<string> | undefined): string {
  const id = span.parentSpanId
  if (id === undefined) return ''
  if (span.parentIsRemote) return `(parent ${id} remote)`
  if (printed?.has(id) === true) return `(parent ${id} printed above)`
  // A continuation whose printed span ids were forgotten (bounded memory) cannot tell.
  if (continued && printed === undefined) return `(parent ${id})`
  return `(parent ${id} not ended)`
}

/** Tree order (parents before children, siblings by start), without recursion: traces can be deep. */
function preorder(tops: readonly Node[]): Node[] {
  const out: Node[] = []
  const stack = tops.slice().reverse()
  for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
    out.push(n)
    for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]!)
  }
  return out
}

/** Subtree sizes, uncollapsed line counts and self times, children before parents. */
function computeSizes(order: readonly Node[]): void {
  for (let i = order.length - 1; i >= 0; i--) {
    const n = order[i]!
    let size = 1
    let lines = n.problem?.text === undefined ? 1 : 2
    for (const c of n.children) {
      size += c.size
      lines += c.lines
    }
    n.size = size
    n.lines = lines
    n.self = selfTime(n)
  }
}

/**
 * A span's own duration minus the union of its children's intervals, each
 * clamped to the span: overlapping children are not subtracted twice, and
 * the part of a child that outlives its parent is not the parent's time.
 */
function selfTime(n: Node): number {
  const duration = n.end - n.start
  if (n.children.length === 0) return duration
  // Children are sorted by start, so one sweep merges the intervals.
  let covered = 0
  let from = -Infinity
  let to = -Infinity
  for (const c of n.children) {
    const s = Math.max(c.start, n.start)
    const e = Math.min(c.end, n.end)
    if (e <= s) continue
    if (s > to) {
      if (to > from) covered += to - from
      from = s
      to = e
    } else if (e > to) to = e
  }
  if (to > from) covered += to - from
  return Math.max(0, duration - covered)
}

function findBottleneck(order: readonly Node[]): Node | undefined {
  let best: Node | undefined
  for (const n of order) if (best === undefined || n.self > best.self) best = n
  return best
}

/**
 * Shrinks the tree to `budget` lines by replacing groups of same-named
 * siblings with one summary line each, the groups that save the most lines
 * first: a trace that fits is shown whole, a loop of 1000 queries becomes one
 * line and the distinct spans around it stay visible.
 */
function collapse(tops: readonly Node[], nodes: readonly Node[], needed: number, budget: number): void {
  const groups: Group[] = []
  const savings = new Map<Group, number>()
  const addGroups = (parent: Node | undefined, children: readonly Node[]): void => {
    if (children.length < 2) return
    const byKey = new Map<string, Node[]>()
    for (const c of children) {
      const key = `${c.service}\u0000${c.span.kind}\u0000${c.name}`
      const list = byKey.get(key)
      if (list === undefined) byKey.set(key, [c])
      else list.push(c)
    }
    for (const members of byKey.values()) {
      if (members.length < 2) continue
      const group: Group = { members, parent, collapsed: false, spans: 0, errors: 0, firstError: undefined }
      let lines = 0
      for (const m of members) {
        m.group = group
        lines += m.lines
        group.spans += m.size
        if (m.span.statusCode === SpanStatusCode.ERROR) {
          group.errors++
          group.firstError ??= m.problem?.text
        }
      }
      groups.push(group)
      savings.set(group, lines - groupLines(group))
    }
  }
  addGroups(undefined, tops)
  for (const n of nodes) addGroups(n, n.children)
  groups.sort((a, b) => savings.get(b)! - savings.get(a)! || b.members.length - a.members.length)

  for (const group of groups) {
    if (needed <= budget) break
    if (insideCollapsed(group)) continue
    let lines = 0
    for (const m of group.members) lines += m.lines
    const saved = lines - groupLines(group)
    if (saved <= 0) continue
    group.collapsed = true
    needed -= saved
    for (let p = group.parent; p !== undefined; p = p.parent) p.lines -= saved
  }
}

function insideCollapsed(group: Group): boolean {
  for (let p = group.parent; p !== undefined; p = p.parent) if (p.group?.collapsed === true) return true
  return false
}

function groupLines(group: Group): number {
  return group.errors > 0 ? 2 : 1
}

/** Children as they print: a collapsed group once, where its first member was. */
function itemsOf(children: readonly Node[]): Item[] {
  const items: Item[] = []
  for (const c of children) {
    const g = c.group
    if (g === undefined || !g.collapsed) items.push(c)
    else if (g.members[0] === c) items.push(g)
  }
  return items
}

function isGroup(item: Item): item is Group {
  return 'members' in item
}

function buildRows(
  tops: readonly Node[],
  budget: number,
  t0: number,
  total: number,
  bottleneck: Node | undefined,
): { rows: Row[]; shown: number; collapsedSpans: number; collapsedGroups: number } {
  const rows: Row[] = []
  let shown = 0
  let collapsedSpans = 0
  let collapsedGroups = 0
  const frac = (t: number): number => (total > 0 ? (t - t0) / total : 0)
  const stack: { items: Item[]; i: number; prefix: string; top: boolean }[] = [
    { items: itemsOf(tops), i: 0, prefix: '', top: true },
  ]
  while (stack.length > 0 && rows.length < budget) {
    const frame = stack[stack.length - 1]!
    const item = frame.items[frame.i++]
    if (item === undefined) {
      stack.pop()
      continue
    }
    const last = frame.i === frame.items.length
    const connector = frame.top ? '' : last ? '└' : '├'
    const childPrefix = frame.top ? '' : frame.prefix + (last ? ' '.repeat(GUIDE) : '│'.padEnd(GUIDE))
    if (isGroup(item)) {
      const first = item.members[0]!
      let sum = 0
      let max = 0
      for (const m of item.members) {
        const d = m.end - m.start
        sum += d
        if (d > max) max = d
      }
      const nested = item.spans - item.members.length
      const stats = `(avg ${formatDuration(sum / item.members.length)}, max ${formatDuration(max)}${nested > 0 ? `, +${nested} nested` : ''})`
      rows.push({
        service: first.service,
        guides: frame.prefix + connector + '…',
        label: `${item.members.length} × ${first.name}`,
        tail: stats,
        mark: item.errors > 0 ? '✗' : '',
        status: '',
        duration: '',
        spans: item.members.map((m) => [frac(m.start), frac(m.end)] as const),
        error: item.errors > 0,
        group: true,
        bottleneck: false,
        detail: false,
      })
      collapsedSpans += item.spans
      collapsedGroups++
      if (item.errors > 0 && rows.length < budget) {
        const text = `✗ ${item.errors} of ${item.members.length} failed${item.firstError === undefined ? '' : `, first: ${item.firstError}`}`
        rows.push(detailRow(childPrefix + '  ', text))
      }
      continue
    }
    const span = item.span
    const kids = itemsOf(item.children)
    rows.push({
      service: item.service,
      guides: frame.prefix + connector + (KIND_MARK[span.kind] ?? '─'),
      label: item.name,
      tail: item.note,
      mark: item.problem?.mark ?? '',
      status: httpStatus(span),
      duration: formatDuration(item.end - item.start),
      spans: [[frac(item.start), frac(item.end)]],
      error: span.statusCode === SpanStatusCode.ERROR,
      group: false,
      bottleneck: item === bottleneck,
      detail: false,
    })
    shown++
    const text = item.problem?.text
    if (text !== undefined && rows.length < budget) {
      rows.push(detailRow(childPrefix + (kids.length > 0 ? '│ ' : '  '), `${item.problem!.mark} ${text}`))
    }
    if (kids.length > 0) stack.push({ items: kids, i: 0, prefix: childPrefix, top: false })
  }
  return { rows, shown, collapsedSpans, collapsedGroups }
}

function detailRow(guides: string, text: string): Row {
  return {
    service: '',
    guides,
    label: text,
    tail: '',
    mark: '',
    status: '',
    duration: '',
    spans: [],
    error: true,
    group: false,
    bottleneck: false,
    detail: true,
  }
}

interface Layout {
  readonly service: number
  readonly name: number
  /** Mark column (✗/!) width, 0 when no span has one. */
  readonly mark: number
  /** HTTP status column width, 0 when no span has one. */
  readonly status: number
  readonly bar: number
  readonly total: number
}

function computeLayout(rows: readonly Row[], width: number | undefined): Layout {
  let service = 7 // "service"
  let name = 4 // "span"
  let mark = 0
  let status = 0
  for (const row of rows) {
    if (row.detail) continue
    service = Math.max(service, textWidth(row.service))
    name = Math.max(name, textWidth(row.guides) + 1 + textWidth(row.label) + (row.tail === '' ? 0 : 1 + textWidth(row.tail)))
    if (row.mark !== '') mark = 1
    if (row.status !== '') status = Math.max(status, textWidth(row.status))
  }
  service = Math.min(service, MAX_SERVICE)
  // service, 2 spaces, name, [space mark], [space status], space duration, space │bar│
  const fixed = service + 2 + (mark > 0 ? 1 + mark : 0) + (status > 0 ? 1 + status : 0) + 1 + DURATION_WIDTH + 1 + 2
  let bar = DEFAULT_BAR
  if (width === undefined || !Number.isFinite(width)) name = Math.min(name, MAX_NAME)
  else {
    // Fit the line: names get what they need up to MAX_NAME, the axis the rest.
    const room = Math.floor(width) - fixed
    name = Math.max(16, Math.min(name, MAX_NAME, room - 20))
    bar = Math.max(MIN_BAR, Math.min(MAX_BAR, room - name))
  }
  return { service, name, mark, status, bar, total: fixed + name + bar }
}

function columnHeader(layout: Layout, total: number, colors: boolean): string {
  const legend = 'span  (← server, → client)'
  const span = textWidth(legend) <= layout.name ? legend : 'span'
  let left = padEnd('service', layout.service) + '  ' + padEnd(span, layout.name)
  if (layout.mark > 0) left += ' '.repeat(1 + layout.mark)
  if (layout.status > 0) left += ' '.repeat(1 + layout.status)
  left += ' ' + padStart('duration', DURATION_WIDTH) + ' '
  // The axis labels sit on the bar's frame: 0 on the left edge, the trace's
  // duration on the right one, and the midpoint when there is room.
  const axis = new Array<string>(layout.bar + 2).fill(' ')
  const place = (label: string, at: number): void => {
    const from = Math.max(0, Math.min(axis.length - label.length, at))
    for (let i = 0; i < label.length; i++) axis[from + i] = label[i]!
  }
  const end = formatDuration(total)
  place('0', 0)
  if (layout.bar >= 30) {
    const mid = formatDuration(total / 2)
    place(mid, Math.round((layout.bar + 2) / 2 - mid.length / 2))
  }
  place(end, axis.length - end.length)
  return paint(colors, '2', left + axis.join(''))
}

function formatRow(row: Row, layout: Layout, colors: boolean, palette: Map<string, string>): string {
  if (row.detail) {
    const indent = ' '.repeat(layout.service + 2)
    const text = truncate(row.guides + row.label, layout.total - indent.length)
    const guides = text.slice(0, row.guides.length)
    const detail = text.slice(guides.length)
    return indent + paint(colors, '2', guides) + paint(colors, detail.startsWith('!') ? '33' : '31', detail)
  }
  const color = palette.get(row.service) ?? '39'
  const service = paint(colors, color, padEnd(truncate(row.service, layout.service), layout.service))

  // The name column: guides, the label truncated with an ellipsis, then the
  // tail (counts, parent note), which says more than the end of a long name.
  let guides = row.guides
  let tail = row.tail
  const want = Math.min(textWidth(row.label), MIN_LABEL)
  const roomFor = (): number => layout.name - textWidth(guides) - 1 - (tail === '' ? 0 : 1 + textWidth(tail))
  if (roomFor() < want && textWidth(guides) > GUIDE * 2) {
    // Deep nesting: keep the nearest guides, elide the outer ones.
    const keep = Math.max(GUIDE, textWidth(guides) - (want - roomFor()))
    guides = '…' + [...guides].slice(-keep + 1).join('')
  }
  if (roomFor() < want && tail !== '') {
    const fit = layout.name - textWidth(guides) - 1 - want - 1
    tail = fit >= 8 ? truncate(tail, fit) : ''
  }
  const label = truncate(row.label, Math.max(1, roomFor()))
  let nameText = truncate(guides + ' ' + label + (tail === '' ? '' : ' ' + tail), layout.name)
  const pad = ' '.repeat(Math.max(0, layout.name - textWidth(nameText)))
  if (colors) {
    const g = nameText.slice(0, guides.length + 1)
    const rest = nameText.slice(g.length)
    const l = rest.slice(0, Math.min(rest.length, label.length))
    const t = rest.slice(l.length)
    const labelCode = row.error ? '31' : row.group ? '2' : row.bottleneck ? '1' : '0'
    nameText = paint(true, '2', g) + paint(true, labelCode, l) + paint(true, '2', t)
  }
  let line = service + '  ' + nameText + pad
  if (layout.mark > 0) {
    const markCode = row.mark === '✗' ? '31' : '33'
    line += ' ' + (row.mark === '' ? ' '.repeat(layout.mark) : paint(colors, markCode, padEnd(row.mark, layout.mark)))
  }
  if (layout.status > 0) line += ' ' + (row.status === '' ? ' '.repeat(layout.status) : paint(colors, statusColor(row.status), padStart(row.status, layout.status)))
  line += ' ' + paint(colors, row.bottleneck ? '1' : '0', padStart(row.duration, DURATION_WIDTH))
  return line + ' ' + bar(row, layout.bar, colors, color)
}

function bar(row: Row, width: number, colors: boolean, color: string): string {
  const cells = new Array<boolean>(width).fill(false)
  for (const [a, b] of row.spans) {
    const [from, to] = barCells(a, b, width)
    for (let i = from; i < to; i++) cells[i] = true
  }
  const fill = row.group ? '▒' : '█'
  let out = ''
  let i = 0
  while (i < width) {
    const on = cells[i]!
    let j = i
    while (j < width && cells[j] === on) j++
    const run = (on ? fill : ' ').repeat(j - i)
    out += on ? paint(colors, row.error ? '31' : color, run) : run
    i = j
  }
  const frame = paint(colors, '2', '│')
  return frame + out + frame
}

/**
 * The cells [from, to) a span covers on an axis of `width` cells, given its
 * start and end as fractions of the trace: both edges rounded to the nearest
 * cell, and at least one cell so that every span is visible.
 */
export function barCells(start: number, end: number, width: number): [number, number] {
  let from = Math.round(start * width)
  let to = Math.round(end * width)
  if (from > width - 1) from = width - 1
  if (from < 0) from = 0
  if (to > width) to = width
  if (to <= from) to = from + 1
  return [from, to]
}

function title(spans: readonly ReadableSpan[], tops: readonly Node[], t0: number, total: number, continued: boolean): string {
  const traceId = spans[0]!.traceId
  const started = `started ${new Date(Math.round(toEpochMillis(t0))).toISOString()}`
  if (continued) {
    return `… trace ${traceId} continued: ${plural(spans.length, 'late span')} · ${formatDuration(total)} · ${started}`
  }
  // The trace's own root when it is here, else the earliest subtree root.
  const root = tops.find((n) => n.span.parentSpanId === undefined) ?? tops[0]!
  return `trace ${traceId} · ${root.service} ${root.name} · ${formatDuration(total)} · ${plural(spans.length, 'span')} · ${started}`
}

function bottleneckLine(n: Node, total: number, width: number, colors: boolean): string {
  const share = total > 0 ? n.self / total : 1
  const percent = share >= 0.01 || share === 0 ? `${Math.round(share * 100)}%` : '<1%'
  const text = `${n.service} ${n.name} ${formatDuration(n.self)} self time, ${percent} of the trace`
  return paint(colors, '33;1', 'bottleneck:') + ' ' + truncate(text, width - 12)
}

function servicePalette(rows: readonly Row[]): Map<string, string> {
  // Distinct colours per service, in order of appearance; red is kept for errors.
  const codes = ['36', '35', '34', '33', '32', '96', '95', '94', '93', '92']
  const palette = new Map<string, string>()
  for (const row of rows) {
    if (row.detail || palette.has(row.service)) continue
    palette.set(row.service, codes[palette.size % codes.length]!)
  }
  return palette
}

function statusColor(status: string): string {
  const code = Number(status)
  return code >= 500 ? '31' : code >= 400 ? '33' : '2'
}

function httpStatus(span: ReadableSpan): string {
  const value = span.attributes?.[ATTR_STATUS] ?? span.attributes?.[ATTR_STATUS_OLD]
  return typeof value === 'number' || typeof value === 'string' ? sanitize(String(value)) : ''
}

/**
 * What went wrong in a span, for the line below it: the status message and
 * the `exception` events (type: message), without repeating a message that
 * both carry. Exceptions on a span that did not fail (caught and handled)
 * are shown with "!" rather than "✗".
 */
function problemOf(span: ReadableSpan): Problem | undefined {
  const failed = span.statusCode === SpanStatusCode.ERROR
  const exceptions = span.events?.filter((e) => e.name === 'exception') ?? []
  if (!failed && exceptions.length === 0) return undefined
  const parts: string[] = []
  const status = span.statusMessage === undefined ? undefined : firstLine(span.statusMessage)
  const described = exceptions.map((e) => describeException(e.attributes?.['exception.type'], e.attributes?.['exception.message']))
  if (failed && status !== undefined && status !== '' && !described.some((d) => d === status || d.endsWith(`: ${status}`))) {
    parts.push(status)
  }
  for (const d of described.slice(0, 2)) if (!parts.includes(d)) parts.push(d)
  if (described.length > 2) parts.push(`+${described.length - 2} more exceptions`)
  return { mark: failed ? '✗' : '!', text: parts.length > 0 ? parts.join(' · ') : undefined }
}

function describeException(type: AttributeValue | undefined, message: AttributeValue | undefined): string {
  const t = type === undefined ? '' : firstLine(String(type))
  const m = message === undefined ? '' : firstLine(String(message))
  return t !== '' && m !== '' ? `${t}: ${m}` : t !== '' ? t : m !== '' ? m : 'exception'
}

function firstLine(text: string): string {
  const nl = text.search(/[\r\n]/)
  return sanitize(nl === -1 ? text : text.slice(0, nl) + ' …').trim()
}

/**
 * Durations with three significant digits, in ms below a second:
 * 0.42 ms, 12.3 ms, 512 ms, 1.25 s, 61.0 s, 450 s, then minutes.
 */
export function formatDuration(ms: number): string {
  if (!(ms > 0)) return '0 ms'
  if (ms < 0.005) return '<0.01 ms'
  if (ms < 9.995) return `${ms.toFixed(2)} ms`
  if (ms < 99.95) return `${ms.toFixed(1)} ms`
  if (ms < 999.5) return `${ms.toFixed(0)} ms`
  const s = ms / 1000
  if (s < 9.995) return `${s.toFixed(2)} s`
  if (s < 99.95) return `${s.toFixed(1)} s`
  if (s < 599.5) return `${s.toFixed(0)} s`
  const min = s / 60
  return min < 99.95 ? `${min.toFixed(1)} min` : `${min.toFixed(0)} min`
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`
}

function paint(colors: boolean, code: string, text: string): string {
  return colors && text !== '' && code !== '0' ? `\x1b[${code}m${text}\x1b[0m` : text
}

// Control characters would break the one-line-per-span layout, and ESC would
// let a span name (often from a request URL) drive the terminal. Bidi
// overrides could reorder what is shown (CVE-2021-42574, "Trojan Source").
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g

function sanitize(text: string): string {
  return text.replace(UNSAFE, unsafeReplacement)
}

function unsafeReplacement(ch: string): string {
  return ch === '\t' || ch === '\n' || ch === '\r' ? ' ' : '\ufffd'
}

/** Terminal columns of one code point: 0 for combining marks, 2 for East Asian wide and emoji. */
function charWidth(cp: number): number {
  if ((cp >= 0x300 && cp <= 0x36f) || cp === 0x200d || (cp >= 0xfe00 && cp <= 0xfe0f)) return 0
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2
  }
  return 1
}

function textWidth(text: string): number {
  let w = 0
  for (const ch of text) w += charWidth(ch.codePointAt(0)!)
  return w
}

/** At most `width` columns, ending in "…" when cut. */
function truncate(text: string, width: number): string {
  if (textWidth(text) <= width) return text
  if (width <= 0) return ''
  let out = ''
  let w = 0
  for (const ch of text) {
    const cw = charWidth(ch.codePointAt(0)!)
    if (w + cw > width - 1) break
    out += ch
    w += cw
  }
  return out + '…'
}

function padEnd(text: string, width: number): string {
  return text + ' '.repeat(Math.max(0, width - textWidth(text)))
}

function padStart(text: string, width: number): string {
  return ' '.repeat(Math.max(0, width - textWidth(text))) + text
}
