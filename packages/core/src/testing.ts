// @spanline/core/testing: helpers for users' own tests.
export { InMemorySpanExporter } from './export/memory.ts'
