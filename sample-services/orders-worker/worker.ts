import type { BrokerAdapter, BrokerSession, Delivery } from '../../router/messages/brokers/broker.js'
import { queuesOf } from '../../router/messages/config.js'
import { currentTracing, endSpan, extractMessageContext, SpanKind } from '../../telemetry/tracing.js'

export interface OrdersWorkerStats {
  version: string
  queue: string
  handled: number
  redelivered: number
  /** orders it refused (the reject-rate knob), dead-lettered */
  rejected: number
  lastOrder: unknown
}

/**
 * The sample queue consumer: takes orders from its version's queue, handles them (here:
 * counts them) and acknowledges each only after handling, so a crash redelivers.
 * Reconnects when its broker session ends.
 */
export class OrdersWorker {
  readonly stats: OrdersWorkerStats
  private session: BrokerSession | undefined
  private running = false

  constructor(
    private readonly adapter: BrokerAdapter,
    private readonly options: {
      topic: string
      version: string
      prefetch?: number
      /** share of orders to refuse, 0..1 (a bad release, for canary demos) */
      rejectRate?: number
      random?: () => number
      onEvent?: (event: string, detail?: Record<string, unknown>) => void
    }
  ) {
    const queues = queuesOf(options.topic)
    this.stats = { version: options.version, queue: queues.version(options.version), handled: 0, redelivered: 0, rejected: 0, lastOrder: null }
  }

  start(): void {
    if (this.running) return
    this.running = true
    void this.loop()
  }

  async stop(): Promise<void> {
    this.running = false
    await this.session?.close()
  }

  private async loop(): Promise<void> {
    const queues = queuesOf(this.options.topic)
    for (let delay = 200; this.running; delay = Math.min(delay * 2, 5_000)) {
      try {
        const session = await this.adapter.connect()
        this.session = session
        // Declared exactly as the message router declares it, whoever comes first.
        await session.declareQueue(queues.deadLetter)
        await session.declareQueue(queues.rejected)
        await session.declareQueue(this.stats.queue, { deadLetterQueue: queues.rejected })
        await session.consume(this.stats.queue, this.options.prefetch ?? 50, (delivery) => this.handle(session, delivery))
        this.options.onEvent?.('consuming', { queue: this.stats.queue })
        delay = 200
        const reason = await session.ended
        if (this.running) this.options.onEvent?.('broker-lost', { reason: reason?.message })
      } catch (error) {
        this.options.onEvent?.('broker-unreachable', { reason: (error as Error).message })
      }
      if (this.running) await new Promise((resolve) => setTimeout(resolve, delay))
    }
  }

  private handle(session: BrokerSession, delivery: Delivery): void {
    let order: unknown = null
    try {
      order = JSON.parse(delivery.body.toString('utf8'))
    } catch {
      // Not JSON: a worker that cannot handle a message rejects it to the dead-letter queue.
      session.nack(delivery.tag, false)
      return
    }
    const rejectRate = this.options.rejectRate ?? 0
    if (rejectRate > 0 && (this.options.random ?? Math.random)() < rejectRate) {
      // The knob of a bad release: the order is refused and goes to the dead-letter queue.
      this.stats.rejected++
      session.nack(delivery.tag, false)
      return
    }
    const tracing = currentTracing()
    // The worker continues the trace the message carries (producer -> message router -> worker).
    const span = tracing.enabled
      ? tracing.tracer.startSpan(
          `${this.stats.queue} process`,
          { kind: SpanKind.CONSUMER, attributes: { 'messaging.destination.name': this.stats.queue, 'messaging.message.id': delivery.messageId ?? '' } },
          extractMessageContext(delivery.headers)
        )
      : undefined
    this.stats.handled++
    if (delivery.redelivered) this.stats.redelivered++
    this.stats.lastOrder = order
    session.ack(delivery.tag, false)
    if (span) endSpan(span)
  }
}
