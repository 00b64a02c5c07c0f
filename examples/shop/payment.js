// payment: plain node:http with core's traceRequests. Deliberately slow (the
// card network takes ~400 ms), and it declines the test card 4000 0000 0000 0002.
import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { setServerRoute, traceRequests } from '@spanline/core'
import { listen, readJson, sendJson, serviceTracer } from './lib.js'

const DECLINED_CARD = '4000000000000002'

class CardDeclinedError extends Error {}

export function startPayment() {
  const tracer = serviceTracer('payment')
  return listen(createServer(traceRequests(async (req, res) => {
    setServerRoute(req, '/charges')   // names the SERVER span "POST /charges"
    const { orderId, card, amount } = await readJson(req)
    try {
      const charge = await tracer.trace('charge card', async (span) => {
        span.setAttributes({ 'order.id': orderId, 'payment.amount': amount, 'payment.card.last4': card.slice(-4) })
        await sleep(400)
        // A throw inside tracer.trace() marks the span ERROR with an exception event.
        if (card === DECLINED_CARD) throw new CardDeclinedError('card declined: insufficient funds')
        return { chargeId: `ch_${orderId}` }
      })
      sendJson(res, 201, charge)
    } catch (err) {
      sendJson(res, 402, { error: err.message })
    }
  }, { tracer })))
}
