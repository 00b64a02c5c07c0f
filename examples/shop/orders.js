// orders: Fastify with @spanline/fastify. Reserves stock (node:http), charges
// the card (fetch), and tells notification without waiting for it.
import { once } from 'node:events'
import http from 'node:http'
import { text } from 'node:stream/consumers'
import Fastify from 'fastify'
import { getActiveSpan } from '@spanline/core'
import { tracing } from '@spanline/fastify'
import { serviceTracer } from './lib.js'

const PRICES = { 'espresso-beans': 1450, 'pour-over-kit': 3900 }   // cents

export async function startOrders({ inventory, payment, notification }) {
  const background = new Set()   // notifications in flight, for idle()
  let count = 0
  const app = Fastify()
  await app.register(tracing, { tracer: serviceTracer('orders') })   // before the routes

  app.post('/orders', async (request, reply) => {
    const { user, sku, quantity, card } = request.body
    const orderId = `ord_${++count}`
    getActiveSpan()?.setAttribute('order.id', orderId)

    const stock = await postWithNodeHttp(`${inventory}/reservations`, { sku, quantity })
    if (stock.status !== 201) return reply.code(409).send({ orderId, status: 'out of stock' })

    const charge = await fetch(`${payment}/charges`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ orderId, card, amount: PRICES[sku] * quantity }),
    })
    const status = charge.ok ? 'confirmed' : 'payment declined'

    // Fire-and-forget: the customer is answered without waiting for the email.
    const sent = fetch(`${notification}/emails`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user, orderId, status }),
    }).then((res) => res.arrayBuffer()).catch(() => {}).finally(() => background.delete(sent))
    background.add(sent)

    return reply.code(charge.ok ? 201 : 402).send({ orderId, status, ...(await charge.json()) })
  })

  await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    url: `http://127.0.0.1:${app.server.address().port}`,
    close: () => app.close(),
    idle: () => Promise.all(background),
  }
}

/** A POST with node:http rather than fetch: @spanline/http traces both. */
async function postWithNodeHttp(url, body) {
  const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/json' } })
  req.end(JSON.stringify(body))
  const [res] = await once(req, 'response')
  return { status: res.statusCode, body: JSON.parse(await text(res)) }
}
