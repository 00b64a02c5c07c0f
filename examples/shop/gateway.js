// gateway: Express 5 with @spanline/express. The public API: checks the
// session with auth, then has orders place the order.
import { createServer } from 'node:http'
import express from 'express'
import { getActiveSpan } from '@spanline/core'
import { tracing } from '@spanline/express'
import { listen, serviceTracer } from './lib.js'

export function startGateway({ auth, orders }) {
  const app = express()
  app.use(tracing({ tracer: serviceTracer('gateway') }))   // first, before the routes
  app.use(express.json())

  app.post('/checkout', async (req, res) => {
    const session = await fetch(`${auth}/session`, { headers: { authorization: req.get('authorization') ?? '' } })
    if (!session.ok) return res.status(401).json({ error: 'not signed in' })
    const { user } = await session.json()
    getActiveSpan()?.setAttribute('user.id', user)

    const order = await fetch(`${orders}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user, ...req.body }),
    })
    res.status(order.status).json(await order.json())
  })
  return listen(createServer(app))
}
