import { isValidName } from '../../core/names.js'
import type { RouteTable, VersionRoute } from '../../core/route-table.js'
import { chooseVersion } from '../../core/version-choice.js'
import { childContext, currentTracing, endSpan, extractMessageContext, injectMessageContext, SpanKind, type Tracing } from '../../telemetry/tracing.js'
import type { BrokerSession, Delivery, MessageHeaders, OutgoingMessage } from './brokers/broker.js'
import { queuesOf, type MessageRouterConfig, type TopicConfig } from './config.js'
import type { MessageMetrics } from './metrics.js'

/** Headers switchyard reads and writes on messages. */
export const MessageHeader = {
  version: 'x-switchyard-version',
  topic: 'x-switchyard-topic',
  attempts: 'x-switchyard-attempts',
  deadReason: 'x-switchyard-dead-reason',
  deadAt: 'x-switchyard-dead-at'
} as const

/** Falling back to another version needs no bookkeeping here (the choice is still weighted). */
const ignoreFallback = (): void => {}

/** The message as it goes on: same body and properties, headers as given. */
function forward(delivery: Delivery, headers: MessageHeaders): OutgoingMessage {
  return { body: delivery.body, headers, messageId: delivery.messageId, contentType: delivery.contentType, correlationId: delivery.correlationId, timestamp: delivery.timestamp }
}

interface Pending {
  tag: number
  settled: boolean
  /** given back with a nack: not to be covered by an ack */
  returned: boolean
}

export interface RelayDependencies {
  session: BrokerSession
  topic: TopicConfig
  config: MessageRouterConfig
  tables: { readonly table: RouteTable<unknown> }
  metrics: MessageMetrics
  random?: () => number
  onError: (error: Error) => void
}

/**
 * Moves one topic's messages to version queues for one broker session. A delivery is
 * acknowledged only after its publish is confirmed; confirms are pipelined (up to the
 * prefetch) and acknowledged in delivery order with one `multiple` ack per burst of
 * confirms, so the broker never forgets a message that is not safely elsewhere.
 */
export class TopicRelay {
  private readonly queues
  private readonly pending: Pending[] = []
  private readonly declared = new Map<string, Promise<void>>()
  /** version -> its queue's name, once the queue is declared on this session (the hot path's lookup) */
  private readonly declaredQueues = new Map<string, string>()
  /** the sticky-key header as it arrives (AMQP header names are kept as sent; HTTP lowercases) */
  private readonly stickyHeader: string
  private readonly stickyHeaderLower: string
  private readonly deps: RelayDependencies
  private readonly random: () => number
  /** the highest confirmed delivery tag, in order, not acknowledged yet (0: none) */
  private ackUpTo = 0
  private ackScheduled = false

  constructor(deps: RelayDependencies) {
    this.deps = deps
    this.queues = queuesOf(deps.topic.name)
    this.random = deps.random ?? Math.random
    this.stickyHeader = deps.config.stickyKey.header
    this.stickyHeaderLower = this.stickyHeader.toLowerCase()
  }

  async start(): Promise<void> {
    const { session, config } = this.deps
    await session.declareQueue(this.queues.deadLetter)
    await session.declareQueue(this.queues.rejected)
    await session.declareQueue(this.queues.source)
    // Unroutable messages wait here; when their TTL runs out they return to the topic queue.
    await session.declareQueue(this.queues.wait, { deadLetterQueue: this.queues.source, messageTtlMs: config.requeueDelayMs })
    await this.declareVersionQueues()
    await session.consume(this.queues.source, config.prefetch, (delivery) => this.onDelivery(delivery))
  }

  /** Declares the queue of every version the service has now (called on each new table). */
  async declareVersionQueues(): Promise<void> {
    const route = this.deps.tables.table.services.get(this.deps.topic.service)
    await Promise.all((route?.versions ?? []).map((version) => this.versionQueue(version.name)))
  }

  private versionQueue(version: string): Promise<void> {
    const name = this.queues.version(version)
    let declared = this.declared.get(name)
    if (!declared) {
      declared = this.deps.session.declareQueue(name, { deadLetterQueue: this.queues.rejected })
      declared.then(
        () => this.declaredQueues.set(version, name),
        () => this.declared.delete(name)
      )
      this.declared.set(name, declared)
    }
    return declared
  }

  private onDelivery(delivery: Delivery): void {
    const { metrics, topic } = this.deps
    const entry: Pending = { tag: delivery.tag, settled: false, returned: false }
    this.pending.push(entry)
    metrics.inflight.inc({ topic: topic.name })
    if (delivery.redelivered) metrics.redeliveries.inc({ topic: topic.name })
    const started = performance.now()
    let routed: Promise<void>
    try {
      routed = this.route(delivery)
    } catch (error) {
      routed = Promise.reject(error as Error)
    }
    routed.then(
      () => {
        metrics.routingLatency.observe({ topic: topic.name }, (performance.now() - started) / 1000)
        this.settle(entry)
      },
      (error: Error) => {
        // Not confirmed: give it back to the topic queue now, so one refused publish cannot
        // hold up the acks of everything behind it. (If the session is gone, the broker
        // returns it anyway.)
        this.deps.onError(error)
        this.deps.session.nack(entry.tag, true)
        entry.returned = true
        this.settle(entry)
      }
    )
  }

  private settle(entry: Pending): void {
    entry.settled = true
    while (this.pending.length > 0 && (this.pending[0] as Pending).settled) {
      const head = this.pending.shift() as Pending
      // A multiple ack covers every outstanding tag up to it; returned ones are no longer outstanding.
      if (!head.returned) this.ackUpTo = head.tag
    }
    // One ack per burst of confirms: the broker confirms hundreds of publishes in one frame,
    // and acking each would cost the broker (the bottleneck) one ack per message. The tick
    // runs once the burst's callbacks are done and before any other I/O or timer, so a
    // close() never overtakes it.
    if (this.ackUpTo !== 0 && !this.ackScheduled) {
      this.ackScheduled = true
      process.nextTick(this.flushAck)
    }
    this.deps.metrics.inflight.dec({ topic: this.deps.topic.name })
  }

  private readonly flushAck = (): void => {
    this.ackScheduled = false
    const tag = this.ackUpTo
    this.ackUpTo = 0
    if (tag !== 0) this.deps.session.ack(tag, true)
  }

  /**
   * Chooses the version and publishes. Not async on purpose: with its queue declared and
   * tracing off (the common case) the publish goes out at once, without the microtask
   * hops and allocations of an async function, and the promise is the publish's own.
   */
  private route(delivery: Delivery): Promise<void> {
    const { topic } = this.deps
    const forced = delivery.headers[MessageHeader.version]
    if (forced !== undefined && (typeof forced !== 'string' || !isValidName(forced))) {
      return this.deadLetter(delivery, 'invalid-version-header')
    }
    const route = this.deps.tables.table.services.get(topic.service)
    let version: VersionRoute<unknown> | undefined
    if (route) {
      const key = forced === undefined ? (delivery.headers[this.stickyHeaderLower] ?? delivery.headers[this.stickyHeader]) : undefined
      version = chooseVersion(route, forced, key === undefined ? undefined : String(key), this.deps.config.weightedChoice, this.random, ignoreFallback)
    }
    if (!version) return this.delay(delivery, forced !== undefined ? 'unknown-version' : 'no-routable-version')
    const chosen = version
    const queue = this.declaredQueues.get(chosen.name)
    // A version seen for the first time on this session: its queue first.
    if (queue === undefined) return this.versionQueue(chosen.name).then(() => this.publishTo(delivery, chosen, this.queues.version(chosen.name)))
    return this.publishTo(delivery, chosen, queue)
  }

  private publishTo(delivery: Delivery, version: VersionRoute<unknown>, queue: string): Promise<void> {
    const { topic, metrics } = this.deps
    const headers: MessageHeaders = { ...delivery.headers, [MessageHeader.version]: version.name, [MessageHeader.topic]: topic.name }
    const tracing = currentTracing()
    const published = tracing.enabled ? this.publishTraced(tracing, delivery, version, queue, headers) : this.deps.session.publish(queue, forward(delivery, headers))
    return published.then(() => {
      metrics.messages.inc({ topic: topic.name, version: version.name, outcome: 'routed' })
      metrics.countRouted(topic.service, version.name)
    })
  }

  /** consumer span (child of the producer's context) -> producer span for the version queue */
  private async publishTraced(tracing: Tracing, delivery: Delivery, version: VersionRoute<unknown>, queue: string, headers: MessageHeaders): Promise<void> {
    const { topic } = this.deps
    const attributes = {
      'messaging.destination.name': topic.name,
      'messaging.message.id': delivery.messageId ?? '',
      'switchyard.version': version.name,
      'switchyard.version.weight': version.weight / 100
    }
    const consumer = tracing.tracer.startSpan(
      `${topic.name} process`,
      { kind: SpanKind.CONSUMER, attributes: { ...attributes, 'messaging.operation.type': 'process', 'switchyard.registry.revision': this.deps.tables.table.revision } },
      extractMessageContext(delivery.headers)
    )
    const producer = tracing.tracer.startSpan(
      `${queue} publish`,
      { kind: SpanKind.PRODUCER, attributes: { ...attributes, 'messaging.operation.type': 'publish', 'messaging.destination.name': queue } },
      childContext(consumer)
    )
    injectMessageContext(producer, headers)
    try {
      await this.deps.session.publish(queue, forward(delivery, headers))
      endSpan(producer)
      endSpan(consumer)
    } catch (error) {
      endSpan(producer, (error as Error).message)
      endSpan(consumer, (error as Error).message)
      throw error
    }
  }

  /** No version can take it now: it waits (requeue with a delay), up to maxAttempts tries. */
  private async delay(delivery: Delivery, reason: string): Promise<void> {
    const attempts = Number(delivery.headers[MessageHeader.attempts] ?? 0) + 1
    if (!Number.isFinite(attempts) || attempts >= this.deps.config.maxAttempts) return this.deadLetter(delivery, reason)
    await this.deps.session.publish(this.queues.wait, forward(delivery, { ...delivery.headers, [MessageHeader.attempts]: attempts }))
    this.deps.metrics.messages.inc({ topic: this.deps.topic.name, version: '', outcome: 'delayed' })
  }

  private async deadLetter(delivery: Delivery, reason: string): Promise<void> {
    await this.deps.session.publish(
      this.queues.deadLetter,
      forward(delivery, { ...delivery.headers, [MessageHeader.deadReason]: reason, [MessageHeader.deadAt]: new Date().toISOString(), [MessageHeader.topic]: this.deps.topic.name })
    )
    this.deps.metrics.messages.inc({ topic: this.deps.topic.name, version: '', outcome: 'dead-lettered' })
    this.deps.metrics.deadLettered.inc({ topic: this.deps.topic.name, reason })
  }
}
