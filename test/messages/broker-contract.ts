import type { Test } from 'tap'
import type { BrokerAdapter, BrokerSession, Delivery, OutgoingMessage, QueueOptions } from '../../router/messages/brokers/broker.js'
import { waitFor } from '../helpers/registry-harness.js'
import { uniqueName } from './helpers.js'

/** One broker under test: the contract is the same for every adapter. */
export interface ContractTarget {
  adapter: BrokerAdapter
  /** removes queues a test declared (after its sessions are closed) */
  deleteQueues(names: string[]): Promise<void>
  /** ends every session of the adapter as a network failure would */
  dropConnections(): Promise<void>
}

interface Received {
  deliveries: Delivery[]
}

/** Consumes without acknowledging: the test decides what to settle. */
async function consumeInto(session: BrokerSession, queue: string, prefetch: number): Promise<Received> {
  const received: Received = { deliveries: [] }
  await session.consume(queue, prefetch, (delivery) => received.deliveries.push(delivery))
  return received
}

const text = (delivery: Delivery | undefined) => delivery?.body.toString('utf8')

function message(body: string, extra: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return { body: Buffer.from(body), headers: {}, messageId: body, ...extra }
}

/**
 * What the message router relies on from a broker adapter, checked the same way
 * against each one. Every test uses queues of its own and removes them afterwards.
 */
export function brokerContract(t: Test, target: ContractTarget): void {
  const { adapter } = target

  /** Sessions and queues of one test, closed and deleted in its teardown. */
  function fixture(t: Test) {
    const sessions: BrokerSession[] = []
    const queues: string[] = []
    t.teardown(async () => {
      await Promise.all(sessions.map((session) => session.close().catch(() => {})))
      await target.deleteQueues(queues)
    })
    return {
      async session(): Promise<BrokerSession> {
        const session = await adapter.connect()
        sessions.push(session)
        return session
      },
      async queue(session: BrokerSession, options?: QueueOptions, label = 'q'): Promise<string> {
        const name = uniqueName(`contract-${label}-`)
        queues.push(name)
        await session.declareQueue(name, options)
        return name
      }
    }
  }

  void t.test('publish resolves on confirm and consume delivers the message intact', async (t) => {
    const f = fixture(t)
    const session = await f.session()
    const queue = await f.queue(session)
    await session.declareQueue(queue) // declaring again with the same options is fine
    const body = Buffer.concat([Buffer.from('{"order":"héllo"}', 'utf8'), Buffer.from([0, 1, 254, 255])])
    const sent: OutgoingMessage = {
      body,
      headers: {
        'x-text': 'héllo wörld',
        'x-int': 42,
        'x-negative': -7,
        'x-float': 1.5,
        'x-yes': true,
        'x-no': false,
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
      },
      messageId: 'message-1',
      contentType: 'application/json',
      correlationId: 'correlation-1',
      timestamp: 1_700_000_000
    }
    const confirmed = await session.publish(queue, sent)
    t.equal(confirmed, undefined, 'publish resolves (the broker confirmed it)')
    const received = await consumeInto(session, queue, 10)
    const delivery = await waitFor(() => received.deliveries[0], 'the delivery')
    t.ok(delivery.body.equals(body), 'body bytes intact')
    t.same(delivery.headers, sent.headers, 'headers intact, with their types')
    t.equal(delivery.messageId, 'message-1')
    t.equal(delivery.contentType, 'application/json')
    t.equal(delivery.correlationId, 'correlation-1')
    t.equal(delivery.timestamp, 1_700_000_000)
    t.equal(delivery.queue, queue)
    t.equal(delivery.redelivered, false)
    t.type(delivery.tag, 'number')
    session.ack(delivery.tag, false)
  })

  void t.test('one queue delivers in publish order', async (t) => {
    const f = fixture(t)
    const session = await f.session()
    const queue = await f.queue(session)
    await Promise.all(Array.from({ length: 200 }, (_, index) => session.publish(queue, message(`m${index}`))))
    const received = await consumeInto(session, queue, 1_000)
    await waitFor(() => (received.deliveries.length >= 200 ? true : undefined), '200 deliveries')
    t.same(
      received.deliveries.map(text),
      Array.from({ length: 200 }, (_, index) => `m${index}`)
    )
    const last = received.deliveries.at(-1) as Delivery
    session.ack(last.tag, true)
  })

  void t.test('prefetch limits unacknowledged deliveries per consumer', async (t) => {
    const f = fixture(t)
    const a = await f.session()
    const queue = await f.queue(a)
    for (let index = 0; index < 10; index++) await a.publish(queue, message(`m${index}`))
    const first = await consumeInto(a, queue, 3)
    await waitFor(() => (first.deliveries.length >= 3 ? true : undefined), 'three deliveries to the first consumer')
    // A second consumer with room takes everything the first may not hold.
    const b = await f.session()
    const second = await consumeInto(b, queue, 100)
    await waitFor(() => (second.deliveries.length >= 7 ? true : undefined), 'seven deliveries to the second consumer')
    t.equal(first.deliveries.length, 3, 'the first consumer never held more than its prefetch')
    t.equal(second.deliveries.length, 7)
    t.same([...first.deliveries, ...second.deliveries].map(text).sort(), Array.from({ length: 10 }, (_, index) => `m${index}`).sort(), 'each message delivered once')
    // Acking opens room: the first consumer takes the next message.
    a.ack((first.deliveries[2] as Delivery).tag, true)
    b.ack((second.deliveries[6] as Delivery).tag, true)
    await b.close()
    for (let index = 10; index < 14; index++) await a.publish(queue, message(`m${index}`))
    await waitFor(() => (first.deliveries.length >= 6 ? true : undefined), 'three more deliveries after the ack')
    t.same(first.deliveries.slice(3).map(text), ['m10', 'm11', 'm12'], 'again exactly prefetch-many, in order')
  })

  void t.test('ack with multiple acknowledges every earlier delivery', async (t) => {
    const f = fixture(t)
    const a = await f.session()
    const queue = await f.queue(a)
    for (let index = 1; index <= 5; index++) await a.publish(queue, message(`m${index}`))
    const received = await consumeInto(a, queue, 10)
    await waitFor(() => (received.deliveries.length >= 5 ? true : undefined), 'five deliveries')
    a.ack((received.deliveries[3] as Delivery).tag, true) // m1..m4
    await a.close()
    const b = await f.session()
    const again = await consumeInto(b, queue, 10)
    const returned = await waitFor(() => again.deliveries[0], 'the unacknowledged message back')
    t.equal(text(returned), 'm5', 'only the message after the multiple ack came back')
    t.equal(returned.redelivered, true)
    await b.publish(queue, message('marker'))
    await waitFor(() => (again.deliveries.some((d) => text(d) === 'marker') ? true : undefined), 'the marker')
    t.same(again.deliveries.map(text), ['m5', 'marker'], 'm1..m4 stayed acknowledged')
    b.ack((again.deliveries[1] as Delivery).tag, true)
  })

  void t.test('nack with requeue gives the message back, marked redelivered', async (t) => {
    const f = fixture(t)
    const session = await f.session()
    const queue = await f.queue(session)
    await session.publish(queue, message('again', { headers: { 'x-n': 1 } }))
    const received = await consumeInto(session, queue, 1)
    const first = await waitFor(() => received.deliveries[0], 'the first delivery')
    t.equal(first.redelivered, false)
    session.nack(first.tag, true)
    const second = await waitFor(() => received.deliveries[1], 'the redelivery')
    t.equal(text(second), 'again')
    t.equal(second.messageId, 'again')
    t.same(second.headers, { 'x-n': 1 })
    t.equal(second.redelivered, true)
    t.not(second.tag, first.tag, 'a new delivery tag')
    session.ack(second.tag, false)
  })

  void t.test("nack without requeue dead-letters to the queue's deadLetterQueue", async (t) => {
    const f = fixture(t)
    const session = await f.session()
    const dlq = await f.queue(session, undefined, 'dlq')
    const queue = await f.queue(session, { deadLetterQueue: dlq })
    await session.publish(queue, message('poison', { headers: { 'x-why': 'bad' }, contentType: 'text/plain' }))
    const received = await consumeInto(session, queue, 1)
    const delivery = await waitFor(() => received.deliveries[0], 'the delivery')
    session.nack(delivery.tag, false)
    const dead = await consumeInto(session, dlq, 10)
    const deadDelivery = await waitFor(() => dead.deliveries[0], 'the dead-lettered message')
    t.equal(text(deadDelivery), 'poison')
    t.equal(deadDelivery.messageId, 'poison')
    t.equal(deadDelivery.contentType, 'text/plain')
    t.equal(deadDelivery.headers['x-why'], 'bad', 'headers travel to the dead-letter queue')
    t.equal(received.deliveries.length, 1, 'not delivered again from the source queue')
    session.ack(deadDelivery.tag, false)
  })

  void t.test('a queue with messageTtlMs moves expired messages to its deadLetterQueue (delayed requeue)', async (t) => {
    const f = fixture(t)
    const session = await f.session()
    const target = await f.queue(session, undefined, 'target')
    const wait = await f.queue(session, { deadLetterQueue: target, messageTtlMs: 100 }, 'wait')
    for (let index = 0; index < 3; index++) await session.publish(wait, message(`later${index}`, { headers: { 'x-attempts': index } }))
    const received = await consumeInto(session, target, 10)
    await waitFor(() => (received.deliveries.length >= 3 ? true : undefined), 'the expired messages in the target queue')
    t.same(received.deliveries.map(text), ['later0', 'later1', 'later2'], 'in order')
    t.same(
      received.deliveries.map((d) => d.headers['x-attempts']),
      [0, 1, 2],
      'headers kept'
    )
    session.ack((received.deliveries[2] as Delivery).tag, true)
  })

  void t.test('closing a session returns its unacknowledged messages, redelivered, to another session', async (t) => {
    const f = fixture(t)
    const a = await f.session()
    const queue = await f.queue(a)
    for (let index = 0; index < 3; index++) await a.publish(queue, message(`m${index}`))
    const held = await consumeInto(a, queue, 10)
    await waitFor(() => (held.deliveries.length >= 3 ? true : undefined), 'three deliveries')
    await a.close()
    const b = await f.session()
    const again = await consumeInto(b, queue, 10)
    await waitFor(() => (again.deliveries.length >= 3 ? true : undefined), 'the three messages back')
    t.same(again.deliveries.map(text), ['m0', 'm1', 'm2'], 'all of them, in order')
    t.ok(
      again.deliveries.every((d) => d.redelivered),
      'each marked redelivered'
    )
    b.ack((again.deliveries[2] as Delivery).tag, true)
  })

  void t.test('two consumers on one session, started together, are acknowledged independently', async (t) => {
    const f = fixture(t)
    const session = await f.session()
    const q1 = await f.queue(session, undefined, 'one')
    const q2 = await f.queue(session, undefined, 'two')
    const [one, two] = await Promise.all([consumeInto(session, q1, 5), consumeInto(session, q2, 5)])
    for (let index = 0; index < 4; index++) await Promise.all([session.publish(q1, message(`a${index}`)), session.publish(q2, message(`b${index}`))])
    await waitFor(() => (one.deliveries.length >= 4 && two.deliveries.length >= 4 ? true : undefined), 'both consumers served')
    for (const delivery of [...one.deliveries, ...two.deliveries]) session.ack(delivery.tag, false)
    // The session is still healthy: acks named real deliveries.
    await session.publish(q1, message('after'))
    await waitFor(() => (one.deliveries.length >= 5 ? true : undefined), 'a delivery after the acks')
    t.equal(text(one.deliveries[4]), 'after')
    session.ack((one.deliveries[4] as Delivery).tag, false)
    const ended = await Promise.race([session.ended, Promise.resolve('open' as const)])
    t.equal(ended, 'open', 'the session did not end')
  })

  void t.test('a multiple ack covers its own consumer only, never another queue consumed in the session', async (t) => {
    const f = fixture(t)
    const session = await f.session()
    const q1 = await f.queue(session, undefined, 'mine')
    const q2 = await f.queue(session, undefined, 'other')
    const one = await consumeInto(session, q1, 10)
    const two = await consumeInto(session, q2, 10)
    // Interleaved, so that the other queue's deliveries fall between this queue's.
    for (let index = 0; index < 3; index++) {
      await session.publish(q2, message(`other${index}`))
      await session.publish(q1, message(`mine${index}`))
    }
    await waitFor(() => (one.deliveries.length >= 3 && two.deliveries.length >= 3 ? true : undefined), 'both consumers served')
    session.ack((one.deliveries[2] as Delivery).tag, true)
    // The other queue's deliveries were never settled: a dropped session gives them back.
    await target.dropConnections()
    const checker = await f.session()
    const back = await consumeInto(checker, q2, 10)
    await waitFor(() => (back.deliveries.length >= 3 ? true : undefined), "the other queue's messages back")
    t.same(back.deliveries.map(text).sort(), ['other0', 'other1', 'other2'], "the other queue's unacknowledged messages survived the multiple ack")
    const mine = await consumeInto(checker, q1, 10)
    await checker.publish(q1, message('marker'))
    await waitFor(() => (mine.deliveries.some((delivery) => text(delivery) === 'marker') ? true : undefined), 'the marker')
    t.same(mine.deliveries.map(text), ['marker'], "this queue's acknowledged messages are gone")
    for (const delivery of [...back.deliveries, ...mine.deliveries]) checker.ack(delivery.tag, false)
  })

  void t.test('declaring a queue again with other options fails and ends the session; the same options are fine', async (t) => {
    const f = fixture(t)
    const session = await f.session()
    const queue = await f.queue(session, { messageTtlMs: 60_000 }, 'redeclare')
    await session.declareQueue(queue, { messageTtlMs: 60_000 })
    t.pass('the same options again: accepted')
    await t.rejects(session.declareQueue(queue, { messageTtlMs: 30_000 }), 'other options: rejected')
    const reason = await session.ended
    t.ok(reason instanceof Error, 'the session ended with the error')
    const next = await f.session()
    await next.declareQueue(queue, { messageTtlMs: 60_000 })
    t.pass('a new session declares it with its own options')
  })

  void t.test('ended resolves on close, and a closed session refuses work', async (t) => {
    const f = fixture(t)
    const session = await f.session()
    const queue = await f.queue(session)
    await session.publish(queue, message('held'))
    const received = await consumeInto(session, queue, 10)
    const held = await waitFor(() => received.deliveries[0], 'the delivery')
    await session.close()
    t.equal(await session.ended, undefined, 'closed on purpose: no error')
    t.doesNotThrow(() => session.ack(held.tag, true), 'ack after close is a no-op')
    t.doesNotThrow(() => session.nack(held.tag, false), 'nack after close is a no-op')
    await t.rejects(session.publish(queue, message('too late')), 'publish after close rejects')
    await t.rejects(session.declareQueue(uniqueName('contract-never-')), 'declare after close rejects')
  })

  void t.test('a dropped connection ends the session with an error and returns its messages', async (t) => {
    const f = fixture(t)
    const a = await f.session()
    const queue = await f.queue(a)
    for (let index = 0; index < 3; index++) await a.publish(queue, message(`m${index}`))
    const held = await consumeInto(a, queue, 10)
    await waitFor(() => (held.deliveries.length >= 3 ? true : undefined), 'three deliveries')
    await target.dropConnections()
    const reason = await a.ended
    t.type(reason, Error, 'ended resolves with the reason')
    // A confirm that resolved just before the drop leads to an ack on the dead session:
    // it must be a no-op (the broker returns those messages anyway), never a throw.
    t.doesNotThrow(() => a.ack((held.deliveries[0] as Delivery).tag, false), 'ack after the drop is a no-op')
    t.doesNotThrow(() => a.nack((held.deliveries[1] as Delivery).tag, true), 'nack after the drop is a no-op')
    t.doesNotThrow(() => a.ack((held.deliveries[2] as Delivery).tag, true), 'multiple ack after the drop is a no-op')
    const b = await f.session()
    const again = await consumeInto(b, queue, 10)
    await waitFor(() => (again.deliveries.length >= 3 ? true : undefined), 'the three messages back')
    t.same(again.deliveries.map(text), ['m0', 'm1', 'm2'])
    t.ok(
      again.deliveries.every((d) => d.redelivered),
      'each marked redelivered'
    )
    b.ack((again.deliveries[2] as Delivery).tag, true)
  })
}
