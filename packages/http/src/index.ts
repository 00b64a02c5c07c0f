// The public API of @spanline/http: this file only re-exports.
export { instrument, uninstrument, type HttpInstrumentationOptions } from './instrument.ts'
export { withUrlTemplate, type ClientIgnoreRule } from '@spanline/core'
// Not API (undocumented, may change in any release): lets this package's
// child-process tests (test/modules.test.ts) pick the node:http mechanism of
// the built package, a single bundle whose node-http module cannot be
// imported on its own.
export { forceNodeHttpMode as _forceNodeHttpMode, nodeHttpMode as _nodeHttpMode } from './node-http.ts'
