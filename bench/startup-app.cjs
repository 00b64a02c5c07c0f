// The CommonJS twin of startup-app.mjs, for the preloads documented for
// CommonJS apps (`node --require ... app.js`, OpenTelemetry's): the same small
// Express app; prints "listening" once it accepts connections, then exits.
const express = require('express')

const app = express()
app.get('/users/:id', (req, res) => res.json({ id: req.params.id }))
app.get('/health', (req, res) => res.send('ok'))
const server = app.listen(0, '127.0.0.1', () => {
  console.log('listening')
  server.close()
})
