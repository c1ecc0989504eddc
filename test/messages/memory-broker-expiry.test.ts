import { performance } from 'node:perf_hooks'
import t from 'tap'
import { MemoryBroker } from '../../router/messages/brokers/memory-broker.js'

// Timers run on the monotonic clock and messages are due by Date.now(), each rounded to
// whole ms: a timer can fire just before its message is due. A message alone in its
// queue, enqueued at a scattered sub-millisecond offset, hits that case about once in
// twenty; each must still expire, well before its TTL runs out a hundred times over.
t.test('a message alone in a TTL queue expires even when its timer fires a little early', async (t) => {
  const broker = new MemoryBroker()
  t.teardown(() => broker.close())
  broker.declare('expired')
  broker.declare('waiting', { deadLetterQueue: 'expired', messageTtlMs: 2 })
  const trials = 100
  let stuck = 0
  for (let trial = 1; trial <= trials; trial++) {
    const until = performance.now() + Math.random()
    while (performance.now() < until) {
      // a random offset within the millisecond
    }
    broker.enqueue('waiting', { body: Buffer.from(String(trial)), headers: {} })
    const deadline = performance.now() + 200
    while (broker.depth('expired') < trial && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1))
    if (broker.depth('expired') < trial) {
      stuck++
      break
    }
  }
  t.equal(stuck, 0, 'no message was left waiting')
  t.equal(broker.depth('waiting'), 0)
})
