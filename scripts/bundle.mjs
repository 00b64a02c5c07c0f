// Bundles each runtime package's tsc output into one ES module per entry
// point, in packages/<name>/dist/bundle/, where the packages' "exports" point.
//
// Why: Node loads an ES module graph one file at a time (resolve, read,
// compile, link each), a fraction of a millisecond per file whatever its size.
// `node --import @spanline/auto` loaded ~60 small files that way, most of the
// preload's start-up cost; one file per package halves it (bench/startup.mjs).
//
// Runs right after `tsc -b` in scripts/setup.mjs (behind npm start, test,
// build, typecheck and bench), on tsc's output: tsc still checks the code and
// writes the .d.ts files the "types" conditions name. jest refuses to run
// against bundles older than dist/ (scripts/jest-global-setup.mjs).
// Usage: node scripts/bundle.mjs
import { rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

// Entry points (dist/<entry>.js) per package.
const ENTRIES = {
  // Split: the code both entries use goes into one chunk, so that an app
  // loading both has one instance of each class and of the module state.
  core: ['index', 'testing'],
  http: ['index'],
  express: ['index'],
  koa: ['index'],
  fastify: ['index'],
  // index-sync loads ./start.js with createRequire (src/index-sync.ts), which
  // esbuild does not follow: start is a bundle of its own, and index imports
  // it by path too, so both entries run one and the same start module.
  // They share no code: not split, so nothing loads a chunk besides.
  auto: ['index', 'index-sync', 'start'],
}

// A relative import of ./start.js (auto's index) stays an import of the start bundle.
const startStaysExternal = {
  name: 'start-stays-external',
  setup(b) {
    b.onResolve({ filter: /^\.\/start\.js$/ }, () => ({ path: './start.js', external: true }))
  },
}

for (const [name, entries] of Object.entries(ENTRIES)) {
  const dist = join(root, 'packages', name, 'dist')
  const outdir = join(dist, 'bundle')
  // Chunk names carry a content hash: clear out the previous build's.
  rmSync(outdir, { recursive: true, force: true })
  await build({
    entryPoints: entries.map((e) => join(dist, `${e}.js`)),
    outdir,
    bundle: true,
    splitting: name === 'core',
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // Other packages (@spanline/*, frameworks) and node builtins are
    // imported at run time as before: only the package's own files merge.
    packages: 'external',
    plugins: name === 'auto' ? [startStaysExternal] : [],
    // tsc's .js.map files are composed in: stack traces under
    // --enable-source-maps name src/*.ts, which the packages ship.
    sourcemap: true,
    sourcesContent: false,
    // "sideEffects": false (for apps' bundlers) must not drop any of the
    // package's own modules here: every module tsc emitted runs as before.
    ignoreAnnotations: true,
    // Merging modules into one scope renames clashing identifiers, and a
    // class that names itself inside its body becomes `var Tracer = class
    // _Tracer`: without this, `Tracer.name` would read "_Tracer" (and
    // util.inspect print it). keepNames restores every function's and
    // class's .name, once each, where it is created.
    keepNames: true,
    logLevel: 'warning',
  })
}
