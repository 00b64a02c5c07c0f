/** @jest-config-loader-options {"transpileOnly": true} */
import type { Config } from 'jest'

// Tests run on the TypeScript sources: @swc/jest strips the types and emits
// CommonJS for jest's module registry; workspace packages resolve to src/.
// Tests that start child processes (zero-code, require(esm)) use the built
// packages (dist/bundle/, what their "exports" name), which `npm test` builds
// first.
const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/packages', '<rootDir>/examples'],
  testMatch: ['**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  transform: {
    '^.+\\.(t|j)s$': ['@swc/jest', {
      jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
      module: { type: 'commonjs' },
      sourceMaps: 'inline',
    }],
  },
  moduleNameMapper: {
    '^@spanline/([a-z-]+)$': '<rootDir>/packages/$1/src/index.ts',
    '^@spanline/([a-z-]+)/([a-z-]+)$': '<rootDir>/packages/$1/src/$2.ts',
  },
  testTimeout: 20000,
  // Fails fast when dist/bundle/ is older than tsc's dist/ (tsc -b run
  // without scripts/bundle.mjs): the child-process tests load the bundles.
  globalSetup: '<rootDir>/scripts/jest-global-setup.mjs',
}

export default config
