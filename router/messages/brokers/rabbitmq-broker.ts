import { connect, type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Options } from 'amqplib'
import type { BrokerAdapter, BrokerSession, Delivery, MessageHeaders, OutgoingMessage, QueueOptions } from './broker.js'

/**
 * A session's delivery tags carry their consumer: RabbitMQ numbers deliveries per channel,
 * so tag = channel tag x CONSUMER_SLOTS + consumer index (still increasing per consumer).
 */
const CONSUMER_SLOTS = 1024

/**
 * RabbitMQ through amqplib. One connection per session: a confirm channel for publishing
 * (every publish resolves on the broker's confirm), a control channel for declarations,
 * and one channel per consumer, so that its prefetch and its `multiple` acks cover its own
 * deliveries only (on a shared channel one topic's ack would settle another topic's
 * unconfirmed messages). Queues are durable and messages persistent.
 */
class RabbitSession implements BrokerSession {
  readonly ended: Promise<Error | undefined>
  private end!: (error: Error | undefined) => void
  private closing = false
  private readonly consumers: Channel[] = []

  constructor(
    private readonly connection: ChannelModel,
    private readonly publishChannel: ConfirmChannel,
    private readonly control: Channel
  ) {
    this.ended = new Promise((resolve) => (this.end = resolve))
    const finish = (error?: Error) => {
      if (this.closing) return this.end(undefined)
      this.end(error ?? new Error('the RabbitMQ connection closed'))
    }
    connection.on('close', (error?: Error) => finish(error))
    connection.on('error', (error: Error) => finish(error))
    // A channel error (e.g. a failed declare) closes the channel: end the whole session so it is rebuilt.
    for (const channel of [publishChannel, control]) {
      channel.on('error', (error: Error) => void this.abort(error))
      channel.on('close', () => void this.abort(new Error('a RabbitMQ channel closed')))
    }
  }

  async declareQueue(name: string, options: QueueOptions = {}): Promise<void> {
    const args: Record<string, unknown> = {}
    if (options.deadLetterQueue) {
      args['x-dead-letter-exchange'] = ''
      args['x-dead-letter-routing-key'] = options.deadLetterQueue
    }
    if (options.messageTtlMs !== undefined) args['x-message-ttl'] = options.messageTtlMs
    await this.control.assertQueue(name, { durable: true, arguments: args })
  }

  publish(queue: string, message: OutgoingMessage): Promise<void> {
    const options: Options.Publish = { persistent: true, headers: message.headers }
    if (message.messageId !== undefined) options.messageId = message.messageId
    if (message.contentType !== undefined) options.contentType = message.contentType
    if (message.correlationId !== undefined) options.correlationId = message.correlationId
    if (message.timestamp !== undefined) options.timestamp = message.timestamp
    return new Promise((resolve, reject) => {
      try {
        this.publishChannel.sendToQueue(queue, message.body, options, (error: unknown) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve()))
      } catch (error) {
        reject(error as Error)
      }
    })
  }

  async consume(queue: string, prefetch: number, onDelivery: (delivery: Delivery) => void): Promise<void> {
    if (this.consumers.length >= CONSUMER_SLOTS) throw new Error(`at most ${CONSUMER_SLOTS} consumers per RabbitMQ session`)
    const channel = await this.openConsumeChannel()
    // Taken after the await, so that consumers started at once get distinct slots.
    const index = this.consumers.push(channel) - 1
    await channel.prefetch(prefetch)
    await channel.consume(queue, (message: ConsumeMessage | null) => {
      if (message === null) return void this.abort(new Error(`the consumer of ${queue} was cancelled by the broker`))
      onDelivery(toDelivery(queue, message, index))
    })
  }

  // On a closed channel amqplib throws; the broker returns those messages anyway, so settling
  // after the session ended (a confirm that resolved just before the drop) is a no-op.
  ack(tag: number, multiple: boolean): void {
    try {
      this.consumers[tag % CONSUMER_SLOTS]?.ack(channelMessage(tag), multiple)
    } catch {
      /* the session has ended */
    }
  }

  nack(tag: number, requeue: boolean): void {
    try {
      this.consumers[tag % CONSUMER_SLOTS]?.nack(channelMessage(tag), false, requeue)
    } catch {
      /* the session has ended */
    }
  }

  async close(): Promise<void> {
    this.closing = true
    // Channels first: amqplib multiplexes channels, so a connection close can overtake acks
    // still buffered on the consume channel and the broker would redeliver those messages.
    // A channel's own close follows its acks. (Skipped once the connection is gone.)
    for (const channel of [...this.consumers, this.publishChannel, this.control]) {
      await Promise.race([channel.close().catch(() => {}), this.ended])
    }
    await this.connection.close().catch(() => {})
    this.end(undefined)
  }

  private async openConsumeChannel(): Promise<Channel> {
    const channel = await this.connection.createChannel()
    channel.on('error', (error: Error) => void this.abort(error))
    channel.on('close', () => void this.abort(new Error('the RabbitMQ consume channel closed')))
    return channel
  }

  private async abort(error: Error): Promise<void> {
    if (this.closing) return
    this.end(error)
    this.closing = true
    await this.connection.close().catch(() => {})
  }
}

/** What amqplib's ack and nack read of a message: its tag on the consumer's channel. */
function channelMessage(tag: number): ConsumeMessage {
  return { fields: { deliveryTag: Math.floor(tag / CONSUMER_SLOTS) } } as ConsumeMessage
}

function toDelivery(queue: string, message: ConsumeMessage, consumer: number): Delivery {
  const headers: MessageHeaders = {}
  const received = (message.properties.headers ?? {}) as Record<string, unknown>
  // for...in, not Object.entries: no array of pairs per message on the hot path
  for (const name in received) {
    const value = received[name]
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') headers[name] = value
    else if (Buffer.isBuffer(value)) headers[name] = value.toString('utf8')
  }
  return {
    tag: message.fields.deliveryTag * CONSUMER_SLOTS + consumer,
    queue,
    redelivered: message.fields.redelivered,
    body: message.content,
    headers,
    messageId: message.properties.messageId as string | undefined,
    contentType: message.properties.contentType as string | undefined,
    correlationId: message.properties.correlationId as string | undefined,
    timestamp: message.properties.timestamp as number | undefined
  }
}

export class RabbitMqAdapter implements BrokerAdapter {
  readonly kind = 'rabbitmq'

  constructor(private readonly url: string) {}

  async connect(): Promise<BrokerSession> {
    const connection = await connect(this.url, { timeout: 5_000 })
    try {
      const publishChannel = await connection.createConfirmChannel()
      const control = await connection.createChannel()
      return new RabbitSession(connection, publishChannel, control)
    } catch (error) {
      await connection.close().catch(() => {})
      throw error
    }
  }
}

/** The URL without its password, for logs. */
export function redactAmqpUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return 'amqp://(unparseable url)'
  }
}
