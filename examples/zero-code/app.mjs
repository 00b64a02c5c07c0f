// An ordinary Express app with no tracing code, traced by starting it with
//   node --import @spanline/auto app.mjs
// /api/users/:id calls a "profile service" over HTTP with fetch (here a
// route of the same app, so the example needs one process).
// With PORT set it serves until stopped; without, it sends itself a few
// requests and exits, for the README's output.
import express from 'express'

const app = express()

app.get('/api/users/:id', async (req, res) => {
  const profile = await fetch(`http://127.0.0.1:${server.address().port}/profiles/${req.params.id}`)
  res.json({ id: req.params.id, ...(await profile.json()) })
})
app.get('/profiles/:id', async (req, res) => {
  await new Promise((resolve) => setTimeout(resolve, 15)) // a slow lookup
  res.json({ name: 'Ada' })
})
app.get('/api/checkout', () => {
  throw new Error('card declined')
})
app.use((err, req, res, next) => res.status(500).json({ error: err.message }))

const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', async () => {
  if (process.env.PORT) return console.log(`listening on http://127.0.0.1:${process.env.PORT}`)
  for (const path of ['/api/users/42', '/api/checkout']) {
    const res = await fetch(`http://127.0.0.1:${server.address().port}${path}`)
    console.log(`GET ${path} -> ${res.status} ${await res.text()}`)
  }
  server.close()
})
