import type { FastifyBaseLogger } from 'fastify'
import type { RouteTable } from '../../core/route-table.js'
import type { BrokerAdapter, BrokerSession, OutgoingMessage } from './brokers/broker.js'
import { queuesOf, type MessageRouterConfig } from './config.js'
import type { MessageMetrics } from './metrics.js'
import { RejectRelay } from './reject-relay.js'
import { TopicRelay } from './topic-relay.js'

export interface MessageRouterOptions {
  adapter: BrokerAdapter
  config: MessageRouterConfig
  tables: { readonly table: RouteTable<unknown> }
  metrics: MessageMetrics
  log: Pick<FastifyBaseLogger, 'info' | 'warn' | 'error'>
  random?: () => number
  brokerLabel: string
}

/**
 * Keeps one broker session alive and a relay per topic on it. When the session ends
 * (broker restart, dropped connection, channel error) the unacknowledged messages go
 * back to their queues on the broker's side, and this reconnects with exponential
 * backoff and full jitter, declares again and resumes consuming.
 */
export class MessageRouter {
  private session: BrokerSession | undefined
  private relays: TopicRelay[] = []
  private running = false
  private connectedOnce = false
  private wake: (() => void) | undefined
  private loopDone: Promise<void> = Promise.resolve()

  constructor(private readonly options: MessageRouterOptions) {}

  get connected(): boolean {
    return this.session !== undefined && this.relays.length === this.options.config.topics.length
  }

  start(): void {
    if (this.running) return
    this.running = true
    this.loopDone = this.loop()
  }

  async stop(): Promise<void> {
    this.running = false
    this.wake?.()
    await this.session?.close()
    await this.loopDone
  }

  /** A new routing table: declare queues for versions that just appeared. */
  onTable(): void {
    for (const relay of this.relays) relay.declareVersionQueues().catch((error: Error) => this.options.log.warn({ err: error }, 'declaring a version queue failed'))
  }

  /** Publishes to a topic's queue (the HTTP publish endpoint); resolves on the broker's confirm. */
  async publish(topic: string, message: OutgoingMessage): Promise<void> {
    const session = this.session
    if (!session || !this.connected) throw new Error('the broker is not connected')
    await session.publish(queuesOf(topic).source, message)
  }

  private async loop(): Promise<void> {
    const { log, metrics, config } = this.options
    let attempt = 0
    while (this.running) {
      let failure: Error | undefined
      try {
        const session = await this.options.adapter.connect()
        this.session = session
        // stop() while connecting found no session to close: close this one instead of consuming
        if (!this.running) throw new Error('stopped while connecting')
        const relays = config.topics.map(
          (topic) =>
            new TopicRelay({
              session,
              topic,
              config,
              tables: this.options.tables,
              metrics,
              ...(this.options.random ? { random: this.options.random } : {}),
              onError: (error) => log.warn({ err: error, topic: topic.name }, 'a publish was not confirmed; the message stays on the broker')
            })
        )
        for (const relay of relays) await relay.start()
        for (const topic of config.topics) {
          await new RejectRelay({
            session,
            topic,
            metrics,
            prefetch: Math.min(config.prefetch, 64),
            onError: (error) => log.warn({ err: error, topic: topic.name }, 'a rejected message could not be moved to the dead-letter queue yet; it stays in the rejected queue')
          }).start()
        }
        this.relays = relays
        metrics.brokerConnected.set(1)
        attempt = 0
        log.info(
          { broker: this.options.brokerLabel, topics: config.topics.map((t) => t.name) },
          this.connectedOnce ? 'reconnected to the broker; consuming again' : 'connected to the broker; consuming'
        )
        this.connectedOnce = true
        failure = await session.ended
      } catch (error) {
        failure = error as Error
        await this.session?.close().catch(() => {})
      }
      this.relays = []
      this.session = undefined
      metrics.brokerConnected.set(0)
      for (const topic of config.topics) metrics.inflight.set({ topic: topic.name }, 0)
      if (!this.running) break
      if (attempt === 0)
        log.warn({ broker: this.options.brokerLabel, reason: failure?.message }, 'broker connection lost; unacknowledged messages return to their queues; reconnecting')
      const ceiling = Math.min(config.reconnect.maxDelayMs, config.reconnect.initialDelayMs * 2 ** Math.min(attempt, 16))
      attempt++
      const random = this.options.random ?? Math.random
      await new Promise<void>((resolve) => {
        this.wake = resolve
        setTimeout(resolve, Math.floor(random() * ceiling)).unref()
      })
    }
  }
}
