import { runAdapterSuite } from '../../adapter-suite/src/index.ts'
import { createExpressApp } from './app.ts'

runAdapterSuite('express 4', createExpressApp(4))
runAdapterSuite('express 5', createExpressApp(5))
