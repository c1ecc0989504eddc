import t, { type Test } from 'tap'
import { LoadGenerator } from '../../cli/load-generator.js'
import type { RegistryRequestError } from '../../registry/client/registry-client.js'
import { startProcessMesh, type ProcessMesh } from '../helpers/mesh-processes.js'
import { waitFor } from '../helpers/registry-harness.js'

/**
 * Short steps so a rollout ends in seconds; the rules are the same as with minutes. The
 * latency limits are wide: on a loaded test machine the p99 of two identical versions
 * differs by 1.5x often enough (the latency rules have exact unit tests in core).
 */
const FAST = { intervalSeconds: 1, steps: [10, 50, 100], analysis: { minRequests: 20, maxP99Ms: 10_000, maxLatencyRatio: 20 }, progressDeadlineSeconds: 20 }

async function meshWithApi(t: Test, canaryErrorRate = 0): Promise<{ mesh: ProcessMesh; router: Awaited<ReturnType<ProcessMesh['startRouter']>> }> {
  const mesh = await startProcessMesh()
  t.teardown(() => mesh.close())
  await mesh.startApi('v1.3')
  await mesh.startApi('v1.4', { errorRate: canaryErrorRate })
  const router = await mesh.startRouter()
  return { mesh, router }
}

function load(t: Test, url: string, rps = 150): LoadGenerator {
  const generator = new LoadGenerator({ url, rps, method: 'GET', headers: {}, maxInFlight: 64 })
  void generator.run()
  t.teardown(() => generator.stop())
  return generator
}

async function finished(mesh: ProcessMesh, service: string, timeoutMs = 60_000) {
  return waitFor(
    async () => {
      const rollout = await mesh.client.rollout(service)
      return ['promoted', 'rolled-back', 'aborted', 'paused'].includes(rollout.phase) ? rollout : undefined
    },
    `the rollout of ${service} to finish or pause`,
    timeoutMs
  )
}

void t.test('a healthy canary is promoted through every step, each judged on its own window', async (t) => {
  const { mesh, router } = await meshWithApi(t)
  load(t, `${router.proxyUrl}/api/hello`)
  const started = await mesh.client.startRollout('api', { canary: 'v1.4', ...FAST })
  t.equal(started.spec.baseline, 'v1.3', 'the baseline defaults to the version holding the most weight')
  t.equal(started.canaryWeight, 10)
  const rollout = await finished(mesh, 'api')
  t.equal(rollout.phase, 'promoted', rollout.reason)
  t.same(
    rollout.history.map((record) => [record.weight, record.verdict]),
    [
      [10, 'passed'],
      [50, 'passed'],
      [100, 'passed']
    ]
  )
  for (const record of rollout.history) t.ok(record.canary.requests >= 20, `step at ${record.weight}% judged on ${record.canary.requests} canary requests`)
  const weights = await mesh.routerWeights(router.adminUrl, 'api')
  t.same([weights['v1.4'], weights['v1.3'] ?? 0], [100, 0], 'the router gives the canary everything')
  const history = await mesh.client.history('api')
  const byRollout = history.history.filter((entry) => entry.actor.startsWith('rollout'))
  t.same(
    byRollout.map((entry) => entry.to['v1.4']),
    [10, 50, 100],
    'every weight change went through the audited write path as "rollout"'
  )
})

void t.test('a canary answering 20% errors is rolled back, and every router has it at 0', async (t) => {
  const { mesh, router } = await meshWithApi(t, 0.2)
  const second = await mesh.startRouter()
  load(t, `${router.proxyUrl}/api/hello`)
  load(t, `${second.proxyUrl}/api/hello`)
  await mesh.client.startRollout('api', { canary: 'v1.4', ...FAST, steps: [25, 50, 100] })
  const rollout = await finished(mesh, 'api')
  t.equal(rollout.phase, 'rolled-back', rollout.reason)
  t.equal(rollout.failures, 2)
  t.match(rollout.reason, /error rate/)
  t.equal(rollout.history.length, 2, 'two failed steps, no more')
  t.ok(rollout.history.every((record) => record.verdict === 'failed' && record.weight === 25))
  for (const adminUrl of [router.adminUrl, second.adminUrl]) {
    await waitFor(async () => {
      const weights = await mesh.routerWeights(adminUrl, 'api')
      return weights['v1.3'] === 100 && (weights['v1.4'] ?? 0) === 0 ? true : undefined
    }, `${adminUrl} at v1.4=0`)
  }
  t.pass('both routers give the canary nothing')
})

void t.test('without traffic a rollout is never promoted: it pauses with insufficient-traffic', async (t) => {
  const { mesh } = await meshWithApi(t)
  await mesh.client.startRollout('api', { canary: 'v1.4', ...FAST, progressDeadlineSeconds: 3 })
  const rollout = await finished(mesh, 'api')
  t.equal(rollout.phase, 'paused')
  t.match(rollout.reason, /^insufficient-traffic/)
  t.equal(rollout.stepIndex, 0, 'still at its first step')
  t.notOk(
    rollout.history.some((record) => record.verdict === 'passed'),
    'no step passed'
  )
})

void t.test('a manual weight change pauses the rollout, naming who made it', async (t) => {
  const { mesh, router } = await meshWithApi(t)
  load(t, `${router.proxyUrl}/api/hello`, 50)
  await mesh.client.startRollout('api', { canary: 'v1.4', ...FAST, intervalSeconds: 30 })
  await mesh.client.setWeights('api', { 'v1.3': 100, 'v1.4': 0 })
  const rollout = await mesh.client.rollout('api')
  t.equal(rollout.phase, 'paused')
  t.match(rollout.reason, /manual-change: weights changed by admin/)
  const resumed = await mesh.client.rolloutCommand('api', 'resume')
  t.equal(resumed.phase, 'progressing')
  t.same((await mesh.client.weights('api')).weights, { 'v1.3': 90, 'v1.4': 10 }, 'resume sets the step weights again')
  const aborted = await mesh.client.rolloutCommand('api', 'abort')
  t.equal(aborted.phase, 'aborted')
  t.same((await mesh.client.weights('api')).weights, { 'v1.3': 100, 'v1.4': 0 })
  const again = await mesh.client.rolloutCommand('api', 'pause').catch((error: RegistryRequestError) => error)
  t.equal((again as RegistryRequestError).code, 'ROLLOUT_NOT_ACTIVE')
})

void t.test('a rollout survives a registry crash and continues from its step', async (t) => {
  const { mesh, router } = await meshWithApi(t)
  load(t, `${router.proxyUrl}/api/hello`)
  await mesh.client.startRollout('api', { canary: 'v1.4', ...FAST, intervalSeconds: 2, steps: [10, 50, 100] })
  await waitFor(async () => ((await mesh.client.rollout('api')).stepIndex >= 1 ? true : undefined), 'the rollout at its second step', 30_000)
  await mesh.restartRegistry()
  const after = await mesh.client.rollout('api')
  t.ok(after.stepIndex >= 1, `continues at step ${after.step}`)
  t.ok(['progressing', 'promoted'].includes(after.phase))
  const rollout = await finished(mesh, 'api')
  t.equal(rollout.phase, 'promoted', rollout.reason)
  t.equal(rollout.history.filter((record) => record.weight === 10 && record.verdict === 'passed').length, 1, 'the step passed before the crash was not judged again')
})
