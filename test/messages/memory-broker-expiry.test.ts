import t from 'tap'
import { SwitchyardError } from '../../core/errors.js'
import type { Timers } from '../../core/timers.js'
import { MemoryBroker, MemoryBrokerAdapter } from '../../router/messages/brokers/memory-broker.js'
import { FakeTimers } from '../helpers/fake-timers.js'

const message = (body: string) => ({ body: Buffer.from(body), headers: { id: body } })
const bodies = (messages: { body: Buffer }[]) => messages.map((m) => m.body.toString())

/** A broker on a fake clock with a dead-letter queue `expired` behind `waiting` (TTL `ttlMs`). */
function brokerWithTtl(ttlMs: number, timers: Timers & { now: () => number } = new FakeTimers(0)) {
  const broker = new MemoryBroker({ clock: timers.now, timers })
  broker.declare('expired')
  broker.declare('waiting', { deadLetterQueue: 'expired', messageTtlMs: ttlMs })
  return broker
}

void t.test('messages expire exactly when their TTL runs out, in order, into the dead-letter queue', (t) => {
  const clock = new FakeTimers(0)
  const broker = brokerWithTtl(10, clock)
  const steps: { at: number; enqueue?: string; waiting: string[]; expired: string[] }[] = [
    { at: 0, enqueue: 'a', waiting: ['a'], expired: [] },
    { at: 1, enqueue: 'b', waiting: ['a', 'b'], expired: [] },
    { at: 5, enqueue: 'c', waiting: ['a', 'b', 'c'], expired: [] },
    { at: 9, waiting: ['a', 'b', 'c'], expired: [] },
    { at: 10, waiting: ['b', 'c'], expired: ['a'] },
    { at: 11, waiting: ['c'], expired: ['a', 'b'] },
    { at: 14, waiting: ['c'], expired: ['a', 'b'] },
    { at: 15, waiting: [], expired: ['a', 'b', 'c'] }
  ]
  const expired: string[] = []
  for (const step of steps) {
    clock.advance(step.at - clock.now())
    if (step.enqueue) broker.enqueue('waiting', message(step.enqueue))
    expired.push(...bodies(broker.drain('expired')))
    t.same(expired, step.expired, `at ${step.at} ms: expired`)
    t.equal(broker.depth('waiting'), step.waiting.length, `at ${step.at} ms: still waiting`)
  }
  t.equal(clock.nextDue, undefined, 'no timer left once the queue is empty')
  t.end()
})

void t.test('the dead-lettered message names the queue it expired in', (t) => {
  const clock = new FakeTimers(0)
  const broker = brokerWithTtl(2, clock)
  broker.enqueue('waiting', message('x'))
  clock.advance(2)
  const dead = broker.drain('expired')
  t.same(bodies(dead), ['x'])
  t.same(dead[0]?.headers, { id: 'x', 'x-first-death-queue': 'waiting' })
  t.end()
})

void t.test('a timer that fires before its message is due (real timers can, by up to a ms) re-arms instead of losing it', (t) => {
  const clock = new FakeTimers(0)
  // The first timer fires 1 ms early, as a monotonic timer can against a wall clock.
  let armed = 0
  const early: Timers & { now: () => number } = {
    now: clock.now,
    setTimeout: (callback, ms) => clock.setTimeout(callback, armed++ === 0 ? ms - 1 : ms),
    clearTimeout: clock.clearTimeout
  }
  const broker = brokerWithTtl(3, early)
  broker.enqueue('waiting', message('late'))
  clock.advance(2)
  t.equal(broker.depth('expired'), 0, 'not before it is due')
  clock.advance(1)
  t.same(bodies(broker.drain('expired')), ['late'], 'at its due time, by the next timer')
  t.end()
})

void t.test('a requeued message no longer expires; close() stops every timer', (t) => {
  const clock = new FakeTimers(0)
  const broker = brokerWithTtl(5, clock)
  broker.requeue('waiting', message('returned'))
  broker.enqueue('waiting', message('fresh'))
  clock.advance(5)
  t.same(bodies(broker.drain('expired')), [], 'the head (requeued) holds the queue: expiry looks at the head only, as RabbitMQ')
  broker.drain('waiting')
  broker.enqueue('waiting', message('pending'))
  broker.close()
  t.equal(clock.nextDue, undefined, 'the pending expiry timer is cleared')
  clock.advance(100)
  t.equal(broker.depth('expired'), 0)
  t.end()
})

void t.test('errors carry stable codes', async (t) => {
  const cases: { name: string; act: () => unknown; code: string }[] = [
    { name: 'a queue redeclared with other arguments', act: () => brokerWithTtl(10).declare('waiting', { messageTtlMs: 20 }), code: 'QUEUE_ARGUMENTS_CONFLICT' },
    { name: 'publishing to a queue nobody declared', act: () => new MemoryBroker().enqueue('nowhere', message('m')), code: 'QUEUE_NOT_FOUND' },
    { name: 'consuming from a queue nobody declared', act: () => new MemoryBrokerAdapter().connect().then((s) => s.consume('nowhere', 1, () => {})), code: 'QUEUE_NOT_FOUND' }
  ]
  for (const { name, act, code } of cases) {
    const error = await Promise.resolve()
      .then(act)
      .then(
        () => undefined,
        (thrown: unknown) => thrown
      )
    t.type(error, SwitchyardError, name)
    t.equal((error as SwitchyardError).code, code, name)
  }

  const adapter = new MemoryBrokerAdapter()
  const session = await adapter.connect()
  adapter.dropConnections()
  t.match(await session.ended, { code: 'BROKER_CONNECTION_LOST' }, 'a dropped connection ends the session with its code')
  await t.rejects(session.publish('any', message('m')), { code: 'BROKER_SESSION_CLOSED' }, 'a closed session refuses work')
})
