import { EXPRESS_RANGE, FASTIFY_RANGE, inRange, KOA_RANGE } from './version.ts'

describe('inRange', () => {
  it.each([
    ['4.17.0', EXPRESS_RANGE, true],
    ['4.22.3', EXPRESS_RANGE, true],
    ['4.16.4', EXPRESS_RANGE, false],
    ['5.0.0', EXPRESS_RANGE, true],
    ['5.0.0-beta.3', EXPRESS_RANGE, false],
    ['5.3.0-rc.1', EXPRESS_RANGE, true],
    ['6.0.0', EXPRESS_RANGE, false],
    ['3.21.2', EXPRESS_RANGE, false],
    ['2.13.0', KOA_RANGE, true],
    ['2.12.9', KOA_RANGE, false],
    ['3.3.0', KOA_RANGE, true],
    ['4.10.0', FASTIFY_RANGE, true],
    ['4.9.9', FASTIFY_RANGE, false],
    ['5.12.8', FASTIFY_RANGE, true],
    ['v5.0.0', FASTIFY_RANGE, false],
    ['', FASTIFY_RANGE, false],
    [undefined, FASTIFY_RANGE, false],
    [5, FASTIFY_RANGE, false],
  ] as const)('%s in %o: %s', (version, range, expected) => {
    expect(inRange(version, range)).toBe(expected)
  })
})
