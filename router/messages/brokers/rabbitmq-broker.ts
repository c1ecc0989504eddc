import { connect, type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, type Options } from 'amqplib'
import type { BrokerAdapter, BrokerSession, Delivery, MessageHeaders, OutgoingMessage, QueueOptions } from './broker.js'

/**
 * RabbitMQ through amqplib. One connection per session with two channels: a confirm
 * channel for publishing (every publish resolves on the broker's confirm) and a plain
 * channel for consuming with a prefetch. Queues are durable and messages persistent.
 */
class RabbitSession implements BrokerSession {
  readonly ended: Promise<Error | undefined>
  private end!: (error: Error | undefined) => void
  private closing = false
  private consumeChannel: Channel | undefined
  /** consume calls one at a time: prefetch and consume are two RPCs on one shared channel */
  private consuming: Promise<unknown> = Promise.resolve()

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

  consume(queue: string, prefetch: number, onDelivery: (delivery: Delivery) => void): Promise<void> {
    const started = this.consuming.then(() => this.startConsumer(queue, prefetch, onDelivery))
    this.consuming = started.catch(() => {})
    return started
  }

  private async startConsumer(queue: string, prefetch: number, onDelivery: (delivery: Delivery) => void): Promise<void> {
    this.consumeChannel ??= await this.openConsumeChannel()
    const channel = this.consumeChannel
    await channel.prefetch(prefetch)
    await channel.consume(queue, (message: ConsumeMessage | null) => {
      if (message === null) return void this.abort(new Error(`the consumer of ${queue} was cancelled by the broker`))
      onDelivery(toDelivery(queue, message))
    })
  }

  // On a closed channel amqplib throws; the broker returns those messages anyway, so settling
  // after the session ended (a confirm that resolved just before the drop) is a no-op.
  ack(tag: number, multiple: boolean): void {
    try {
      this.consumeChannel?.ack({ fields: { deliveryTag: tag } } as ConsumeMessage, multiple)
    } catch {
      /* the session has ended */
    }
  }

  nack(tag: number, requeue: boolean): void {
    try {
      this.consumeChannel?.nack({ fields: { deliveryTag: tag } } as ConsumeMessage, false, requeue)
    } catch {
      /* the session has ended */
    }
  }

  async close(): Promise<void> {
    this.closing = true
    // Channels first: amqplib multiplexes channels, so a connection close can overtake acks
    // still buffered on the consume channel and the broker would redeliver those messages.
    // A channel's own close follows its acks. (Skipped once the connection is gone.)
    for (const channel of [this.consumeChannel, this.publishChannel, this.control]) {
      if (channel) await Promise.race([channel.close().catch(() => {}), this.ended])
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

function toDelivery(queue: string, message: ConsumeMessage): Delivery {
  const headers: MessageHeaders = {}
  const received = (message.properties.headers ?? {}) as Record<string, unknown>
  // for...in, not Object.entries: no array of pairs per message on the hot path
  for (const name in received) {
    const value = received[name]
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') headers[name] = value
    else if (Buffer.isBuffer(value)) headers[name] = value.toString('utf8')
  }
  return {
    tag: message.fields.deliveryTag,
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
