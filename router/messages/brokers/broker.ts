/**
 * What the message router needs from a broker, and nothing more. RabbitMQ (amqplib) is
 * the real adapter; the in-memory broker has the same semantics for `npm start` and
 * tests. A NATS JetStream or Redis Streams adapter is one more file implementing this.
 */
export interface QueueOptions {
  /** where rejected and expired messages go (dead-letter queue) */
  deadLetterQueue?: string
  /** messages expire after this long and go to `deadLetterQueue` (delayed requeue) */
  messageTtlMs?: number
}

export type MessageHeaders = Record<string, string | number | boolean>

export interface OutgoingMessage {
  body: Buffer
  headers: MessageHeaders
  messageId?: string | undefined
  contentType?: string | undefined
  correlationId?: string | undefined
  timestamp?: number | undefined
}

export interface Delivery extends OutgoingMessage {
  /** increases with every delivery to one consumer; acks and nacks name it */
  readonly tag: number
  readonly queue: string
  /** the broker delivered it before (it may have been handled already) */
  readonly redelivered: boolean
}

export interface BrokerSession {
  declareQueue(name: string, options?: QueueOptions): Promise<void>
  /** resolves once the broker has taken responsibility for the message (publisher confirm) */
  publish(queue: string, message: OutgoingMessage): Promise<void>
  consume(queue: string, prefetch: number, onDelivery: (delivery: Delivery) => void): Promise<void>
  /**
   * Acknowledges `tag`, and with `multiple` every earlier unacknowledged delivery of the
   * same consumer too (never another consumer's: each topic relay acks its own in order).
   */
  ack(tag: number, multiple: boolean): void
  /** gives a delivery back: requeued, or dead-lettered when `requeue` is false */
  nack(tag: number, requeue: boolean): void
  /** resolves when the session ends, with the reason when it was not closed on purpose */
  readonly ended: Promise<Error | undefined>
  close(): Promise<void>
}

export interface BrokerAdapter {
  readonly kind: string
  connect(): Promise<BrokerSession>
}
