import t from 'tap'
import { LoadGenerator } from '../../cli/load-generator.js'
import { startProcessMesh } from '../helpers/mesh-processes.js'
import { waitFor } from '../helpers/registry-harness.js'

void t.test('a queue consumer that rejects 30% of messages is rolled back on its reject rate', async (t) => {
  const mesh = await startProcessMesh()
  t.teardown(() => mesh.close())
  // One process: the in-memory broker, the message router and orders-worker v1 and v2.
  const plane = await mesh.startMessagePlane({ rejectRates: 'v2=0.3' })
  await mesh.client.setWeights('orders-worker', { v1: 100, v2: 0 })
  const producer = new LoadGenerator({
    url: `${plane.adminUrl}/v1/topics/orders/messages`,
    rps: 150,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ item: 'book', quantity: 1 }),
    maxInFlight: 64
  })
  void producer.run()
  t.teardown(() => producer.stop())

  await mesh.client.startRollout('orders-worker', { canary: 'v2', intervalSeconds: 1, steps: [20, 50, 100], analysis: { minRequests: 20 }, progressDeadlineSeconds: 20 })
  const rollout = await waitFor(
    async () => {
      const state = await mesh.client.rollout('orders-worker')
      return state.phase === 'progressing' ? undefined : state
    },
    'the queue rollout to end',
    60_000
  )
  t.equal(rollout.phase, 'rolled-back', rollout.reason)
  t.match(rollout.reason, /reject rate/)
  const failed = rollout.history.filter((record) => record.verdict === 'failed')
  t.equal(failed.length, 2)
  for (const record of failed) {
    t.ok(record.canary.messagesRouted >= 20, `judged on ${record.canary.messagesRouted} messages`)
    t.ok(record.canary.rejectRatePercent > 10, `canary reject rate ${record.canary.rejectRatePercent}%`)
  }
  t.same((await mesh.client.weights('orders-worker')).weights, { v1: 100, v2: 0 })
  const signals = await mesh.client.signals('orders-worker', '60s')
  t.ok((signals.versions.v2?.messagesRejected ?? 0) > 0, 'the signals endpoint shows the rejected messages per version')
  t.equal(signals.versions.v1?.messagesRejected ?? 0, 0)
  const routers = await mesh.client.routers()
  t.ok(
    routers.routers.some((router) => router.kind === 'messages'),
    'the message router reports as kind "messages"'
  )
})
