import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { countersOf } from '../helpers/signal-fixtures.js'
import { startTestRegistry, waitFor, type TestRegistry } from '../helpers/registry-harness.js'

async function registryWithApi(t: Test, options: { dataDir?: string } = {}): Promise<TestRegistry> {
  const reg = await startTestRegistry(options)
  t.teardown(() => reg.destroy())
  if (options.dataDir) return reg
  for (const [version, id] of [
    ['v1', 'a1'],
    ['v2', 'a2'],
    ['v3', 'a3']
  ] as const) {
    const answer = await reg.call('POST', '/v1/services/api/instances', { token: 'registrar', body: { version, host: '127.0.0.1', port: 10_000, id } })
    if (answer.status !== 201) throw new Error(answer.text)
  }
  await reg.call('PUT', '/v1/services/api/instances/a3/status', { token: 'registrar', body: { status: 'draining' } })
  return reg
}

function report(reg: TestRegistry, appliedRevision: number, services: Record<string, Record<string, ReturnType<typeof countersOf>>> = {}, startedAt = 1) {
  return reg.call('PUT', '/v1/routers/r1', { token: 'router', body: { kind: 'http', adminUrl: 'http://127.0.0.1:9901', appliedRevision, startedAt, services } })
}

void t.test('bad rollout requests get a 4xx with a code and change nothing', async (t) => {
  const reg = await registryWithApi(t)
  const before = await reg.call('GET', '/v1/services/api/weights', { token: 'reader' })
  const cases: { name: string; body: unknown; status: number; code: string; token?: 'reader' | 'apiOperator' | 'registrar'; service?: string }[] = [
    { name: 'no canary', body: {}, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'an unknown canary', body: { canary: 'v9' }, status: 409, code: 'VERSION_NOT_REGISTERED' },
    { name: 'a canary with no instance up', body: { canary: 'v3' }, status: 409, code: 'VERSION_NOT_UP' },
    { name: 'the canary as its own baseline', body: { canary: 'v2', baseline: 'v2' }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'an unknown baseline', body: { canary: 'v2', baseline: 'v8' }, status: 409, code: 'VERSION_NOT_REGISTERED' },
    { name: 'steps going down', body: { canary: 'v2', steps: [5, 1] }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'a step of 0', body: { canary: 'v2', steps: [0, 50] }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'a step above 100', body: { canary: 'v2', steps: [50, 101] }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'a step with 3 decimals', body: { canary: 'v2', steps: [0.125] }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'no steps', body: { canary: 'v2', steps: [] }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'an interval as text', body: { canary: 'v2', intervalSeconds: '30s' }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'an unknown field', body: { canary: 'v2', speed: 'fast' }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'an unknown analysis field', body: { canary: 'v2', analysis: { maxErrors: 1 } }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'minRequests of 0', body: { canary: 'v2', analysis: { minRequests: 0 } }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'an error rate above 100%', body: { canary: 'v2', analysis: { maxErrorRatePercent: 150 } }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'a notify URL that is not http', body: { canary: 'v2', notify: 'ftp://hooks.example' }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'a failure limit of 0', body: { canary: 'v2', failureLimit: 0 }, status: 400, code: 'VALIDATION_FAILED' },
    { name: 'an unknown service', body: { canary: 'v2' }, status: 404, code: 'SERVICE_NOT_FOUND', service: 'billing' },
    { name: 'a reader', body: { canary: 'v2' }, status: 403, code: 'FORBIDDEN', token: 'reader' },
    { name: 'a registrar', body: { canary: 'v2' }, status: 403, code: 'FORBIDDEN', token: 'registrar' },
    { name: "an operator of another service's token", body: { canary: 'v2' }, status: 403, code: 'FORBIDDEN', token: 'apiOperator', service: 'billing' }
  ]
  for (const c of cases) {
    const answer = await reg.call('POST', `/v1/services/${c.service ?? 'api'}/rollout`, { token: c.token ?? 'operator', body: c.body })
    t.equal(answer.status, c.status, `${c.name}: ${answer.text.slice(0, 160)}`)
    t.equal(answer.json?.code, c.code, c.name)
    t.type(answer.json?.message, 'string')
  }
  const none = await reg.call('GET', '/v1/services/api/rollout', { token: 'reader' })
  t.equal(none.status, 404)
  t.equal(none.json.code, 'ROLLOUT_NOT_FOUND')
  const command = await reg.call('POST', '/v1/services/api/rollout/pause', { token: 'operator' })
  t.equal(command.json.code, 'ROLLOUT_NOT_FOUND')
  const unknownCommand = await reg.call('POST', '/v1/services/api/rollout/skip', { token: 'operator' })
  t.equal(unknownCommand.status, 400)
  t.equal(unknownCommand.json.code, 'VALIDATION_FAILED')
  const after = await reg.call('GET', '/v1/services/api/weights', { token: 'reader' })
  t.same(after.json, before.json, 'weights and revision unchanged')
  t.same((await reg.call('GET', '/v1/rollouts', { token: 'reader' })).json, { rollouts: [] })

  // A third version holding weight: the rollout would take its share, so it is refused.
  await reg.call('PUT', '/v1/services/api/weights', { token: 'operator', body: { weights: { v1: 90, v3: 10 } } })
  const third = await reg.call('POST', '/v1/services/api/rollout', { token: 'operator', body: { canary: 'v2' } })
  t.equal(third.status, 409)
  t.equal(third.json.code, 'OTHER_VERSIONS_WEIGHTED')
  t.match(third.json.message, /v3 holds 10%/)
})

void t.test('the controller waits for every router, judges one interval, steps; one rollout at a time; durable', async (t) => {
  const reg = await registryWithApi(t)
  const started = await reg.call('POST', '/v1/services/api/rollout', {
    token: 'operator',
    body: { canary: 'v2', steps: [10, 100], intervalSeconds: 30, analysis: { minRequests: 50 } }
  })
  t.equal(started.status, 201, started.text)
  t.match(started.json, { service: 'api', phase: 'progressing', step: 1, canaryWeight: 10, spec: { baseline: 'v1', canary: 'v2', failureLimit: 2, progressDeadlineSeconds: 600 } })
  const awaiting = started.json.awaitingRevision as number
  t.equal(awaiting, reg.registry.revision - 1, 'it waits for the revision of its own weights')
  t.same((await reg.call('GET', '/v1/services/api/weights', { token: 'reader' })).json.weights, { v1: 90, v2: 10, v3: 0 })
  const second = await reg.call('POST', '/v1/services/api/rollout', { token: 'operator', body: { canary: 'v2' } })
  t.equal(second.status, 409)
  t.equal(second.json.code, 'ROLLOUT_ACTIVE')

  // A router still on an older table holds the window back.
  t.equal((await report(reg, awaiting - 1)).status, 200)
  await reg.app.rollouts.tick()
  let state = (await reg.call('GET', '/v1/services/api/rollout', { token: 'reader' })).json
  t.equal(state.windowStartedAt, null)
  t.same(state.routersBehind, ['r1'])
  await report(reg, awaiting)
  await reg.app.rollouts.tick()
  state = (await reg.call('GET', '/v1/services/api/rollout', { token: 'reader' })).json
  t.equal(state.windowStartedAt, reg.clock.nowMs, 'the window starts once every router applied the step')
  t.equal(state.nextDecisionInSeconds, 30)

  // Traffic inside the window, then the interval passes.
  reg.clock.advance(10_000)
  await report(reg, awaiting, { api: { v1: countersOf({ ok: 900 }), v2: countersOf({ ok: 100 }) } })
  reg.clock.advance(20_000)
  await reg.app.rollouts.tick()
  state = (await reg.call('GET', '/v1/services/api/rollout', { token: 'reader' })).json
  t.equal(state.step, 2, state.reason)
  t.match(state.history, [{ stepIndex: 0, weight: 10, verdict: 'passed', canary: { requests: 100, errorRatePercent: 0 }, baseline: { requests: 900 } }])
  t.same((await reg.call('GET', '/v1/services/api/weights', { token: 'reader' })).json.weights, { v1: 0, v2: 100, v3: 0 })

  const metrics = (await reg.call('GET', '/metrics', { token: null })).text
  t.match(metrics, /switchyard_rollout_state\{service="api"\} 1/)
  t.match(metrics, /switchyard_rollout_canary_weight\{service="api"\} 100/)
  t.match(metrics, /switchyard_rollout_steps_judged_total\{service="api",verdict="passed"\} 1/)
  const history = (await reg.call('GET', '/v1/services/api/history', { token: 'reader' })).json.history as { actor: string; to: Record<string, number> }[]
  t.same(
    history.filter((entry) => entry.actor.startsWith('rollout')).map((entry) => entry.to),
    [
      { v1: 90, v2: 10 },
      { v1: 0, v2: 100 }
    ]
  )

  // A restart keeps the rollout at its step, with its window to collect again.
  const dataDir = reg.dataDir
  await reg.close()
  const reopened = await startTestRegistry({ dataDir, clock: reg.clock })
  t.teardown(() => reopened.destroy())
  const after = (await reopened.call('GET', '/v1/services/api/rollout', { token: 'reader' })).json
  t.match(after, { phase: 'progressing', step: 2, canaryWeight: 100, windowStartedAt: null, awaitingRevision: reopened.registry.revision })
  t.equal(after.history.length, 1)
  const aborted = await reopened.call('POST', '/v1/services/api/rollout/abort', { token: 'operator' })
  t.equal(aborted.json.phase, 'aborted')
  t.same((await reopened.call('GET', '/v1/services/api/weights', { token: 'reader' })).json.weights, { v1: 100, v2: 0, v3: 0 })
  const again = await reopened.call('POST', '/v1/services/api/rollout', { token: 'operator', body: { canary: 'v2' } })
  t.equal(again.status, 201, 'a finished rollout leaves room for the next')
})

void t.test('notify: every state change is POSTed, retried when the hook fails, and never holds the rollout up', async (t) => {
  const received: { event: string; phase: string }[] = []
  let calls = 0
  const hook = createServer((request, response) => {
    let body = ''
    request.on('data', (chunk: Buffer) => (body += chunk.toString()))
    request.on('end', () => {
      calls++
      // The first delivery fails: the notifier must retry it.
      if (calls === 1) {
        response.statusCode = 503
        return response.end()
      }
      received.push(JSON.parse(body) as { event: string; phase: string })
      response.end()
    })
  })
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => hook.close(() => resolve())))
  const reg = await registryWithApi(t)
  const notify = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hooks/rollouts?secret=s3cr3t`
  const started = await reg.call('POST', '/v1/services/api/rollout', { token: 'operator', body: { canary: 'v2', notify } })
  t.equal(started.status, 201)
  const paused = await reg.call('POST', '/v1/services/api/rollout/pause', { token: 'operator' })
  // Pause is idempotent: a second one answers the rollout as it is, and nobody is told again.
  const pausedAgain = await reg.call('POST', '/v1/services/api/rollout/pause', { token: 'admin' })
  t.equal(pausedAgain.status, 200)
  t.same([pausedAgain.json.phase, pausedAgain.json.reason, pausedAgain.json.updatedAt], [paused.json.phase, paused.json.reason, paused.json.updatedAt], 'the first reason stays')
  await reg.call('POST', '/v1/services/api/rollout/promote', { token: 'operator' })
  await waitFor(() => (received.length >= 3 ? true : undefined), 'three notifications')
  t.same(
    received.map((n) => [n.event, n.phase]),
    [
      ['started', 'progressing'],
      ['paused', 'paused'],
      ['promoted', 'promoted']
    ],
    'in order, the first after a retry'
  )
  t.notOk(reg.logs.join('').includes('s3cr3t'), "the hook's secret never reaches the logs")
})
