// The app bench/startup.mjs starts: a small Express app that prints
// "listening" once it accepts connections, then exits.
import express from 'express'

const app = express()
app.get('/users/:id', (req, res) => res.json({ id: req.params.id }))
app.get('/health', (req, res) => res.send('ok'))
const server = app.listen(0, '127.0.0.1', () => {
  console.log('listening')
  server.close()
})
