import { SwitchyardError } from '../../../core/errors.js'
import { asPromise } from '../../../core/as-promise.js'
import type { Timers } from '../../../core/timers.js'
import type { BrokerAdapter, BrokerSession, Delivery, OutgoingMessage, QueueOptions } from './broker.js'

export interface MemoryBrokerOptions {
  /** ms timestamps for message TTLs; `timers` must run on the same clock */
  clock?: () => number
  timers?: Timers
}

// Unref'd: a pending expiry never keeps the process alive.
const systemTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout)
}

interface StoredMessage extends OutgoingMessage {
  redelivered: boolean
  /** when set, the message expires at this time (ms) */
  expiresAt: number | undefined
}

interface Consumer {
  session: MemorySession
  prefetch: number
  unacked: number
  onDelivery: (delivery: Delivery) => void
}

class MemoryQueue {
  readonly ready: StoredMessage[] = []
  readonly consumers: Consumer[] = []
  /** the one timer that expires this queue's head, while it has messages with a TTL */
  expiryTimer: unknown
  private nextConsumer = 0
  constructor(
    readonly name: string,
    readonly options: QueueOptions
  ) {}

  /** Round-robin over consumers with prefetch room, like RabbitMQ. */
  pickConsumer(): Consumer | undefined {
    for (let i = 0; i < this.consumers.length; i++) {
      const consumer = this.consumers[(this.nextConsumer + i) % this.consumers.length] as Consumer
      if (consumer.unacked < consumer.prefetch) {
        this.nextConsumer = (this.nextConsumer + i + 1) % this.consumers.length
        return consumer
      }
    }
    return undefined
  }
}

/**
 * A broker inside one process with RabbitMQ's semantics for what switchyard uses:
 * durable named queues, prefetch, acks (also multiple), requeue with the redelivered
 * flag, unacknowledged messages returned when a session ends, dead-lettering on reject
 * and on TTL expiry. Nothing survives the process: it is for `npm start` and tests.
 */
export class MemoryBroker {
  private readonly queues = new Map<string, MemoryQueue>()
  private readonly pendingTimers = new Set<unknown>()
  private readonly clock: () => number
  private readonly timers: Timers

  constructor(options: MemoryBrokerOptions = {}) {
    this.clock = options.clock ?? Date.now
    this.timers = options.timers ?? systemTimers
  }

  declare(name: string, options: QueueOptions = {}): void {
    const existing = this.queues.get(name)
    if (!existing) return void this.queues.set(name, new MemoryQueue(name, options))
    // As RabbitMQ: a queue keeps the arguments it was declared with; asking for others is an error.
    if (existing.options.deadLetterQueue !== options.deadLetterQueue || existing.options.messageTtlMs !== options.messageTtlMs) {
      throw new SwitchyardError('QUEUE_ARGUMENTS_CONFLICT', `PRECONDITION_FAILED - inequivalent arguments for queue '${name}'`)
    }
  }

  depth(name: string): number {
    return this.queues.get(name)?.ready.length ?? 0
  }

  /** Removes and returns what a queue holds (for tests and the local stack's inspection). */
  drain(name: string): OutgoingMessage[] {
    const queue = this.queues.get(name)
    if (!queue) return []
    return queue.ready.splice(0)
  }

  enqueue(name: string, message: OutgoingMessage, redelivered = false): void {
    const queue = this.queues.get(name)
    if (!queue) throw new SwitchyardError('QUEUE_NOT_FOUND', `queue ${name} does not exist`)
    const ttl = queue.options.messageTtlMs
    const stored: StoredMessage = { ...message, headers: { ...message.headers }, redelivered, expiresAt: ttl === undefined ? undefined : this.clock() + ttl }
    queue.ready.push(stored)
    if (ttl !== undefined) this.scheduleExpiry(queue)
    this.dispatch(queue)
  }

  addConsumer(name: string, consumer: Consumer): void {
    const queue = this.queues.get(name)
    if (!queue) throw new SwitchyardError('QUEUE_NOT_FOUND', `queue ${name} does not exist`)
    queue.consumers.push(consumer)
    this.dispatch(queue)
  }

  removeSession(session: MemorySession): void {
    for (const queue of this.queues.values()) {
      const index = queue.consumers.findIndex((consumer) => consumer.session === session)
      if (index >= 0) queue.consumers.splice(index, 1)
    }
  }

  /** A returned message goes back to the head of its queue, marked redelivered. */
  requeue(name: string, message: OutgoingMessage): void {
    const queue = this.queues.get(name)
    if (!queue) return
    queue.ready.unshift({ ...message, redelivered: true, expiresAt: undefined })
    this.dispatch(queue)
  }

  deadLetter(name: string, message: OutgoingMessage): void {
    const target = this.queues.get(name)?.options.deadLetterQueue
    if (target && this.queues.has(target)) this.enqueue(target, { ...message, headers: { ...message.headers, 'x-first-death-queue': name } })
  }

  dispatch(queue: MemoryQueue): void {
    while (queue.ready.length > 0) {
      const consumer = queue.pickConsumer()
      if (!consumer) return
      const message = queue.ready.shift() as StoredMessage
      consumer.unacked++
      consumer.session.deliver(queue.name, message, consumer)
    }
  }

  dispatchAll(): void {
    for (const queue of this.queues.values()) if (queue.ready.length > 0 && queue.consumers.length > 0) this.dispatch(queue)
  }

  close(): void {
    for (const timer of this.pendingTimers) this.timers.clearTimeout(timer)
    this.pendingTimers.clear()
    for (const queue of this.queues.values()) queue.expiryTimer = undefined
  }

  /**
   * Expires the head when it is due, then schedules the next head. Real timers run on the
   * monotonic clock, rounded to whole ms apart from Date.now(), so one can fire a
   * millisecond before its message is due: that message then simply gets the next timer
   * (a timer per message, checked once, could leave it waiting for ever).
   */
  private scheduleExpiry(queue: MemoryQueue): void {
    const due = queue.ready[0]?.expiresAt
    if (queue.expiryTimer !== undefined || due === undefined) return
    const timer = this.timers.setTimeout(
      () => {
        this.pendingTimers.delete(timer)
        queue.expiryTimer = undefined
        const now = this.clock()
        while (queue.ready.length > 0 && (queue.ready[0]?.expiresAt ?? Infinity) <= now) {
          const expired = queue.ready.shift() as StoredMessage
          this.deadLetter(queue.name, expired)
        }
        this.scheduleExpiry(queue)
      },
      Math.max(1, due - this.clock())
    )
    this.pendingTimers.add(timer)
    queue.expiryTimer = timer
  }
}

interface Unacked {
  queue: string
  message: StoredMessage
  consumer: Consumer
}

class MemorySession implements BrokerSession {
  readonly ended: Promise<Error | undefined>
  private end!: (error: Error | undefined) => void
  private nextTag = 1
  private readonly unacked = new Map<number, Unacked>()
  private open = true

  constructor(private readonly broker: MemoryBroker) {
    this.ended = new Promise((resolve) => (this.end = resolve))
  }

  declareQueue(name: string, options?: QueueOptions): Promise<void> {
    return asPromise(() => {
      this.assertOpen()
      try {
        this.broker.declare(name, options)
      } catch (error) {
        // RabbitMQ closes the channel on a failed declaration, which ends the session.
        this.terminate(error as Error)
        throw error
      }
    })
  }

  publish(queue: string, message: OutgoingMessage): Promise<void> {
    return asPromise(() => {
      this.assertOpen()
      this.broker.enqueue(queue, message)
    })
  }

  consume(queue: string, prefetch: number, onDelivery: (delivery: Delivery) => void): Promise<void> {
    return asPromise(() => {
      this.assertOpen()
      this.broker.addConsumer(queue, { session: this, prefetch, unacked: 0, onDelivery })
    })
  }

  deliver(queue: string, message: StoredMessage, consumer: Consumer): void {
    const tag = this.nextTag++
    this.unacked.set(tag, { queue, message, consumer })
    const { expiresAt: _expiresAt, redelivered, ...rest } = message
    // Delivered on a later tick, as a network broker would.
    setImmediate(() => {
      if (this.open) consumer.onDelivery({ ...rest, headers: { ...rest.headers }, tag, queue, redelivered })
    })
  }

  ack(tag: number, multiple: boolean): void {
    for (const settled of this.settle(tag, multiple)) settled.consumer.unacked--
    this.kick()
  }

  nack(tag: number, requeue: boolean): void {
    for (const settled of this.settle(tag, false)) {
      settled.consumer.unacked--
      if (requeue) this.broker.requeue(settled.queue, settled.message)
      else this.broker.deadLetter(settled.queue, settled.message)
    }
    this.kick()
  }

  /** Ends the session like a dropped connection: unacknowledged messages go back. */
  close(): Promise<void> {
    return asPromise(() => this.terminate(undefined))
  }

  terminate(reason: Error | undefined): void {
    if (!this.open) return
    this.open = false
    this.broker.removeSession(this)
    const pending = [...this.unacked.entries()].sort(([a], [b]) => b - a)
    this.unacked.clear()
    for (const [, entry] of pending) this.broker.requeue(entry.queue, entry.message)
    this.end(reason)
  }

  private settle(tag: number, multiple: boolean): Unacked[] {
    const settled: Unacked[] = []
    if (multiple) {
      // Like a RabbitMQ channel per consumer: `multiple` covers the earlier deliveries of
      // the same consumer only, never those of another queue consumed in this session.
      const owner = this.unacked.get(tag)?.consumer
      for (const [candidate, entry] of this.unacked) {
        if (candidate <= tag && entry.consumer === owner) {
          settled.push(entry)
          this.unacked.delete(candidate)
        }
      }
    } else {
      const entry = this.unacked.get(tag)
      if (entry) {
        settled.push(entry)
        this.unacked.delete(tag)
      }
    }
    return settled
  }

  /** Prefetch room opened: queues may deliver again. */
  private kick(): void {
    this.broker.dispatchAll()
  }

  private assertOpen(): void {
    if (!this.open) throw new SwitchyardError('BROKER_SESSION_CLOSED', 'the broker session is closed')
  }
}

export class MemoryBrokerAdapter implements BrokerAdapter {
  readonly kind = 'memory'
  private readonly sessions = new Set<MemorySession>()

  constructor(readonly broker: MemoryBroker = new MemoryBroker()) {}

  connect(): Promise<BrokerSession> {
    const session = new MemorySession(this.broker)
    this.sessions.add(session)
    void session.ended.then(() => this.sessions.delete(session))
    return Promise.resolve(session)
  }

  /** Drops every session as a network failure would (for fault tests). */
  dropConnections(): void {
    for (const session of this.sessions) session.terminate(new SwitchyardError('BROKER_CONNECTION_LOST', 'connection dropped'))
  }
}
