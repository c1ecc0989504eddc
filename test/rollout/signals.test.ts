import t from 'tap'
import { request } from 'undici'
import { LATENCY_BUCKETS } from '../../core/signals/counters.js'
import { startTestMesh } from '../helpers/router-harness.js'
import { TOKENS, waitFor } from '../helpers/registry-harness.js'

void t.test('routers report what they applied and saw; the registry sums it per version', async (t) => {
  const mesh = await startTestMesh()
  t.teardown(() => mesh.close())
  await mesh.addUpstream('api', 'v1')
  const failing = await mesh.addUpstream('api', 'v2', (req, res) => {
    req.resume()
    req.on('end', () => {
      res.statusCode = 500
      res.end('{}')
    })
  })
  t.ok(failing)
  const revision = await mesh.setWeights('api', { v1: 50, v2: 50 })

  const routers = await waitFor(async () => {
    const answer = await mesh.reg.call('GET', '/v1/routers', { token: 'reader' })
    const listed = answer.json.routers as any[]
    return listed.length === 1 && listed[0].appliedRevision >= revision ? listed : undefined
  }, 'the router to report the revision')
  t.equal(routers[0].kind, 'http')
  t.equal(routers[0].adminUrl, mesh.adminUrl)
  t.equal(routers[0].lag, 0)
  t.equal(routers[0].reporter, 'router')

  for (let i = 0; i < 40; i++) await mesh.get('/api/x')
  // The test registry's clock stands still: move it on so the deltas fall inside a window ending now.
  mesh.reg.clock.advance(1_000)
  const signals = await waitFor(async () => {
    const answer = await mesh.reg.call('GET', '/v1/services/api/signals?window=60s', { token: 'reader' })
    const v1 = answer.json.versions?.v1
    const v2 = answer.json.versions?.v2
    mesh.reg.clock.advance(1)
    return v1 && v2 && v1.requests + v2.requests === 40 ? answer.json : undefined
  }, 'signals of 40 requests')
  t.equal(signals.source, 'routers')
  t.equal(signals.versions.v1.requests, 20)
  t.equal(signals.versions.v2.requests, 20)
  t.equal(signals.versions.v2.errorRatePercent, 100)
  t.equal(signals.versions.v1.errorRatePercent, 0)
  t.equal(signals.versions.v1.statusClasses['2xx'], 20)
  t.ok(signals.versions.v1.p99Ms > 0)
})

void t.test('reports need the router or admin role, speak only for their own router, and are validated', async (t) => {
  const mesh = await startTestMesh()
  t.teardown(() => mesh.close())
  const report = {
    kind: 'http',
    adminUrl: 'http://127.0.0.1:9901',
    appliedRevision: 1,
    startedAt: 1,
    services: { api: { v1: { statusClasses: [0, 1, 0, 0, 0], latency: new Array(LATENCY_BUCKETS).fill(0), messagesRouted: 0, messagesRejected: 0 } } }
  }
  const reader = await mesh.reg.call('PUT', '/v1/routers/r1', { token: 'reader', body: report })
  t.equal(reader.status, 403)
  t.equal(reader.json.code, 'FORBIDDEN')
  const operator = await mesh.reg.call('PUT', '/v1/routers/r1', { token: 'operator', body: report })
  t.equal(operator.status, 403)
  const none = await mesh.reg.call('PUT', '/v1/routers/r1', { token: null, body: report })
  t.equal(none.status, 401)
  const ok = await mesh.reg.call('PUT', '/v1/routers/r1', { token: 'router', body: report })
  t.equal(ok.status, 200)
  const other = await mesh.reg.call('PUT', '/v1/routers/r1', { token: 'admin', body: report })
  t.equal(other.status, 403, 'a router id belongs to the token that reports for it')
  t.match(other.json.message, /reports as router/)

  const bad = [
    { ...report, kind: 'grpc' },
    { ...report, appliedRevision: -1 },
    { ...report, adminUrl: 'ftp://x' },
    { ...report, extra: 1 },
    { ...report, services: { api: { v1: { ...report.services.api.v1, latency: [1] } } } },
    { ...report, services: { 'bad name!': {} } }
  ]
  for (const body of bad) {
    const answer = await mesh.reg.call('PUT', '/v1/routers/r2', { token: 'router', body })
    t.equal(answer.status, 400, JSON.stringify(body).slice(0, 80))
    t.equal(answer.json.code, 'VALIDATION_FAILED')
  }
  const huge = await mesh.reg.call('PUT', '/v1/routers/r2', {
    token: 'router',
    rawBody: JSON.stringify({ ...report, pad: 'x'.repeat(2 * 1024 * 1024) }),
    headers: { 'content-type': 'application/json' }
  })
  t.equal(huge.status, 413)
  const badId = await mesh.reg.call('PUT', '/v1/routers/bad%20id', { token: 'router', body: report })
  t.equal(badId.status, 400)
  const listed = await mesh.reg.call('GET', '/v1/routers', { token: 'reader' })
  t.notOk(
    listed.json.routers.some((router: any) => router.id === 'r2' || router.id === 'bad id'),
    'refused reports recorded nothing'
  )
  const badWindow = await mesh.reg.call('GET', '/v1/services/api/signals?window=forever', { token: 'reader' })
  t.equal(badWindow.status, 400)
  t.equal(badWindow.json.code, 'VALIDATION_FAILED')
  const tooLong = await mesh.reg.call('GET', '/v1/services/api/signals?window=2h', { token: 'reader' })
  t.equal(tooLong.status, 400)
  t.ok(TOKENS.router)
  t.ok(request)
})

void t.test("a rollout's own state changes move the router's revision, not its routes", async (t) => {
  const mesh = await startTestMesh()
  t.teardown(() => mesh.close())
  await mesh.addUpstream('api', 'v1')
  await mesh.addUpstream('api', 'v2')
  const started = await mesh.reg.call('POST', '/v1/services/api/rollout', { token: 'operator', body: { canary: 'v2' } })
  t.equal(started.status, 201)
  await mesh.waitForRevision(mesh.reg.registry.revision)
  const route = mesh.router.source.table.services.get('api')
  const paused = await mesh.reg.call('POST', '/v1/services/api/rollout/pause', { token: 'operator' })
  t.equal(paused.status, 200)
  await mesh.waitForRevision(mesh.reg.registry.revision)
  t.equal(mesh.router.source.table.revision, mesh.reg.registry.revision, 'the table carries the new revision')
  t.equal(mesh.router.source.table.services.get('api'), route, 'the route (and its round-robin state) is kept')
})
