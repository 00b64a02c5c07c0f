// The two Koa majors are installed side by side under npm aliases (koa2 =
// koa@2, koa3 = koa@3); neither ships types, so both take @types/koa's.
declare module 'koa2' {
  import Koa = require('koa')
  export = Koa
}
declare module 'koa3' {
  import Koa = require('koa')
  export = Koa
}
