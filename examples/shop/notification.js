// notification: plain node:http with core's traceRequests. orders calls it
// fire-and-forget, so its spans end after the checkout has been answered.
import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { setServerRoute, traceRequests } from '@spanline/core'
import { listen, readJson, sendJson, serviceTracer } from './lib.js'

export function startNotification() {
  const tracer = serviceTracer('notification')
  return listen(createServer(traceRequests(async (req, res) => {
    setServerRoute(req, '/emails')
    const { user, orderId, status } = await readJson(req)
    await tracer.trace('send email', async (span) => {
      span.setAttributes({ 'user.id': user, 'order.id': orderId, 'order.status': status })
      await sleep(30)
    })
    sendJson(res, 202, { queued: true })
  }, { tracer })))
}
