// The public API of @spanline/http: this file only re-exports.
export { instrument, uninstrument, type HttpInstrumentationOptions } from './instrument.ts'
export { withUrlTemplate, type ClientIgnoreRule } from '@spanline/core'
