import t, { type Test } from 'tap'
import type { InstanceRecord } from '../../core/registry-events.js'
import { buildServiceRoute, type RouteTable } from '../../core/route-table.js'
import type { BrokerSession, Delivery } from '../../router/messages/brokers/broker.js'
import { parseMessageRouterConfig } from '../../router/messages/config.js'
import { MessageMetrics } from '../../router/messages/metrics.js'
import { TopicRelay } from '../../router/messages/topic-relay.js'

/**
 * How the relay acknowledges, against a session whose publishes the test confirms or
 * refuses by hand: one `multiple` ack per burst of confirms, never past an unconfirmed
 * delivery, never naming a delivery given back with a nack.
 */

interface PendingPublish {
  queue: string
  confirm(): void
  refuse(error: Error): void
}

class ManualSession implements BrokerSession {
  readonly settlements: string[] = []
  readonly publishes: PendingPublish[] = []
  readonly ended = new Promise<Error | undefined>(() => {})
  private onDelivery: ((delivery: Delivery) => void) | undefined

  async declareQueue(): Promise<void> {}

  publish(queue: string): Promise<void> {
    return new Promise((confirm, refuse) => this.publishes.push({ queue, confirm, refuse }))
  }

  consume(_queue: string, _prefetch: number, onDelivery: (delivery: Delivery) => void): Promise<void> {
    this.onDelivery = onDelivery
    return Promise.resolve()
  }

  ack(tag: number, multiple: boolean): void {
    this.settlements.push(`ack ${tag}${multiple ? ' multiple' : ''}`)
  }

  nack(tag: number, requeue: boolean): void {
    this.settlements.push(`nack ${tag}${requeue ? ' requeue' : ''}`)
  }

  async close(): Promise<void> {}

  deliver(tags: readonly number[]): void {
    for (const tag of tags) this.onDelivery?.({ tag, queue: 'orders', redelivered: false, body: Buffer.from(`m${tag}`), headers: {} })
  }
}

const instance = (version: string): InstanceRecord => ({ id: `w-${version}`, service: 'worker', version, host: '127.0.0.1', port: 1, metadata: {}, status: 'up', registeredAt: 0 })

/** Every pending callback, microtask and tick of this turn has run. */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

async function relayOn(t: Test): Promise<{ session: ManualSession; errors: Error[] }> {
  const session = new ManualSession()
  const route = buildServiceRoute(
    {
      name: 'worker',
      weights: new Map([
        ['v1', 9_000],
        ['v2', 1_000]
      ]),
      instances: new Map([
        ['w-v1', instance('v1')],
        ['w-v2', instance('v2')]
      ])
    },
    (record) => record
  )
  const table: RouteTable<unknown> = { revision: 1, services: new Map([['worker', route]]) }
  const errors: Error[] = []
  const relay = new TopicRelay({
    session,
    topic: { name: 'orders', service: 'worker' },
    config: parseMessageRouterConfig({ topics: [{ name: 'orders', service: 'worker' }] }, 'test'),
    tables: { table },
    metrics: new MessageMetrics(),
    onError: (error) => errors.push(error)
  })
  await relay.start()
  t.ok(session.publishes.length === 0, 'nothing published before deliveries')
  return { session, errors }
}

void t.test('a burst of confirms is acknowledged with one multiple ack, once the burst is handled', async (t) => {
  const { session } = await relayOn(t)
  session.deliver(Array.from({ length: 100 }, (_, index) => index + 1))
  await nextTurn()
  t.equal(session.publishes.length, 100, 'every delivery published without waiting for a confirm')
  t.same(session.settlements, [], 'nothing acknowledged before its confirm')
  for (const publish of session.publishes) publish.confirm()
  await nextTurn()
  t.same(session.settlements, ['ack 100 multiple'])
})

void t.test('confirms out of order: nothing is acknowledged past an unconfirmed delivery', async (t) => {
  const { session } = await relayOn(t)
  session.deliver([1, 2, 3])
  await nextTurn()
  session.publishes[1]?.confirm()
  session.publishes[2]?.confirm()
  await nextTurn()
  t.same(session.settlements, [], 'delivery 1 is not confirmed: 2 and 3 wait')
  session.publishes[0]?.confirm()
  await nextTurn()
  t.same(session.settlements, ['ack 3 multiple'])
})

void t.test('a refused publish is nacked at once, and no ack names it', async (t) => {
  const { session, errors } = await relayOn(t)
  session.deliver([1, 2, 3, 4])
  await nextTurn()
  session.publishes[1]?.refuse(new Error('nack from the broker'))
  await nextTurn()
  t.same(session.settlements, ['nack 2 requeue'], 'given back to the topic queue without waiting for 1')
  t.equal(errors.length, 1)
  session.publishes[0]?.confirm()
  session.publishes[2]?.confirm()
  await nextTurn()
  t.same(session.settlements, ['nack 2 requeue', 'ack 3 multiple'], 'one ack covers 1 and 3; 2 is no longer outstanding')
  session.publishes[3]?.refuse(new Error('nack from the broker'))
  await nextTurn()
  t.same(session.settlements, ['nack 2 requeue', 'ack 3 multiple', 'nack 4 requeue'], 'a refused last delivery is nacked, not acked')
})
