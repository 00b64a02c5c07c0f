// The two Express majors are installed side by side under npm aliases
// (express4 = express@4, express5 = express@5); neither ships types, so both
// take @types/express's (written for 5; the tests use only what 4 shares).
declare module 'express4' {
  import express = require('express')
  export = express
}
declare module 'express5' {
  import express = require('express')
  export = express
}
