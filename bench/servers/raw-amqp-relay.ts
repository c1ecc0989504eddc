/**
 * The baseline of the messages scenario: a relay written directly on amqplib, the way one
 * would without switchyard. It consumes a source queue with a prefetch, publishes each
 * message (same body, properties and headers, plus the two headers the message router
 * adds) to a version queue chosen by smooth weighted round-robin (the router's own
 * algorithm, so neither pays more for the split), on a confirm channel without waiting
 * for each confirm, and acknowledges with one `multiple` ack per batch of confirms, in
 * delivery order. A refused publish is fatal: the benchmark never expects one.
 *
 *   AMQP_URL=amqp://... node dist/bench/servers/raw-amqp-relay.js PREFETCH SOURCE_QUEUE QUEUE=WEIGHT ...
 *
 * It prints "ready" on stdout once it consumes.
 */
import { connect, type ConsumeMessage, type Options } from 'amqplib'
import { SmoothWeightedRoundRobin } from '../../core/smooth-weighted-round-robin.js'

const url = process.env.AMQP_URL
const [prefetchText, source, ...targets] = process.argv.slice(2)
const prefetch = Number(prefetchText)
const queues = targets.map((target) => target.slice(0, target.lastIndexOf('=')))
const weights = targets.map((target) => Number(target.slice(target.lastIndexOf('=') + 1)))
// the version a queue belongs to, as the message router names it in x-switchyard-version
const versions = queues.map((queue) => queue.slice(queue.lastIndexOf('.') + 1))
if (!url || !source || !(prefetch > 0) || queues.length === 0 || weights.some((weight) => !(weight >= 0))) {
  process.stderr.write('usage: AMQP_URL=amqp://... raw-amqp-relay.js PREFETCH SOURCE_QUEUE QUEUE=WEIGHT ...\n')
  process.exit(2)
}

const fail = (error: unknown) => {
  process.stderr.write(`raw relay: ${(error as Error).stack ?? String(error)}\n`)
  process.exit(1)
}

const connection = await connect(url, { timeout: 5_000 })
connection.on('error', fail)
const consumer = await connection.createChannel()
const publisher = await connection.createConfirmChannel()
for (const channel of [consumer, publisher]) channel.on('error', fail)
await consumer.prefetch(prefetch)

// Delivery tags of one consumer on its own channel run 1, 2, 3, ...: a ring indexed by tag
// (larger than the prefetch, so live tags never collide) tells which ones are confirmed.
let capacity = 1
while (capacity <= prefetch * 2) capacity *= 2
const confirmed = new Uint8Array(capacity)
const mask = capacity - 1
/** every tag below this one is acknowledged or about to be */
let nextToAck = 1
let ackScheduled = false
const picker = new SmoothWeightedRoundRobin(weights)

// One ack per batch: confirms arrive in bursts (one frame can confirm hundreds), so the ack
// waits until the burst is handled.
const flushAck = () => {
  ackScheduled = false
  consumer.ack({ fields: { deliveryTag: nextToAck - 1 } } as ConsumeMessage, true)
}

const onConfirm = (tag: number) => {
  confirmed[tag & mask] = 1
  const before = nextToAck
  while (confirmed[nextToAck & mask] === 1) {
    confirmed[nextToAck & mask] = 0
    nextToAck++
  }
  if (nextToAck !== before && !ackScheduled) {
    ackScheduled = true
    setImmediate(flushAck)
  }
}

await consumer.consume(source, (message) => {
  if (message === null) return fail(new Error(`the consumer of ${source} was cancelled by the broker`))
  const tag = message.fields.deliveryTag
  const index = picker.next()
  const properties = message.properties
  const options: Options.Publish = {
    persistent: true,
    headers: { ...properties.headers, 'x-switchyard-version': versions[index], 'x-switchyard-topic': source },
    messageId: properties.messageId as string | undefined,
    contentType: properties.contentType as string | undefined,
    correlationId: properties.correlationId as string | undefined,
    timestamp: properties.timestamp as number | undefined
  }
  publisher.sendToQueue(queues[index] as string, message.content, options, (error: unknown) => (error ? fail(error) : onConfirm(tag)))
})
process.stdout.write('ready\n')

const stop = () => {
  void connection.close().finally(() => process.exit(0))
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
