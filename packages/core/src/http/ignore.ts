/**
 * The adapters' `ignore` option: requests (health checks, static files)
 * that get no span. Rules are compiled once, when the adapter is created;
 * the matcher then runs on every request against an attacker-chosen path, so
 * globs are matched segment by segment with the two-pointer wildcard
 * algorithm (no regex is built from them): the cost is
 * O(path length x pattern length) in the worst case, with no exponential
 * backtracking whatever the path.
 */
import { debug } from '../diag.ts'
import { ERR_INVALID_ARGUMENT, TracingError } from '../errors.ts'
// Builtins by process.getBuiltinModule(), not ES imports: start-up time (see @spanline/core's src/diag.ts).
const { inspect, types } = process.getBuiltinModule('node:util')

/**
 * One `ignore` rule:
 * - a string: an exact path (`/health`), or a glob where `*` matches any run
 *   of characters within one path segment and a whole `**` segment matches
 *   any number of segments, none included: `/static/**` matches
 *   `/static` and `/static/css/app.css`, and `/api/*` followed by `/ping`
 *   matches `/api/v1/ping`. A trailing slash on either side does not matter.
 *   Matching is case-sensitive and on the path as received (not decoded).
 * - a RegExp, tested against the path (without the query).
 * - a function `(path, req) => boolean`; only `true` ignores the request, and
 *   one that throws counts as "not ignored".
 */
export type IgnoreRule = string | RegExp | ((path: string, req: unknown) => boolean)

/** The compiled rules: whether the request with this path (no query) gets no span. */
export type IgnoreMatcher = (path: string, req: unknown) => boolean

const SLASH = 0x2f
const STAR = 0x2a

// Kinds of compiled glob segments.
const LITERAL = 0
const WILDCARD = 1 // contains "*"
const ANY_SEGMENT = 2 // exactly "*"
const GLOBSTAR = 3 // exactly "**"

interface Glob {
  readonly kinds: Uint8Array
  readonly texts: readonly string[]
}

/**
 * Compile the `ignore` option. Returns undefined when nothing is ignored, so
 * the request path can skip the call altogether.
 *
 * @throws TracingError (ERR_INVALID_ARGUMENT) naming the first rule that is
 * not a string starting with "/", a RegExp or a function.
 * @example
 * const ignored = compileIgnore(['/health', '/static/**', /^\/internal\//])
 * ignored?.('/static/css/app.css', req) // true
 */
export function compileIgnore(rules: IgnoreRule | readonly IgnoreRule[] | undefined): IgnoreMatcher | undefined {
  // null is accepted as "no rules", as JavaScript callers often write it.
  if (rules === undefined || (rules as unknown) === null) return undefined
  const list: readonly unknown[] = Array.isArray(rules) ? rules : [rules]
  const exact = new Set<string>()
  const globs: Glob[] = []
  const regexps: RegExp[] = []
  const functions: Array<(path: string, req: unknown) => unknown> = []
  for (let i = 0; i < list.length; i++) {
    const rule = list[i]
    const name = list === rules ? `ignore[${i}]` : 'ignore'
    if (typeof rule === 'string') {
      if (rule.charCodeAt(0) !== SLASH) {
        throw new TracingError(ERR_INVALID_ARGUMENT, `${name} must be a path starting with "/", got ${inspect(rule)}`)
      }
      const path = withoutTrailingSlash(rule)
      if (path.includes('*')) globs.push(compileGlob(path))
      else exact.add(path)
    } else if (types.isRegExp(rule)) {
      regexps.push(statelessRegExp(rule))
    } else if (typeof rule === 'function') {
      functions.push(rule as (path: string, req: unknown) => unknown)
    } else {
      throw new TracingError(ERR_INVALID_ARGUMENT, `${name} must be a string, a RegExp or a function, got ${inspect(rule, { depth: 1 })}`)
    }
  }
  if (exact.size === 0 && globs.length === 0 && regexps.length === 0 && functions.length === 0) return undefined

  return function isIgnored(path: string, req: unknown): boolean {
    if (typeof path !== 'string') return false
    // Exact paths and globs are absolute; other forms ("*", absolute-form
    // request targets) can only match RegExps and functions.
    if (path.charCodeAt(0) === SLASH) {
      const end = path.length > 1 && path.charCodeAt(path.length - 1) === SLASH ? path.length - 1 : path.length
      if (exact.size > 0 && exact.has(end === path.length ? path : path.slice(0, end))) return true
      for (let i = 0; i < globs.length; i++) {
        if (matchGlob(globs[i]!, path, end)) return true
      }
    }
    for (let i = 0; i < regexps.length; i++) {
      try {
        if (regexps[i]!.test(path)) return true
      } catch (err) {
        debug('ignore RegExp threw; request not ignored: %o', err)
      }
    }
    for (let i = 0; i < functions.length; i++) {
      try {
        if (functions[i]!(path, req) === true) return true
      } catch (err) {
        // User code must not break the request; the rule just does not match.
        debug('ignore function threw; request not ignored: %o', err)
      }
    }
    return false
  }
}

/** `path` without one trailing "/", except for "/" itself. */
function withoutTrailingSlash(path: string): string {
  return path.length > 1 && path.charCodeAt(path.length - 1) === SLASH ? path.slice(0, -1) : path
}

/**
 * A RegExp with the `g` and `y` flags would keep `lastIndex` between calls
 * and alternate between match and no match on the same path; a copy without
 * them is stateless.
 */
function statelessRegExp(rule: RegExp): RegExp {
  if (!rule.global && !rule.sticky) return rule
  return new RegExp(rule.source, rule.flags.replace('g', '').replace('y', ''))
}

/** Compile a glob that starts with "/" and has no trailing "/" (unless it is "/"). */
function compileGlob(pattern: string): Glob {
  const kinds: number[] = []
  const texts: string[] = []
  for (const segment of pattern.slice(1).split('/')) {
    if (segment === '**') {
      // "**/**" matches what "**" matches; collapsing keeps the backtracking short.
      if (kinds[kinds.length - 1] === GLOBSTAR) continue
      kinds.push(GLOBSTAR)
    } else if (segment === '*') {
      kinds.push(ANY_SEGMENT)
    } else {
      kinds.push(segment.includes('*') ? WILDCARD : LITERAL)
    }
    texts.push(segment)
  }
  return { kinds: Uint8Array.from(kinds), texts }
}

/**
 * Whether path[0, end) (starting with "/", `end` excluding one trailing "/")
 * matches `glob`. Segments play the part of characters and GLOBSTAR that of
 * "*" in the classic two-pointer wildcard match: on a mismatch, only the
 * most recent GLOBSTAR is retried, one segment further. That is enough for
 * a correct answer and bounds the work by (pattern segments x path length).
 */
function matchGlob(glob: Glob, path: string, end: number): boolean {
  const { kinds, texts } = glob
  const count = kinds.length
  let p = 0 // next pattern segment
  let pos = 1 // start of the next path segment; end + 1 once all are consumed
  let starP = -1 // the last GLOBSTAR seen, and where its match currently ends
  let starPos = 0
  while (pos <= end) {
    let segmentEnd = path.indexOf('/', pos)
    if (segmentEnd === -1 || segmentEnd > end) segmentEnd = end
    if (p < count) {
      const kind = kinds[p]!
      if (kind === GLOBSTAR) {
        starP = p++
        starPos = pos
        continue
      }
      if (segmentMatches(kind, texts[p]!, path, pos, segmentEnd)) {
        p++
        pos = segmentEnd + 1
        continue
      }
    }
    if (starP === -1) return false
    // Let the GLOBSTAR take one more segment and retry what follows it.
    p = starP + 1
    let next = path.indexOf('/', starPos)
    if (next === -1 || next > end) next = end
    starPos = next + 1
    pos = starPos
  }
  while (p < count && kinds[p] === GLOBSTAR) p++
  return p === count
}

function segmentMatches(kind: number, text: string, path: string, start: number, end: number): boolean {
  if (kind === ANY_SEGMENT) return true
  if (kind === LITERAL) return end - start === text.length && path.startsWith(text, start)
  return wildcardMatches(text, path, start, end)
}

/** Whether path[start, end) matches `pattern`, where "*" is any run of characters (two-pointer, no recursion). */
function wildcardMatches(pattern: string, path: string, start: number, end: number): boolean {
  const length = pattern.length
  let p = 0
  let i = start
  let starP = -1
  let starI = 0
  while (i < end) {
    const c = p < length ? pattern.charCodeAt(p) : -1
    if (c === STAR) {
      starP = p++
      starI = i
    } else if (c !== -1 && c === path.charCodeAt(i)) {
      p++
      i++
    } else if (starP !== -1) {
      p = starP + 1
      i = ++starI
    } else {
      return false
    }
  }
  while (p < length && pattern.charCodeAt(p) === STAR) p++
  return p === length
}
