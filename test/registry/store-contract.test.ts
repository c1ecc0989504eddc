/**
 * One contract for every registry store: the registry's behaviour through each store,
 * closed and opened again (a restart), must be the same. Runs against the file store,
 * the memory store and the etcd store (a real etcd).
 */
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { RegistryChange } from '../../core/registry-events.js'
import { Registry } from '../../registry/registry.js'
import { FileStore } from '../../registry/store/file-store.js'
import { MemoryStore } from '../../registry/store/memory-store.js'
import type { AnyRegistryStore } from '../../registry/store/registry-store.js'
import { EtcdClientPort } from '../../registry/store/etcd/etcd-client-port.js'
import { EtcdStore } from '../../registry/store/etcd/etcd-store.js'
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js'
import { waitFor as pollUntil } from '../helpers/registry-harness.js'

interface StoreKind {
  name: string
  /** a fresh, empty place to keep state; `open` gives a store on it (again after a close) */
  create(options: { compactAfter: number }): Promise<{ open(): AnyRegistryStore; destroy(): Promise<void> }>
}

let cluster: EtcdCluster | undefined
t.teardown(() => cluster?.close())

const kinds: StoreKind[] = [
  {
    name: 'file',
    async create({ compactAfter }) {
      const dataDir = await mkdtemp(join(tmpdir(), 'switchyard-contract-'))
      return { open: () => new FileStore({ dataDir, compactAfter }), destroy: () => rm(dataDir, { recursive: true, force: true }) }
    }
  },
  {
    name: 'memory',
    create() {
      // The same instance again stands for "the same place"; it keeps its journal in memory.
      const store = new MemoryStore()
      return Promise.resolve({ open: () => store, destroy: () => Promise.resolve() })
    }
  },
  {
    name: 'etcd',
    async create({ compactAfter }) {
      cluster ??= await startEtcdCluster({ members: 1 })
      const endpoints = cluster.endpoints
      const prefix = `/contract-${randomBytes(4).toString('hex')}`
      let replica = 0
      return {
        open: () =>
          new EtcdStore({
            etcd: new EtcdClientPort({ endpoints, timeoutMs: 5_000 }),
            prefix,
            replicaId: `replica-${replica++}`,
            historyRetention: compactAfter,
            snapshotEvery: compactAfter,
            replicaLeaseSeconds: 2
          }),
        destroy: () => Promise.resolve()
      }
    }
  }
]

const waitFor = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> => {
  await pollUntil(async () => ((await check()) ? true : undefined), what, timeoutMs, 20)
}

for (const kind of kinds) {
  void t.test(`${kind.name} store`, (t) => {
    void t.test('what was acknowledged is there after a restart: instances, weights, history, rollouts, revision', async (t) => {
      const place = await kind.create({ compactAfter: 10_000 })
      t.teardown(place.destroy)
      const first = await Registry.open({ store: place.open() })
      const seen: RegistryChange[] = []
      first.hub.subscribe({ onChange: (change) => seen.push(change) })
      await first.register('api', { id: 'api-1', version: 'v1', host: '127.0.0.1', port: 9001, metadata: { zone: 'a' } })
      await first.register('api', { id: 'api-2', version: 'v2', host: '127.0.0.1', port: 9002 })
      await first.setWeights('api', { v1: 90, v2: 10 }, { actor: 'alice' })
      await first.setStatus('api', 'api-1', 'draining')
      await first.startRollout('api', { canary: 'v2', steps: [10, 50], intervalSeconds: 60 }, 'bob')
      await t.rejects(first.setWeights('api', { v1: 50, v2: 50 }, { actor: 'carol', ifMatch: 1 }), { code: 'REVISION_MISMATCH' })
      await first.deregister('api', 'api-2').catch(() => undefined)
      const revision = first.revision
      const snapshot = await first.snapshot()
      const history = first.weightHistory('api')
      const rollout = first.rollout('api')
      t.same(
        seen.map((change) => change.revision),
        Array.from({ length: revision }, (_, i) => i + 1),
        'watchers saw every revision once, in order'
      )
      await first.close()

      const second = await Registry.open({ store: place.open() })
      t.teardown(() => second.close())
      t.equal(second.revision, revision, 'the same revision')
      t.same(await second.snapshot(), snapshot, 'the same instances and weights')
      t.same(second.weightHistory('api'), history, 'the same audit log')
      const essence = (state: typeof rollout) => ({ service: state.service, phase: state.phase, spec: state.spec, canaryWeight: state.canaryWeight, startedBy: state.startedBy })
      t.same(essence(second.rollout('api')), essence(rollout), 'the same rollout (only its window starts again)')
      t.same(
        second.hub.changesSince(revision - 2)?.map((change) => change.revision),
        [revision - 1, revision],
        'a watcher resuming after the restart is sent what it missed'
      )
      await second.setWeights('api', { v1: 100 }, { actor: 'alice', ifMatch: revision })
      t.equal(second.revision, revision + 2, 'writes go on from there (the weights and the rollout pausing)')
    })

    void t.test('compaction keeps the state and the recent history', async (t) => {
      const place = await kind.create({ compactAfter: 20 })
      t.teardown(place.destroy)
      const first = await Registry.open({ store: place.open(), watchBuffer: 20 })
      await waitFor('leadership (etcd: only the leader compacts)', () => first.isLeader)
      for (let i = 0; i < 65; i++) await first.register('api', { id: `api-${i}`, version: 'v1', host: '127.0.0.1', port: 9000 + i })
      const snapshot = await first.snapshot()
      await first.close()
      const second = await Registry.open({ store: place.open(), watchBuffer: 20 })
      t.teardown(() => second.close())
      t.same(await second.snapshot(), snapshot, 'the same state after compactions')
      t.same(second.hub.changesSince(second.revision - 3)?.length, 3, 'recent changes are still served to watchers')
    })
    t.end()
  })
}
