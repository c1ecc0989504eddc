/**
 * The registry on the etcd store, two replicas in one process on a real etcd: the same
 * answers on both, linearizable writes (compare-and-swap on the registry revision),
 * dense revisions, snapshots and trimmed journals, the leader role and heartbeats passed
 * between replicas. The process-level faults (kill -9, quorum loss) are in
 * test/registry/etcd-faults.test.ts.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import type { SwitchyardError } from '../../core/errors.js'
import type { RegistryChange } from '../../core/registry-events.js'
import { Registry } from '../../registry/registry.js'
import { EtcdClientPort } from '../../registry/store/etcd/etcd-client-port.js'
import { EtcdStore } from '../../registry/store/etcd/etcd-store.js'
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { waitFor as pollUntil } from '../helpers/registry-harness.js'

interface Replica {
  registry: Registry
  store: EtcdStore
  id: string
  close(): Promise<void>
}

/** The harness's poll with the subject first, as these tests read best. */
const waitFor = <T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> => pollUntil(check, what, timeoutMs, 20)

let cluster: EtcdCluster
t.before(async () => {
  cluster = await startEtcdCluster({ members: 1 })
})
t.teardown(() => cluster?.close())

async function openReplica(
  t: Test,
  prefix: string,
  id: string,
  options: { clock?: FakeClock; historyRetention?: number; snapshotEvery?: number; leaseSeconds?: number; watchBuffer?: number } = {}
): Promise<Replica> {
  const store = new EtcdStore({
    etcd: new EtcdClientPort({ endpoints: cluster.endpoints, timeoutMs: 5_000 }),
    prefix,
    replicaId: id,
    historyRetention: options.historyRetention ?? 10_000,
    snapshotEvery: options.snapshotEvery ?? 10_000,
    replicaLeaseSeconds: options.leaseSeconds ?? 3,
    heartbeatFlushMs: 50
  })
  const registry = await Registry.open({ store, ...(options.clock ? { clock: options.clock.now } : {}), watchBuffer: options.watchBuffer ?? 10_000 })
  let closed = false
  const replica = {
    registry,
    store,
    id,
    close: async () => {
      if (closed) return
      closed = true
      await registry.close()
    }
  }
  t.teardown(replica.close)
  return replica
}

const freshPrefix = () => `/test-${randomBytes(4).toString('hex')}`

function listen(registry: Registry): RegistryChange[] {
  const seen: RegistryChange[] = []
  registry.hub.subscribe({ onChange: (change) => seen.push(change) })
  return seen
}

async function register(registry: Registry, service: string, id: string, version = 'v1') {
  return registry.register(service, { id, version, host: '127.0.0.1', port: 9000 })
}

void t.test('a write through one replica is read the same through the other, at the same revision', async (t) => {
  const prefix = freshPrefix()
  const a = await openReplica(t, prefix, 'a')
  const b = await openReplica(t, prefix, 'b')
  await register(a.registry, 'api', 'api-1')
  await register(b.registry, 'api', 'api-2', 'v2')
  const set = await a.registry.setWeights('api', { v1: 80, v2: 20 }, { actor: 'alice' })
  t.equal(set.revision, 4, 'first-version weights, two registrations, the weights: revision 4')
  await waitFor('b to follow', () => (b.registry.revision === set.revision ? true : undefined))
  t.same(await b.registry.snapshot(), await a.registry.snapshot(), 'the same snapshot on both')
  t.same(b.registry.weights('api'), { weights: { v1: 80, v2: 20 }, revision: 4 })
  t.same(
    b.registry.weightHistory('api').history.map((entry) => entry.actor),
    ['registry (first version of the service)', 'alice'],
    'the audit log on both'
  )
})

void t.test('two operators with the same If-Match through two replicas: exactly one wins', async (t) => {
  const prefix = freshPrefix()
  const a = await openReplica(t, prefix, 'a')
  const b = await openReplica(t, prefix, 'b')
  await register(a.registry, 'api', 'api-1')
  await register(a.registry, 'api', 'api-2', 'v2')
  await waitFor('b to follow', () => (b.registry.revision === a.registry.revision ? true : undefined))
  for (let round = 0; round < 5; round++) {
    const ifMatch = a.registry.revision
    await waitFor('b to follow', () => (b.registry.revision === ifMatch ? true : undefined))
    const outcomes = await Promise.allSettled([
      a.registry.setWeights('api', { v1: 50 + round, v2: 50 - round }, { actor: 'alice', ifMatch }),
      b.registry.setWeights('api', { v1: 40 - round, v2: 60 + round }, { actor: 'bob', ifMatch })
    ])
    const won = outcomes.filter((outcome) => outcome.status === 'fulfilled')
    const lost = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected')
    t.equal(won.length, 1, `round ${round}: one 200`)
    t.equal(lost.length, 1, `round ${round}: one refused`)
    t.equal((lost[0]?.reason as SwitchyardError).code, 'REVISION_MISMATCH', `round ${round}: the other gets 412 REVISION_MISMATCH`)
  }
  await waitFor('both at the same revision', () => (b.registry.revision === a.registry.revision ? true : undefined))
  t.equal(a.registry.revision, 3 + 5, 'five winning writes, nothing else')
})

void t.test('concurrent writes through both replicas all land, once each, with dense revisions seen in the same order everywhere', async (t) => {
  const prefix = freshPrefix()
  const a = await openReplica(t, prefix, 'a')
  const b = await openReplica(t, prefix, 'b')
  const seenA = listen(a.registry)
  const seenB = listen(b.registry)
  const writes: Promise<unknown>[] = []
  for (let i = 0; i < 60; i++) {
    writes.push(register(a.registry, 'api', `a-${i}`))
    writes.push(register(b.registry, 'api', `b-${i}`))
  }
  await Promise.all(writes)
  const head = await a.store.headRevision()
  t.equal(head, 121, '120 registrations plus the first version weights, each once')
  await waitFor('both to follow', () => (a.registry.revision === head && b.registry.revision === head ? true : undefined))
  t.same(
    seenA.map((change) => change.revision),
    Array.from({ length: head }, (_, i) => i + 1),
    'every revision once, in order'
  )
  t.same(seenB, seenA, 'the other replica saw the very same changes')
  t.equal((await b.registry.snapshot()).services[0]?.instances.length, 120)
})

void t.test('a replica opened later loads the snapshot and the journal after it; a watcher resumes with since on it', async (t) => {
  const prefix = freshPrefix()
  const a = await openReplica(t, prefix, 'a', { historyRetention: 20, snapshotEvery: 25 })
  await waitFor('a to lead', () => (a.registry.isLeader ? true : undefined))
  for (let i = 0; i < 70; i++) await register(a.registry, 'api', `api-${i}`)
  await waitFor('a snapshot and a trimmed journal', async () => {
    const journal = await cluster.etcdctl(['get', `${prefix}/journal/`, '--prefix', '--keys-only'])
    const keys = journal.split('\n').filter((line) => line.trim() !== '')
    return keys.length <= 20 + 25 && (await cluster.etcdctl(['get', `${prefix}/snapshot`])).includes('"revision"') ? true : undefined
  })
  const b = await openReplica(t, prefix, 'b', { historyRetention: 20 })
  t.same(await b.registry.snapshot(), await a.registry.snapshot(), 'the later replica has the whole state')
  const since = a.registry.revision - 5
  t.same(
    b.registry.hub.changesSince(since)?.map((change) => change.revision),
    [since + 1, since + 2, since + 3, since + 4, since + 5],
    'it can serve a watcher resuming 5 revisions back'
  )
  t.equal(b.registry.hub.changesSince(1), undefined, 'a watcher from before the kept history needs a snapshot')
})

void t.test('one replica leads at a time; when it closes, the other takes over', async (t) => {
  const prefix = freshPrefix()
  const a = await openReplica(t, prefix, 'a', { leaseSeconds: 2 })
  const b = await openReplica(t, prefix, 'b', { leaseSeconds: 2 })
  const leader = await waitFor('a leader', () => (a.registry.isLeader !== b.registry.isLeader ? (a.registry.isLeader ? a : b) : undefined))
  const other = leader === a ? b : a
  t.notOk(other.registry.isLeader, 'only one leads')
  t.same(await other.registry.sweep(), { expired: 0, evicted: [], selfPreservation: false, skipped: true }, 'the other does not sweep')
  await leader.close()
  await waitFor('the other to lead', () => (other.registry.isLeader ? true : undefined), 10_000)
  t.pass('the other replica leads')
})

void t.test('heartbeats sent to a replica that does not lead keep the instance alive on the leader; silence gets it evicted once', async (t) => {
  const prefix = freshPrefix()
  const clock = new FakeClock()
  const a = await openReplica(t, prefix, 'a', { clock })
  await waitFor('a to lead', () => (a.registry.isLeader ? true : undefined))
  const b = await openReplica(t, prefix, 'b', { clock })
  for (const id of ['api-1', 'api-2', 'api-3', 'api-4', 'api-5', 'api-6', 'api-7', 'api-8', 'api-9', 'api-10']) await register(a.registry, 'api', id)
  await waitFor('b to follow', () => (b.registry.revision === a.registry.revision ? true : undefined))
  clock.advance(29_000)
  // Through b only; the leader hears of it through etcd.
  for (let i = 1; i <= 9; i++) b.registry.heartbeat('api', `api-${i}`)
  await waitFor('the leader to hear of the heartbeats', () => (a.registry.lastHeartbeat('api', 'api-9') === clock.now() ? true : undefined))
  clock.advance(2_000)
  const swept = await a.registry.sweep()
  t.same(swept, { expired: 1, evicted: [{ service: 'api', id: 'api-10' }], selfPreservation: false }, 'only the silent one is evicted')
  t.same(await b.registry.sweep(), { expired: 0, evicted: [], selfPreservation: false, skipped: true }, 'the other replica evicts nothing')
  await waitFor('b to follow', () => (b.registry.revision === a.registry.revision ? true : undefined))
  t.equal((await b.registry.snapshot()).services[0]?.instances.length, 9)
  const removals = b.registry.hub.changesSince(0)?.filter((change) => change.type === 'instance-removed') ?? []
  t.equal(removals.length, 1, 'evicted once')
})

void t.test('a write when etcd is unreachable answers STORE_UNAVAILABLE and changes nothing', async (t) => {
  const own = await startEtcdCluster({ members: 1 })
  t.teardown(() => own.close())
  const store = new EtcdStore({
    etcd: new EtcdClientPort({ endpoints: own.endpoints, timeoutMs: 1_500, attemptTimeoutMs: 500 }),
    prefix: '/unreachable',
    replicaId: 'a',
    replicaLeaseSeconds: 3
  })
  const registry = await Registry.open({ store })
  t.teardown(() => registry.close())
  await register(registry, 'api', 'api-1')
  const before = registry.revision
  const member = own.members[0]
  if (!member) throw new Error('no member')
  member.pause()
  t.teardown(() => (member.state === 'paused' ? member.resume() : undefined))
  await t.rejects(register(registry, 'api', 'api-2'), { code: 'STORE_UNAVAILABLE' }, '503 STORE_UNAVAILABLE')
  t.equal(registry.revision, before, 'nothing changed')
  t.same(
    (await registry.snapshot()).services[0]?.instances.map((instance) => instance.id),
    ['api-1'],
    'reads keep serving the last state'
  )
  member.resume()
  await waitFor('writes to work again', async () => {
    try {
      await register(registry, 'api', 'api-3')
      return true
    } catch {
      return undefined
    }
  })
  t.ok(registry.revision > before)
})

void t.test('an etcd leader change (which renews every etcd lease, etcd #9395) leaves exactly one registry leader, and expiry still happens once', async (t) => {
  const own = await startEtcdCluster({ members: 3 })
  t.teardown(() => own.close())
  const clock = new FakeClock()
  const open = async (id: string) => {
    const store = new EtcdStore({
      etcd: new EtcdClientPort({ endpoints: own.endpoints, timeoutMs: 5_000 }),
      prefix: '/leader-change',
      replicaId: id,
      replicaLeaseSeconds: 2,
      heartbeatFlushMs: 50
    })
    const registry = await Registry.open({ store, clock: clock.now })
    t.teardown(() => registry.close())
    return registry
  }
  const a = await open('a')
  const b = await open('b')
  await waitFor('one leader', () => (a.isLeader !== b.isLeader ? true : undefined))
  for (const id of ['api-1', 'api-2', 'api-3', 'api-4', 'api-5', 'api-6', 'api-7', 'api-8']) await register(a, 'api', id)
  const etcdLeader = await own.leader()
  await etcdLeader.kill()
  // Writes and the role come through the election.
  await waitFor(
    'a write after the etcd election',
    async () => {
      try {
        await b.setWeights('api', { v1: 100 }, { actor: 'test' })
        return true
      } catch {
        return undefined
      }
    },
    30_000
  )
  const leader = await waitFor('exactly one registry leader after the etcd election', () => (a.isLeader !== b.isLeader ? (a.isLeader ? a : b) : undefined), 30_000)
  const other = leader === a ? b : a
  // Registered through the leader: a heartbeat batch delayed by the election cannot renew it late.
  await register(leader, 'api', 'api-9')
  await waitFor('both at the same revision', () => (a.revision === b.revision ? true : undefined))
  clock.advance(29_000)
  for (let i = 1; i <= 8; i++) other.heartbeat('api', `api-${i}`)
  await waitFor('the leader to hear of them', () => (leader.lastHeartbeat('api', 'api-8') === clock.now() ? true : undefined))
  clock.advance(2_000)
  const [first, second] = await Promise.all([leader.sweep(), other.sweep()])
  t.same(first.evicted, [{ service: 'api', id: 'api-9' }], `the leader evicts the silent one: ${JSON.stringify(first)}`)
  t.equal(second.skipped, true, 'the other does not sweep')
  await waitFor('both at the same revision', () => (a.revision === b.revision ? true : undefined))
  t.equal(b.hub.changesSince(0)?.filter((change) => change.type === 'instance-removed').length, 1, 'evicted once')
})
