import { runAdapterSuite } from '../../adapter-suite/src/index.ts'
import { createKoaApp } from './app.ts'

runAdapterSuite('koa 2', createKoaApp(2))
runAdapterSuite('koa 3', createKoaApp(3))
