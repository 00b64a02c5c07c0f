import fc from 'fast-check'
import { ERR_INVALID_ARGUMENT, TracingError } from '../errors.ts'
import { compileIgnore, type IgnoreRule } from './ignore.ts'

const req = {}

function matcher(rules: IgnoreRule | readonly IgnoreRule[]): (path: string) => boolean {
  const compiled = compileIgnore(rules)
  if (compiled === undefined) throw new Error('expected a matcher')
  return (path) => compiled(path, req)
}

function timeMs(fn: () => void): number {
  let best = Infinity
  for (let n = 0; n < 3; n++) {
    const start = performance.now()
    fn()
    best = Math.min(best, performance.now() - start)
  }
  return best
}

/** A short test title for a possibly huge input. */
function label(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value)
  return text.length > 40 ? `${text.slice(0, 24)}… (${text.length} chars)` : text
}

/**
 * The slow reference: the glob as an anchored regex ("*" → [^/]*, a "**"
 * segment → any number of "/segment"), both sides without one trailing "/".
 * Only ever run on the small generated inputs of the property below.
 */
function referenceGlob(pattern: string, path: string): boolean {
  const strip = (p: string): string => (p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p)
  if (!path.startsWith('/')) return false
  let source = '^'
  for (const segment of strip(pattern).slice(1).split('/')) {
    if (segment === '**') source += '(?:/[^/]*)*'
    else source += '/' + segment.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')
  }
  return new RegExp(source + '$').test(strip(path))
}

describe('compileIgnore', () => {
  it('returns undefined when nothing is ignored', () => {
    expect(compileIgnore(undefined)).toBeUndefined()
    expect(compileIgnore([])).toBeUndefined()
    expect(compileIgnore(null as unknown as undefined)).toBeUndefined()
  })

  it.each([
    ['/health', '/health', true],
    ['/health', '/health/', true],
    ['/health/', '/health', true],
    ['/health', '/healthz', false],
    ['/health', '/Health', false],
    ['/health', '/health/live', false],
    ['/health', '//health', false],
    ['/', '/', true],
    ['/', '//', true],
    ['/', '/a', false],
    ['/static/**', '/static', true],
    ['/static/**', '/static/', true],
    ['/static/**', '/static/app.css', true],
    ['/static/**', '/static/css/deep/app.css', true],
    ['/static/**', '/staticx/app.css', false],
    ['/static/**', '/api/static/app.css', false],
    ['/api/*/ping', '/api/v1/ping', true],
    ['/api/*/ping', '/api/v1/ping/', true],
    ['/api/*/ping', '/api//ping', true],
    ['/api/*/ping', '/api/v1/v2/ping', false],
    ['/api/*/ping', '/api/ping', false],
    ['/api/*', '/api/x', true],
    ['/api/*', '/api', false],
    ['/api/*', '/api/x/y', false],
    ['/**', '/', true],
    ['/**', '/any/thing/at/all', true],
    ['/**/health', '/health', true],
    ['/**/health', '/a/b/health', true],
    ['/**/health', '/a/b/healthz', false],
    ['/a/**/b/**/c', '/a/b/c', true],
    ['/a/**/b/**/c', '/a/x/b/y/z/c', true],
    ['/a/**/b/**/c', '/a/x/c/y/b', false],
    ['/a/**/**/b', '/a/b', true],
    ['/*.css', '/app.css', true],
    ['/*.css', '/css', false],
    ['/*.css', '/dir/app.css', false],
    ['/img/*-*.png', '/img/a-b.png', true],
    ['/img/*-*.png', '/img/ab.png', false],
    ['/a**b', '/ab', true],
    ['/a**b', '/a/b', false],
    ['/users/*/posts/*', '/users/1/posts/2', true],
    ['/v?/x', '/v?/x', true],
    ['/v?/x', '/v1/x', false],
    ['/health', '*', false],
    ['/**', 'http://example.com/x', false],
    ['/**', '', false],
  ])('%j ~ %j → %j', (rule, path, expected) => {
    expect(matcher(rule)(path)).toBe(expected)
  })

  it('tests RegExps against the path, statelessly even with g/y flags', () => {
    const ignored = matcher([/^\/internal\//g, /metrics$/y])
    for (let n = 0; n < 4; n++) expect(ignored('/internal/debug')).toBe(true)
    expect(ignored('/public')).toBe(false)
    expect(ignored('metrics')).toBe(true)
    expect(ignored('*')).toBe(false)
  })

  it('calls functions with the path and request; only true ignores; a throw does not', () => {
    const seen: unknown[] = []
    const ignored = compileIgnore([
      (path, r) => {
        seen.push(path, r)
        return path === '/fn'
      },
      () => {
        throw new Error('boom')
      },
      () => 'yes' as unknown as boolean,
      (path) => path === '/late',
    ])!
    expect(ignored('/fn', req)).toBe(true)
    expect(seen).toEqual(['/fn', req])
    expect(ignored('/other', req)).toBe(false) // the throw and the truthy string are "not ignored"
    expect(ignored('/late', req)).toBe(true) // rules after a throwing one still run
  })

  it('combines every kind of rule', () => {
    const ignored = matcher(['/health', '/static/**', /^\/_next\//, (path) => path.endsWith('.ico')])
    expect(['/health', '/static/a/b.js', '/_next/data', '/favicon.ico', '/api'].map(ignored)).toEqual([true, true, true, true, false])
  })

  it.each([
    [42, 'ignore must be a string, a RegExp or a function, got 42'],
    [{}, 'ignore must be a string, a RegExp or a function, got {}'],
    [['/ok', null], 'ignore[1] must be a string, a RegExp or a function, got null'],
    [['/ok', 7n], 'ignore[1]'],
    [[Symbol('s')], 'Symbol(s)'],
    ['health', 'ignore must be a path starting with "/", got \'health\''],
    [['', '/x'], 'ignore[0] must be a path starting with "/", got \'\''],
    [[['/nested']], "ignore[0] must be a string, a RegExp or a function, got [ '/nested' ]"],
  ] as Array<[unknown, string]>)('rejects %p with a TracingError naming it', (rules, message) => {
    let error: unknown
    try {
      compileIgnore(rules as IgnoreRule)
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(TracingError)
    expect((error as TracingError).code).toBe(ERR_INVALID_ARGUMENT)
    expect((error as TracingError).message).toContain(message)
  })

  it('tolerates a non-string path', () => {
    const ignored = compileIgnore(['/x', () => true])!
    expect(ignored(undefined as unknown as string, req)).toBe(false)
  })
})

describe('compileIgnore: hostile paths', () => {
  const KiB64 = 64 * 1024
  const rules: IgnoreRule[] = ['/health', '/static/**', '/**/a/**/b/**/c/**/d', '/*a*a*a*a*a*b/**', '/**/*x*y*z*']
  const ignored = compileIgnore(rules)!
  it.each([
    '/' + 'a'.repeat(KiB64),
    '/a'.repeat(KiB64 / 2),
    '/'.repeat(KiB64),
    '/a/b/c'.repeat(KiB64 / 6) + '/x',
    '/' + 'a'.repeat(KiB64) + 'c',
    ('/' + 'xy'.repeat(50)).repeat(KiB64 / 101),
    '/\u{1F600}\uD800\u0301'.repeat(KiB64 / 4),
  ].map((path) => [label(path), path] as const))('%s is matched in linear time', (_title, path) => {
    expect(timeMs(() => ignored(path, req))).toBeLessThan(50)
  })
})

describe('compileIgnore: properties (fast-check)', () => {
  const segment = fc.string({ unit: fc.constantFrom('a', 'b', '*', '.', '-'), maxLength: 4 })
  const patternSegment = fc.oneof(segment, fc.constant('**'), fc.constant('*'))
  const pattern = fc.array(patternSegment, { minLength: 1, maxLength: 5 })
    .chain((segments) => fc.boolean().map((slash) => '/' + segments.join('/') + (slash ? '/' : '')))
  const pathSegment = fc.string({ unit: fc.constantFrom('a', 'b', '.', '-', '*'), maxLength: 4 })
  const path = fc.array(pathSegment, { maxLength: 7 }).map((segments) => '/' + segments.join('/'))

  it('glob results agree with a slow regex reference', () => {
    fc.assert(fc.property(pattern, path, (p, s) => {
      expect(matcher(p)(s)).toBe(referenceGlob(p, s))
    }), { numRuns: 3000 })
  })

  it('never throws, whatever the path and whatever a function rule does', () => {
    const ignored = compileIgnore(['/a/**', '/*/b*', /x+y/, (p) => {
      if (p.length % 3 === 0) throw new Error('odd')
      return p.length === 5
    }])!
    fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary' }), path), (s) => {
      expect(typeof ignored(s, req)).toBe('boolean')
    }), { numRuns: 1000 })
  })
})
