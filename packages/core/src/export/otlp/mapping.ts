/**
 * What the JSON and protobuf encoders share: how spans map onto OTLP's
 * nesting and fields (https://opentelemetry.io/docs/specs/otlp/).
 */
import type { TraceState } from '../../propagation/tracestate.ts'
import type { Resource } from '../../resource.ts'
import type { ReadableSpan } from '../../span.ts'
import type { InstrumentationScope, SpanContext } from '../../types.ts'

/** The spans of one instrumentation scope, in export order. */
export interface ScopeGroup {
  readonly scope: InstrumentationScope
  readonly spans: readonly ReadableSpan[]
}

/** The spans of one resource (one OTLP ResourceSpans), by scope. */
export interface ResourceGroup {
  readonly resource: Resource
  readonly scopes: readonly ScopeGroup[]
}

interface MutableScopeGroup {
  readonly scope: InstrumentationScope
  readonly spans: ReadableSpan[]
}

interface MutableResourceGroup {
  readonly resource: Resource
  readonly scopes: MutableScopeGroup[]
}

/**
 * Groups a batch as OTLP nests it: ResourceSpans by resource (object
 * identity: one per tracer pipeline), then ScopeSpans by scope (identity, or
 * equal name and version, since getTracer() makes a new scope object per
 * call). Span order is kept within each group; groups come in order of first
 * appearance.
 *
 * Almost every batch comes from one tracer and a handful of scopes, so groups
 * are found by a linear search that first tries the previous span's group.
 * A batch of a single resource and scope (the common case) reuses the input
 * array.
 */
export function groupSpans(spans: readonly ReadableSpan[]): readonly ResourceGroup[] {
  if (spans.length === 0) return []
  const first = spans[0]!
  let uniform = true
  for (let i = 1; i < spans.length; i++) {
    const span = spans[i]!
    if (span.resource !== first.resource || span.scope !== first.scope) {
      uniform = false
      break
    }
  }
  if (uniform) return [{ resource: first.resource, scopes: [{ scope: first.scope, spans }] }]

  const groups: MutableResourceGroup[] = []
  let lastResource: MutableResourceGroup | undefined
  let lastScope: MutableScopeGroup | undefined
  for (let i = 0; i < spans.length; i++) {
    const span = spans[i]!
    if (lastResource === undefined || lastResource.resource !== span.resource) {
      lastResource = findResource(groups, span.resource)
      lastScope = undefined
    }
    if (lastScope === undefined || lastScope.scope !== span.scope) lastScope = findScope(lastResource.scopes, span.scope)
    lastScope.spans.push(span)
  }
  return groups
}

function findResource(groups: MutableResourceGroup[], resource: Resource): MutableResourceGroup {
  for (const group of groups) if (group.resource === resource) return group
  const group: MutableResourceGroup = { resource, scopes: [] }
  groups.push(group)
  return group
}

function findScope(groups: MutableScopeGroup[], scope: InstrumentationScope): MutableScopeGroup {
  for (const group of groups) if (group.scope === scope) return group
  for (const group of groups) if (sameScope(group.scope, scope)) return group
  const group: MutableScopeGroup = { scope, spans: [] }
  groups.push(group)
  return group
}

/**
 * Whether two scopes share one ScopeSpans: the same object, or equal name and
 * version (getTracer() makes a new scope object per call). An absent version
 * and an empty one encode the same (proto3 default).
 */
export function sameScope(a: InstrumentationScope, b: InstrumentationScope): boolean {
  return a === b || (a.name === b.name && (a.version ?? '') === (b.version ?? ''))
}

/** trace.proto SpanFlags: the low byte is the W3C trace flags. */
const TRACE_FLAGS_MASK = 0xff
const CONTEXT_HAS_IS_REMOTE = 0x100
const CONTEXT_IS_REMOTE = 0x200

/**
 * Span.flags: the W3C trace flags plus whether the parent is remote. OTLP
 * asks exporters to always say whether they know (HAS_IS_REMOTE); a root
 * span has no remote parent, so it gets HAS_IS_REMOTE without IS_REMOTE.
 */
export function spanFlags(span: ReadableSpan): number {
  return (span.traceFlags & TRACE_FLAGS_MASK) | CONTEXT_HAS_IS_REMOTE | (span.parentIsRemote ? CONTEXT_IS_REMOTE : 0)
}

/** Link.flags: as spanFlags, from the linked context's own remoteness. */
export function linkFlags(context: SpanContext): number {
  return (context.traceFlags & TRACE_FLAGS_MASK) | CONTEXT_HAS_IS_REMOTE | (context.isRemote ? CONTEXT_IS_REMOTE : 0)
}

// The spans of one trace share one immutable TraceState object, while
// serialize() builds a new string on every call: remember the last one.
let lastTraceState: TraceState | undefined
let lastTraceStateString = ''

/** The trace_state string; '' when there is none (or nothing fits in 512 characters). */
export function traceStateString(traceState: TraceState | undefined): string {
  if (traceState === undefined) return ''
  if (traceState !== lastTraceState) {
    lastTraceStateString = traceState.serialize()
    lastTraceState = traceState
  }
  return lastTraceStateString
}

/**
 * Whether a number goes out as int_value rather than double_value: integers
 * that JavaScript holds exactly. -0 stays a double so that its sign
 * survives; larger integers were rounded already (1e21 is not 10^21), so
 * double is the honest type for them.
 */
export function isInt64(value: number): boolean {
  return Number.isSafeInteger(value) && (value !== 0 || 1 / value > 0)
}
