import type { BrokerSession, Delivery } from './brokers/broker.js'
import { queuesOf, type TopicConfig } from './config.js'
import type { MessageMetrics } from './metrics.js'

/** Header names the relay reads: the router's version stamp, and the broker's first death queue. */
const VERSION_HEADER = 'x-switchyard-version'
const FIRST_DEATH_QUEUE = 'x-first-death-queue'
const DEAD_REASON = 'x-switchyard-dead-reason'

/**
 * Counts the messages a topic's version workers reject, per version, on their way to the
 * dead-letter queue. Version queues dead-letter into `<topic>.rejected`; this consumes it,
 * learns the version from the router's own `x-switchyard-version` stamp (or the queue the
 * broker says the message died in), republishes it to `<topic>.dlq` unchanged but for a
 * reason header, and acknowledges only once that publish is confirmed: a dead letter is
 * never lost, and it waits no longer than one confirm round trip.
 */
export class RejectRelay {
  private readonly queues

  constructor(private readonly deps: { session: BrokerSession; topic: TopicConfig; metrics: MessageMetrics; prefetch: number; onError: (error: Error) => void }) {
    this.queues = queuesOf(deps.topic.name)
  }

  async start(): Promise<void> {
    const { session } = this.deps
    await session.declareQueue(this.queues.deadLetter)
    await session.declareQueue(this.queues.rejected)
    await session.consume(this.queues.rejected, this.deps.prefetch, (delivery) => this.onDelivery(delivery))
  }

  /** the version a rejected message belonged to, or '' when it carries no sign of one */
  versionOf(delivery: Delivery): string {
    const stamped = delivery.headers[VERSION_HEADER]
    if (typeof stamped === 'string' && stamped !== '') return stamped
    const queue = delivery.headers[FIRST_DEATH_QUEUE]
    const prefix = `${this.deps.topic.name}.`
    return typeof queue === 'string' && queue.startsWith(prefix) ? queue.slice(prefix.length) : ''
  }

  private onDelivery(delivery: Delivery): void {
    const { session, topic, metrics } = this.deps
    const version = this.versionOf(delivery)
    const headers = { ...delivery.headers }
    headers[DEAD_REASON] ??= 'rejected-by-worker'
    session
      .publish(this.queues.deadLetter, {
        body: delivery.body,
        headers,
        messageId: delivery.messageId,
        contentType: delivery.contentType,
        correlationId: delivery.correlationId,
        timestamp: delivery.timestamp
      })
      .then(
        () => {
          session.ack(delivery.tag, false)
          if (version !== '') metrics.countRejected(topic.name, topic.service, version)
        },
        (error: Error) => {
          // Not confirmed: it stays in the rejected queue and comes back.
          this.deps.onError(error)
          session.nack(delivery.tag, true)
        }
      )
  }
}
