// @spanline/auto: importing this module is what instruments the process
// (`node --import @spanline/auto app.js`); see start.ts. This file only re-exports.
export { shutdown, tracer } from './start.ts'
