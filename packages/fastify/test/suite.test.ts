import { runAdapterSuite } from '../../adapter-suite/src/index.ts'
import { createFastifyApp } from './app.ts'

runAdapterSuite('fastify 4', createFastifyApp(4))
runAdapterSuite('fastify 5', createFastifyApp(5))
