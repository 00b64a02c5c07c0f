// The `npm start` demo: a shop's checkout across six services, each a real
// HTTP server on 127.0.0.1 with a tracer of its own, all in this one process
// so the demo needs nothing installed. Three checkouts are sent; the second
// card is declined by payment. Each checkout prints as one waterfall.
//
//   gateway (Express) ─┬→ auth (Koa)
//                      └→ orders (Fastify) ─┬→ inventory (node:http request)
//                                           ├→ payment   (fetch; slow, declines one card)
//                                           └→ notification (fetch, fire-and-forget)
import { instrument } from '@spanline/http'
import { consoleExporter, shutdownTracers } from './lib.js'
import { startAuth } from './auth.js'
import { startGateway } from './gateway.js'
import { startInventory } from './inventory.js'
import { startNotification } from './notification.js'
import { startOrders } from './orders.js'
import { startPayment } from './payment.js'

// Every outgoing fetch and node:http request becomes a CLIENT span of the
// calling service and carries traceparent to the next one.
instrument()

const [payment, inventory, notification, auth] = await Promise.all([startPayment(), startInventory(), startNotification(), startAuth()])
const orders = await startOrders({ inventory: inventory.url, payment: payment.url, notification: notification.url })
const gateway = await startGateway({ auth: auth.url, orders: orders.url })

const checkouts = [
  { sku: 'espresso-beans', quantity: 2, card: '4242424242424242' },
  { sku: 'pour-over-kit', quantity: 1, card: '4000000000000002' },   // declined
  { sku: 'espresso-beans', quantity: 1, card: '5555555555554444' },
]
for (const [i, checkout] of checkouts.entries()) {
  const res = await fetch(`${gateway.url}/checkout`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer tok_ada' },
    body: JSON.stringify(checkout),
  })
  console.log(`\ncheckout ${i + 1}: POST /checkout -> ${res.status} ${await res.text()}`)
  await orders.idle()                  // the email it sends in the background, so its spans join the block
  await consoleExporter.forceFlush()   // print this checkout's trace
}

for (const service of [gateway, auth, orders, inventory, payment, notification]) await service.close()
await shutdownTracers()
