// inventory: plain node:http with core's traceRequests; orders calls it with node:http.
import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { setServerRoute, traceRequests } from '@spanline/core'
import { listen, readJson, sendJson, serviceTracer } from './lib.js'

export function startInventory() {
  const tracer = serviceTracer('inventory')
  const stock = new Map([['espresso-beans', 100], ['pour-over-kit', 10]])
  return listen(createServer(traceRequests(async (req, res) => {
    setServerRoute(req, '/reservations')
    const { sku, quantity } = await readJson(req)
    const left = await tracer.trace('db.query UPDATE stock', async (span) => {
      span.setAttributes({ 'db.system.name': 'postgresql', 'product.sku': sku })
      await sleep(20)
      stock.set(sku, (stock.get(sku) ?? 0) - quantity)
      return stock.get(sku)
    })
    sendJson(res, left >= 0 ? 201 : 409, { sku, left })
  }, { tracer })))
}
