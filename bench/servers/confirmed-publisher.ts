/**
 * The producer of the messages scenario, as its own process (pinned with the other
 * helpers, away from the relay under test) and kept warm for the whole run: on each IPC
 * request it publishes `count` persistent messages of `bytes` bytes to a durable queue
 * on a confirm channel, at most `window` unconfirmed at a time, and answers once the
 * last one is confirmed. This is raw confirmed publishing: the baseline, and the way
 * both relays' source queues are filled.
 *
 *   AMQP_URL=amqp://... node dist/bench/servers/confirmed-publisher.js   (started with an IPC channel)
 */
import { performance } from 'node:perf_hooks'
import { connect } from 'amqplib'

export interface PublishRequest {
  queue: string
  count: number
  bytes: number
  window: number
}

export type PublishReply = { ok: true; seconds: number } | { ok: false; error: string }

const url = process.env.AMQP_URL
if (!url || !process.send) {
  process.stderr.write('usage: AMQP_URL=amqp://... confirmed-publisher.js (with an IPC channel)\n')
  process.exit(2)
}

const connection = await connect(url, { timeout: 5_000 })
const channel = await connection.createConfirmChannel()
let failure: Error | undefined
for (const emitter of [connection, channel]) emitter.on('error', (error: Error) => (failure = error))

function publish(request: PublishRequest): Promise<number> {
  const started = performance.now()
  let sent = 0
  let confirmed = 0
  return new Promise((resolve, reject) => {
    const onConfirm = (error: unknown) => {
      if (error) return reject(error instanceof Error ? error : new Error(String(error)))
      confirmed++
      if (confirmed === request.count) resolve((performance.now() - started) / 1000)
      else pump()
    }
    const pump = () => {
      if (failure) return reject(failure)
      while (sent < request.count && sent - confirmed < request.window) {
        sent++
        // Message n: its number first, so a reader could tell messages apart; 1 KiB in all by default.
        const body = Buffer.alloc(request.bytes, 0x2e)
        body.write(`${sent};`, 0, 'ascii')
        channel.sendToQueue(request.queue, body, { persistent: true, headers: {}, messageId: `m${sent}`, contentType: 'application/octet-stream' }, onConfirm)
      }
    }
    pump()
  })
}

process.on('message', (request: PublishRequest) => {
  publish(request).then(
    (seconds) => process.send?.({ ok: true, seconds } satisfies PublishReply),
    (error: Error) => process.send?.({ ok: false, error: error.message } satisfies PublishReply)
  )
})
process.once('disconnect', () => void connection.close().finally(() => process.exit(0)))
process.once('SIGTERM', () => void connection.close().finally(() => process.exit(0)))
