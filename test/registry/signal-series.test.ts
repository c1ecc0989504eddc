import t from 'tap'
import { LATENCY_BUCKETS } from '../../core/signals/counters.js'
import { startTestRegistry } from '../helpers/registry-harness.js'

/** A router's running totals for api: `ok` 2xx and `failed` 5xx answers of v1, all in the first latency bucket. */
function report(ok: number, failed: number) {
  const latency = new Array<number>(LATENCY_BUCKETS).fill(0)
  latency[0] = ok + failed
  return {
    kind: 'http',
    adminUrl: 'http://127.0.0.1:9901',
    appliedRevision: 1,
    startedAt: 1,
    services: { api: { v1: { statusClasses: [0, ok, 0, 0, failed], latency, messagesRouted: 0, messagesRejected: 0 } } }
  }
}

void t.test('GET /v1/services/:service/signals/series: the figures step by step, the last step ending now', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(() => reg.destroy())
  const registered = await reg.call('POST', '/v1/services/api/instances', { token: 'registrar', body: { id: 'a-1', version: 'v1', host: '127.0.0.1', port: 9 } })
  t.ok([200, 201].includes(registered.status), registered.text)
  // Whole seconds, so that the steps fall where this test says.
  reg.clock.advance(1_000 - (reg.clock.now() % 1_000))
  // The first report is the router's baseline; then 20 answers in the next 2 s, 10 (4 failed) in the 2 s after.
  const sends: [number, number][] = [
    [0, 0],
    [20, 0],
    [26, 4]
  ]
  for (const [ok, failed] of sends) {
    const answer = await reg.call('PUT', '/v1/routers/r1', { token: 'router', body: report(ok, failed) })
    t.equal(answer.status, 200, answer.text)
    reg.clock.advance(2_000)
  }
  const series = await reg.call('GET', '/v1/services/api/signals/series?window=8s&step=2s', { token: 'reader' })
  t.equal(series.status, 200, series.text)
  t.same([series.json.service, series.json.source, series.json.stepMs, series.json.history], ['api', 'routers', 2_000, true])
  const end = Math.floor(reg.clock.now() / 1_000) * 1_000
  t.same(
    series.json.points.map((point: { at: number }) => point.at),
    [end - 6_000, end - 4_000, end - 2_000, end],
    'four steps of 2 s, oldest first'
  )
  t.same(
    series.json.points.map((point: { versions: Record<string, { requests: number; errorRatePercent: number }> }) => [
      point.versions.v1?.requests ?? 0,
      point.versions.v1?.errorRatePercent ?? 0
    ]),
    [
      [0, 0],
      [20, 0],
      [10, 40],
      [0, 0]
    ],
    'each report counted in exactly one step'
  )

  const bad: [string, number, string][] = [
    ['step=500ms', 400, 'VALIDATION_FAILED'],
    ['window=4s&step=5s', 400, 'VALIDATION_FAILED'],
    ['window=2h&step=60s', 400, 'VALIDATION_FAILED'],
    ['window=900s&step=1s', 400, 'VALIDATION_FAILED'],
    ['step=soon', 400, 'VALIDATION_FAILED'],
    ['every=2s', 400, 'VALIDATION_FAILED']
  ]
  for (const [query, status, code] of bad) {
    const answer = await reg.call('GET', `/v1/services/api/signals/series?${query}`, { token: 'reader' })
    t.same([answer.status, answer.json.code], [status, code], query)
    t.type(answer.json.message, 'string')
  }
  const unknown = await reg.call('GET', '/v1/services/nope/signals/series', { token: 'reader' })
  t.same([unknown.status, unknown.json.code], [404, 'SERVICE_NOT_FOUND'])
  const anonymous = await reg.call('GET', '/v1/services/api/signals/series', { token: null })
  t.equal(anonymous.status, 401)
  const defaults = await reg.call('GET', '/v1/services/api/signals/series', { token: 'reader' })
  t.same([defaults.json.stepMs, defaults.json.points.length], [2_000, 150], 'by default 5 minutes in steps of 2 s')

  // Every service at once (the console's overview).
  const all = await reg.call('GET', '/v1/signals?window=8s', { token: 'reader' })
  t.equal(all.status, 200, all.text)
  t.same([all.json.windowMs, all.json.source, Object.keys(all.json.services)], [8_000, 'routers', ['api']])
  t.same([all.json.services.api.v1.requests, all.json.services.api.v1.errors], [30, 4], 'the whole window, every version')
  const quiet = await reg.call('GET', '/v1/signals?window=1s', { token: 'reader' })
  t.same(quiet.json.services, { api: { v1: { ...quiet.json.services.api.v1, requests: 0 } } }, 'a short window after the traffic: the version, with nothing in it')
  for (const query of ['window=0s', 'window=2h', 'window=later', 'service=api']) {
    const answer = await reg.call('GET', `/v1/signals?${query}`, { token: 'reader' })
    t.same([answer.status, answer.json.code], [400, 'VALIDATION_FAILED'], query)
  }
  t.equal((await reg.call('GET', '/v1/signals', { token: null })).status, 401)
})
