import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startTestRegistry, type TestRegistry } from '../helpers/registry-harness.js'

const LEASE_MS = 30_000

async function register(reg: TestRegistry, id: string, service = 'api', version = 'v1'): Promise<void> {
  const response = await reg.call('POST', `/v1/services/${service}/instances`, { token: 'registrar', body: { version, host: '127.0.0.1', port: 9000, id } })
  if (response.status !== 201 && response.status !== 200) throw new Error(`registering ${id} answered ${response.status}: ${response.text}`)
}

async function heartbeat(reg: TestRegistry, id: string, service = 'api') {
  return reg.call('PUT', `/v1/services/${service}/instances/${id}/heartbeat`, { token: 'registrar' })
}

async function instanceIds(reg: TestRegistry, service = 'api'): Promise<string[]> {
  const response = await reg.call('GET', `/v1/services/${service}`, { token: 'reader' })
  if (response.status !== 200) throw new Error(`GET /v1/services/${service} answered ${response.status}`)
  return (response.json.instances as { id: string }[]).map((instance) => instance.id).sort()
}

void t.test('heartbeats keep an instance alive while the clock moves far past its lease', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  await register(reg, 'api-a')
  for (let round = 0; round < 6; round++) {
    reg.clock.advance(LEASE_MS - 1_000)
    const beat = await heartbeat(reg, 'api-a')
    t.equal(beat.status, 200, `heartbeat ${round} accepted`)
    t.same(beat.json, { leaseSeconds: 30, renewSeconds: 10 })
    const swept = await reg.registry.sweep()
    t.same(swept, { expired: 0, evicted: [], selfPreservation: false }, `sweep ${round} evicts nothing`)
  }
  t.same(await instanceIds(reg), ['api-a'], 'still registered after 6 leases worth of time')
  const view = await reg.call('GET', '/v1/services/api', { token: 'reader' })
  t.equal(view.json.instances[0].lastHeartbeat, new Date(reg.clock.now()).toISOString(), 'lastHeartbeat is the last heartbeat time')
})

void t.test('an instance silent for longer than its lease is evicted, with an instance-removed change', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  await register(reg, 'api-a')
  await register(reg, 'api-b')
  await register(reg, 'api-c')
  const before = (await reg.call('GET', '/v1/services/api', { token: 'reader' })).json.revision as number

  // Exactly the lease is not yet "more than" the lease.
  reg.clock.advance(LEASE_MS)
  t.equal((await heartbeat(reg, 'api-b')).status, 200)
  t.equal((await heartbeat(reg, 'api-c')).status, 200)
  t.same(await reg.registry.sweep(), { expired: 0, evicted: [], selfPreservation: false }, 'a lease that ran exactly leaseSeconds is not expired')

  reg.clock.advance(1)
  const swept = await reg.registry.sweep()
  t.same(swept, { expired: 1, evicted: [{ service: 'api', id: 'api-a' }], selfPreservation: false }, 'one expired instance of three is evicted')
  t.same(await instanceIds(reg), ['api-b', 'api-c'], 'the evicted instance is gone from GET /v1/services/api')

  const after = await reg.call('GET', '/v1/services/api', { token: 'reader' })
  t.equal(after.json.revision, before + 1, 'the eviction is one new revision')
  t.match(reg.registry.hub.changesSince(before), [{ type: 'instance-removed', revision: before + 1, service: 'api', id: 'api-a', reason: 'evicted' }], 'the change says evicted')
  const metrics = await reg.call('GET', '/metrics', { token: null })
  t.match(metrics.text, /switchyard_registry_evictions_total\{service="api"\} 1/, 'the eviction is counted')
  t.ok(
    reg.logs.some((line) => line.includes('evicted instances whose lease expired')),
    'the eviction is logged'
  )
})

void t.test('heartbeat for an evicted or unknown instance is 404, and registering again works', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  await register(reg, 'api-a')
  await register(reg, 'api-b')
  await register(reg, 'api-c')
  reg.clock.advance(LEASE_MS - 5_000)
  await heartbeat(reg, 'api-b')
  await heartbeat(reg, 'api-c')
  reg.clock.advance(5_001)
  t.match(await reg.registry.sweep(), { evicted: [{ service: 'api', id: 'api-a' }] })

  const evicted = await heartbeat(reg, 'api-a')
  t.equal(evicted.status, 404, 'heartbeat of the evicted instance')
  t.equal(evicted.json.code, 'INSTANCE_NOT_FOUND')
  t.match(evicted.json.message, /api-a/)

  const unknown = await heartbeat(reg, 'api-never')
  t.equal(unknown.status, 404, 'heartbeat of an instance that never existed')
  t.equal(unknown.json.code, 'INSTANCE_NOT_FOUND')
  const unknownService = await heartbeat(reg, 'api-a', 'nosuchservice')
  t.equal(unknownService.status, 404, 'heartbeat for an unknown service')
  t.equal(unknownService.json.code, 'INSTANCE_NOT_FOUND')

  const again = await reg.call('POST', '/v1/services/api/instances', { token: 'registrar', body: { version: 'v1', host: '127.0.0.1', port: 9000, id: 'api-a' } })
  t.equal(again.status, 201, 're-registration after the 404 creates the instance')
  t.equal(again.json.id, 'api-a')
  t.same(await instanceIds(reg), ['api-a', 'api-b', 'api-c'], 'listed again')
  t.equal((await heartbeat(reg, 'api-a')).status, 200, 'and its heartbeats are accepted')
  const same = await reg.call('POST', '/v1/services/api/instances', { token: 'registrar', body: { version: 'v1', host: '127.0.0.1', port: 9000, id: 'api-a' } })
  t.equal(same.status, 200, 'registering the identical instance once more is 200, not 201')
})

void t.test('DELETE removes an instance at once; a second DELETE is 404', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  await register(reg, 'api-a')
  await register(reg, 'api-b')
  const before = reg.registry.revision
  const deleted = await reg.call('DELETE', '/v1/services/api/instances/api-a', { token: 'registrar' })
  t.equal(deleted.status, 204)
  t.equal(deleted.text, '')
  t.same(await instanceIds(reg), ['api-b'], 'gone without any sweep')
  t.match(reg.registry.hub.changesSince(before), [{ type: 'instance-removed', id: 'api-a', reason: 'deregistered' }])
  const second = await reg.call('DELETE', '/v1/services/api/instances/api-a', { token: 'registrar' })
  t.equal(second.status, 404)
  t.equal(second.json.code, 'INSTANCE_NOT_FOUND')
  t.equal((await heartbeat(reg, 'api-a')).status, 404, 'its lease is gone too')
  reg.clock.advance(LEASE_MS * 3)
  await heartbeat(reg, 'api-b')
  t.same(await reg.registry.sweep(), { expired: 0, evicted: [], selfPreservation: false }, 'a deregistered instance is never "evicted" later')
})

void t.test('draining status shows in GET /v1/services/api', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  await register(reg, 'api-a')
  await register(reg, 'api-b')
  const drained = await reg.call('PUT', '/v1/services/api/instances/api-a/status', { token: 'registrar', body: { status: 'draining' } })
  t.equal(drained.status, 200)
  t.match(drained.json, { status: 'draining', revision: reg.registry.revision })
  const view = await reg.call('GET', '/v1/services/api', { token: 'reader' })
  const statuses = Object.fromEntries((view.json.instances as { id: string; status: string }[]).map((instance) => [instance.id, instance.status]))
  t.same(statuses, { 'api-a': 'draining', 'api-b': 'up' })
  const revision = reg.registry.revision
  const repeat = await reg.call('PUT', '/v1/services/api/instances/api-a/status', { token: 'registrar', body: { status: 'draining' } })
  t.equal(repeat.status, 200)
  t.equal(reg.registry.revision, revision, 'setting the same status again is not a change')
  const invalid = await reg.call('PUT', '/v1/services/api/instances/api-a/status', { token: 'registrar', body: { status: 'down' } })
  t.equal(invalid.status, 400, 'an unknown status is refused')
  const missing = await reg.call('PUT', '/v1/services/api/instances/api-zzz/status', { token: 'registrar', body: { status: 'draining' } })
  t.equal(missing.status, 404)
  t.equal(missing.json.code, 'INSTANCE_NOT_FOUND')
  const up = await reg.call('PUT', '/v1/services/api/instances/api-a/status', { token: 'registrar', body: { status: 'up' } })
  t.equal(up.status, 200)
  const after = await reg.call('GET', '/v1/services/api', { token: 'reader' })
  t.ok(
    (after.json.instances as { status: string }[]).every((instance) => instance.status === 'up'),
    'back up'
  )
})

void t.test('leaseSeconds and renewSeconds are configurable and returned by registration', async (t) => {
  const reg = await startTestRegistry({ leaseSeconds: 7, renewSeconds: 2 })
  t.teardown(reg.destroy)
  const created = await reg.call('POST', '/v1/services/api/instances', { token: 'registrar', body: { version: 'v1', host: '127.0.0.1', port: 9000 } })
  t.equal(created.status, 201)
  t.match(created.json, { id: /^api-/, leaseSeconds: 7, renewSeconds: 2 })
  const id = created.json.id as string
  const beat = await heartbeat(reg, id)
  t.same(beat.json, { leaseSeconds: 7, renewSeconds: 2 }, 'heartbeat answers with the same lease terms')
  await register(reg, 'api-b')
  await register(reg, 'api-c')
  reg.clock.advance(7_000)
  await heartbeat(reg, 'api-b')
  await heartbeat(reg, 'api-c')
  t.same((await reg.registry.sweep()).expired, 0, 'not expired after exactly 7 s')
  reg.clock.advance(1)
  t.same(await reg.registry.sweep(), { expired: 1, evicted: [{ service: 'api', id }], selfPreservation: false }, 'evicted just past the 7 s lease')
})

void t.test('self-preservation: many simultaneous expiries evict nothing', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  const ids = Array.from({ length: 10 }, (_, i) => `api-${i}`)
  for (const id of ids) await register(reg, id)
  const alive = ids.slice(3)

  reg.clock.advance(LEASE_MS - 1_000)
  for (const id of alive) t.equal((await heartbeat(reg, id)).status, 200)
  reg.clock.advance(2_000)
  const revision = reg.registry.revision
  const swept = await reg.registry.sweep()
  t.same(swept, { expired: 3, evicted: [], selfPreservation: true }, '3 of 10 expired (> 15% and >= 2): nothing evicted')
  t.equal(reg.registry.revision, revision, 'no change was made')
  t.same(await instanceIds(reg), [...ids].sort(), 'all 10 are still listed')

  const metrics = await reg.call('GET', '/metrics', { token: null })
  t.equal(metrics.status, 200)
  t.match(metrics.text, /^switchyard_registry_self_preservation 1$/m, 'the metric shows self-preservation')
  const health = await reg.call('GET', '/healthz', { token: null })
  t.match(health.json, { status: 'ok', selfPreservation: true, instances: 10 })
  t.ok(
    reg.logs.some((line) => line.includes('self-preservation on')),
    'its start is logged'
  )

  t.same(await reg.registry.sweep(), { expired: 3, evicted: [], selfPreservation: true }, 'it holds on the next sweep too')

  // Two of the silent three come back (one heartbeats, one re-registers); the third stays silent.
  t.equal((await heartbeat(reg, 'api-0')).status, 200, 'an instance kept by self-preservation may still heartbeat')
  const reRegistered = await reg.call('POST', '/v1/services/api/instances', { token: 'registrar', body: { version: 'v1', host: '127.0.0.1', port: 9000, id: 'api-1' } })
  t.equal(reRegistered.status, 200, 'an instance kept by self-preservation re-registers as itself')
  const resumed = await reg.registry.sweep()
  t.same(resumed, { expired: 1, evicted: [{ service: 'api', id: 'api-2' }], selfPreservation: false }, 'a single expiry is evicted again')
  t.same(await instanceIds(reg), ids.filter((id) => id !== 'api-2').sort())
  t.match(reg.registry.hub.changesSince(revision), [{ type: 'instance-removed', id: 'api-2', reason: 'evicted' }])

  const metricsAfter = await reg.call('GET', '/metrics', { token: null })
  t.match(metricsAfter.text, /^switchyard_registry_self_preservation 0$/m, 'the metric drops back to 0')
  const healthAfter = await reg.call('GET', '/healthz', { token: null })
  t.match(healthAfter.json, { selfPreservation: false, instances: 9 })
  t.ok(
    reg.logs.some((line) => line.includes('self-preservation off')),
    'its end is logged'
  )
})

void t.test('a single expired instance out of three is evicted (min-expired rule)', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  await register(reg, 'api-a')
  await register(reg, 'api-b')
  await register(reg, 'api-c')
  reg.clock.advance(LEASE_MS - 1)
  await heartbeat(reg, 'api-b')
  await heartbeat(reg, 'api-c')
  reg.clock.advance(2)
  // 1 of 3 is 33% (well over 15%), but one expiry is below the minimum of 2.
  t.same(await reg.registry.sweep(), { expired: 1, evicted: [{ service: 'api', id: 'api-a' }], selfPreservation: false })
  t.same(await instanceIds(reg), ['api-b', 'api-c'])
  const health = await reg.call('GET', '/healthz', { token: null })
  t.match(health.json, { selfPreservation: false, instances: 2 })
})

void t.test('expiries of exactly the threshold share are still evicted', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  const ids = Array.from({ length: 20 }, (_, i) => `api-${i}`)
  for (const id of ids) await register(reg, id)
  reg.clock.advance(LEASE_MS)
  for (const id of ids.slice(3)) await heartbeat(reg, id)
  reg.clock.advance(1)
  // 3 of 20 is exactly 15%: not "more than" the threshold.
  const swept = await reg.registry.sweep()
  t.equal(swept.selfPreservation, false)
  t.same(swept.evicted.map((entry) => entry.id).sort(), ['api-0', 'api-1', 'api-2'])
  t.equal((await instanceIds(reg)).length, 17)
})

void t.test('after a restart every persisted instance gets a full lease', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'switchyard-leases-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const first = await startTestRegistry({ dataDir })
  t.teardown(first.destroy)
  const ids = ['api-a', 'api-b', 'api-c', 'api-d']
  for (const id of ids) await register(first, id)
  const revision = first.registry.revision
  // The last heartbeats happened long ago by the time the registry comes back.
  first.clock.advance(LEASE_MS * 10)
  await first.close()

  const second = await startTestRegistry({ dataDir, clock: first.clock })
  t.teardown(second.destroy)
  t.equal(second.registry.revision, revision, 'the same revision after the restart')
  t.same(await instanceIds(second), ids, 'every instance was persisted')
  const view = await second.call('GET', '/v1/services/api', { token: 'reader' })
  t.ok(
    (view.json.instances as { lastHeartbeat: string | null }[]).every((instance) => instance.lastHeartbeat === new Date(first.clock.now()).toISOString()),
    'each lease starts at the restart'
  )

  second.clock.advance(LEASE_MS - 1_000)
  t.same(await second.registry.sweep(), { expired: 0, evicted: [], selfPreservation: false }, 'nothing is evicted within the first lease after the restart')
  t.same(await instanceIds(second), ids)

  // Half heartbeat; then the other half expire together after the full lease.
  await heartbeat(second, 'api-a')
  await heartbeat(second, 'api-b')
  await heartbeat(second, 'api-c')
  second.clock.advance(1_001)
  t.same(
    await second.registry.sweep(),
    { expired: 1, evicted: [{ service: 'api', id: 'api-d' }], selfPreservation: false },
    'the one that never heartbeat again expires one lease after the restart'
  )
})
