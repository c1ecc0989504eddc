import t from 'tap'
import { startTestRegistry, type TestRegistry } from '../helpers/registry-harness.js'

const LEASE_MS = 30_000
const MAX_MS = 120_000

async function register(reg: TestRegistry, id: string): Promise<void> {
  const response = await reg.call('POST', '/v1/services/api/instances', { token: 'registrar', body: { version: 'v1', host: '127.0.0.1', port: 9000, id } })
  if (response.status !== 201 && response.status !== 200) throw new Error(`registering ${id} answered ${response.status}: ${response.text}`)
}

async function instanceIds(reg: TestRegistry): Promise<string[]> {
  const response = await reg.call('GET', '/v1/services/api', { token: 'reader' })
  return (response.json.instances as { id: string }[]).map((instance) => instance.id).sort()
}

/** 13 instances, of which the 6 named dead stop heartbeating (the measured case of the issue). */
async function fleet(reg: TestRegistry): Promise<{ alive: string[]; dead: string[] }> {
  const ids = Array.from({ length: 13 }, (_, i) => `api-${String(i).padStart(2, '0')}`)
  for (const id of ids) await register(reg, id)
  return { alive: ids.slice(0, 7), dead: ids.slice(7) }
}

async function beat(reg: TestRegistry, ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    const response = await reg.call('PUT', `/v1/services/api/instances/${id}/heartbeat`, { token: 'registrar' })
    if (response.status !== 200) throw new Error(`heartbeat of ${id} answered ${response.status}`)
  }
}

void t.test('self-preservation ends after its bound: instances still expired are evicted as the new baseline', async (t) => {
  const reg = await startTestRegistry({ selfPreservationMaxMs: MAX_MS })
  t.teardown(reg.destroy)
  const { alive, dead } = await fleet(reg)

  reg.clock.advance(LEASE_MS + 1)
  await beat(reg, alive)
  t.same(await reg.registry.sweep(), { expired: 6, evicted: [], selfPreservation: true }, '6 of 13 expired at once: kept')
  const started = reg.clock.now()
  t.same(reg.registry.selfPreservation(), { active: true, since: started, endsAt: started + MAX_MS, expiredInstances: 6 })

  const ready = await reg.call('GET', '/readyz')
  t.equal(ready.status, 200)
  t.match(ready.json, {
    selfPreservation: true,
    selfPreservationSince: new Date(started).toISOString(),
    selfPreservationEndsAt: new Date(started + MAX_MS).toISOString(),
    expiredInstancesKept: 6,
    store: 'file'
  })
  const metrics = await reg.call('GET', '/metrics')
  t.match(metrics.text, /^switchyard_registry_self_preservation_expired_instances 6$/m)
  t.match(metrics.text, new RegExp(`^switchyard_registry_self_preservation_ends_seconds ${(started + MAX_MS) / 1000}$`, 'm'))

  // Just before the bound it still holds (the live ones keep heartbeating).
  reg.clock.advance(MAX_MS - 1)
  await beat(reg, alive)
  t.same(await reg.registry.sweep(), { expired: 6, evicted: [], selfPreservation: true }, 'still kept 1 ms before the bound')
  t.equal(reg.registry.selfPreservation().since, started, 'the start does not move while it holds')

  reg.clock.advance(1)
  const swept = await reg.registry.sweep()
  t.same(swept, { expired: 6, evicted: dead.map((id) => ({ service: 'api', id })), selfPreservation: false, rebaselined: true }, 'at the bound the 6 dead ones are evicted')
  t.same(await instanceIds(reg), alive, 'only the live ones remain')
  t.same(reg.registry.selfPreservation(), { active: false, since: undefined, endsAt: undefined, expiredInstances: 0 })
  t.notOk((await reg.call('GET', '/readyz')).json.selfPreservation)
  t.ok(
    reg.logs.some((line) => line.includes('self-preservation ended after')),
    'the end is logged'
  )
})

void t.test('self-preservation that clears by itself (the instances come back) starts its bound afresh next time', async (t) => {
  const reg = await startTestRegistry({ selfPreservationMaxMs: MAX_MS })
  t.teardown(reg.destroy)
  const { alive, dead } = await fleet(reg)
  reg.clock.advance(LEASE_MS + 1)
  await beat(reg, alive)
  t.equal((await reg.registry.sweep()).selfPreservation, true)
  // The partition heals: everybody heartbeats again.
  reg.clock.advance(MAX_MS / 2)
  await beat(reg, [...alive, ...dead])
  t.same(await reg.registry.sweep(), { expired: 0, evicted: [], selfPreservation: false }, 'healed: nothing expired, nothing evicted')
  // A second partition later gets a whole new bound.
  reg.clock.advance(LEASE_MS + 1)
  await beat(reg, alive)
  t.equal((await reg.registry.sweep()).selfPreservation, true)
  t.equal(reg.registry.selfPreservation().since, reg.clock.now(), 'the bound starts again')
  t.same(await instanceIds(reg), [...alive, ...dead].sort(), 'no instance was lost to the partitions')
})

void t.test('an operator evicts an instance by hand; readers and registrars may not; unknown ones get 404', async (t) => {
  const reg = await startTestRegistry({ selfPreservationMaxMs: MAX_MS })
  t.teardown(reg.destroy)
  const { alive, dead } = await fleet(reg)
  reg.clock.advance(LEASE_MS + 1)
  await beat(reg, alive)
  t.equal((await reg.registry.sweep()).selfPreservation, true)
  const before = reg.registry.revision

  for (const token of ['reader', 'registrar', 'router'] as const) {
    const refused = await reg.call('POST', `/v1/services/api/instances/${dead[0]}/evict`, { token })
    t.equal(refused.status, 403, `${token} may not evict`)
    t.equal(refused.json.code, 'FORBIDDEN')
  }
  const unauthenticated = await reg.call('POST', `/v1/services/api/instances/${dead[0]}/evict`, { token: null })
  t.equal(unauthenticated.status, 401)
  const unknown = await reg.call('POST', '/v1/services/api/instances/nope/evict', { token: 'operator' })
  t.equal(unknown.status, 404)
  t.equal(unknown.json.code, 'INSTANCE_NOT_FOUND')
  const badId = await reg.call('POST', '/v1/services/api/instances/%3Cscript%3E/evict', { token: 'operator' })
  t.equal(badId.status, 400, 'a malformed id is refused')
  t.equal(reg.registry.revision, before, 'refused evictions changed nothing')

  for (const id of dead) {
    const evicted = await reg.call('POST', `/v1/services/api/instances/${id}/evict`, { token: 'operator' })
    t.equal(evicted.status, 200, `${id} evicted`)
  }
  t.same(await instanceIds(reg), alive, 'the evicted ones are gone')
  t.same(await reg.registry.sweep(), { expired: 0, evicted: [], selfPreservation: false }, 'with them gone, self-preservation ends')
  const history = await reg.call('GET', '/v1/services/api', { token: 'reader' })
  t.equal(history.json.revision, before + dead.length, 'one change per eviction')
})
