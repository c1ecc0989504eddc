import t from 'tap'
import { EtcdClient, isEtcdError, type EtcdCompare } from '../../registry/store/etcd/etcd-client.js'
import { keepLeaseAlive, type LeaseLoss } from '../../registry/store/etcd/etcd-lease-keeper.js'
import type { EtcdWatch, EtcdWatchBatch } from '../../registry/store/etcd/etcd-watch.js'
import { ETCD_BINARY, etcdInstalled, startEtcdCluster } from '../helpers/etcd-cluster.js'

// The gateway client against one real etcd member: KV, transactions, watch, compaction, leases.
if (!(await etcdInstalled())) t.fail(`no etcd at ${ETCD_BINARY}: install Debian's etcd-server and etcd-client (.ci/run does it) or set SWITCHYARD_TEST_ETCD`)

const cluster = await startEtcdCluster()
t.teardown(cluster.close)
const client = new EtcdClient({ endpoints: cluster.endpoints })
t.teardown(() => client.close())

/** Collects a watch's events until `done` says so, with a deadline. */
async function collect(watch: EtcdWatch, done: (batches: EtcdWatchBatch[]) => boolean, timeoutMs = 10_000): Promise<EtcdWatchBatch[]> {
  const batches: EtcdWatchBatch[] = []
  const timer = setTimeout(() => watch.close(), timeoutMs)
  try {
    for await (const batch of watch) {
      batches.push(batch)
      if (done(batches)) break
    }
  } finally {
    clearTimeout(timer)
  }
  if (!done(batches)) throw new Error(`watch ended after ${batches.length} batches without the expected events`)
  return batches
}

const eventCount = (batches: EtcdWatchBatch[]) => batches.reduce((sum, batch) => sum + batch.events.length, 0)

void t.test('put, get and range: values, revisions, versions, prefix, limit, sort, keys and count only, an older revision', async (t) => {
  const first = await client.put('/kv/a', 'alpha')
  t.ok(first.header.revision > 0)
  t.equal(first.prevKv, undefined)
  const second = await client.put('/kv/a', 'alpha-2', { prevKv: true })
  t.equal(second.header.revision, first.header.revision + 1)
  t.equal(second.prevKv?.value, 'alpha')
  await client.put('/kv/b', 'béta ✓')
  await client.put('/kv/c', '')
  await client.put('/kw/outside', 'x')

  const a = await client.get('/kv/a')
  t.match(a, { key: '/kv/a', value: 'alpha-2', createRevision: first.header.revision, modRevision: second.header.revision, version: 2, lease: '0' })
  t.equal(await client.get('/kv/missing'), undefined)
  t.equal((await client.get('/kv/b'))?.value, 'béta ✓', 'UTF-8 round trip')
  t.equal((await client.get('/kv/c'))?.value, '', 'an empty value')

  const all = await client.range('/kv/', { prefix: true })
  t.same(
    all.kvs.map((kv) => kv.key),
    ['/kv/a', '/kv/b', '/kv/c']
  )
  t.equal(all.count, 3)
  t.equal(all.more, false)
  const limited = await client.range('/kv/', { prefix: true, limit: 2 })
  t.equal(limited.kvs.length, 2)
  t.equal(limited.more, true)
  t.equal(limited.count, 3)
  const descending = await client.range('/kv/', { prefix: true, sort: { target: 'KEY', order: 'DESCEND' } })
  t.same(
    descending.kvs.map((kv) => kv.key),
    ['/kv/c', '/kv/b', '/kv/a']
  )
  const byMod = await client.range('/kv/', { prefix: true, sort: { target: 'MOD', order: 'ASCEND' } })
  t.same(
    byMod.kvs.map((kv) => kv.key),
    ['/kv/a', '/kv/b', '/kv/c']
  )
  const keysOnly = await client.range('/kv/', { prefix: true, keysOnly: true })
  t.same(
    keysOnly.kvs.map((kv) => [kv.key, kv.value]),
    [
      ['/kv/a', ''],
      ['/kv/b', ''],
      ['/kv/c', '']
    ]
  )
  const countOnly = await client.range('/kv/', { prefix: true, countOnly: true })
  t.same(countOnly.kvs, [])
  t.equal(countOnly.count, 3)
  const between = await client.range('/kv/a', { rangeEnd: '/kv/c' })
  t.same(
    between.kvs.map((kv) => kv.key),
    ['/kv/a', '/kv/b']
  )
  const past = await client.range('/kv/a', { revision: first.header.revision })
  t.equal(past.kvs[0]?.value, 'alpha', 'read at an older revision')
  t.equal((await client.range('/kv/a', { serializable: true })).kvs[0]?.value, 'alpha-2')

  const deleted = await client.delete('/kv/', { prefix: true, prevKv: true })
  t.equal(deleted.deleted, 3)
  t.same(deleted.prevKvs.map((kv) => kv.key).sort(), ['/kv/a', '/kv/b', '/kv/c'])
  t.equal((await client.range('/kv/', { prefix: true })).count, 0)
  t.equal((await client.delete('/kv/none')).deleted, 0)
  t.equal((await client.get('/kw/outside'))?.value, 'x', 'the prefix range ends where it should')
})

void t.test('txn: every compare target and result, both branches, the answers of each op', async (t) => {
  const created = await client.put('/txn/k', 'v1')
  const updated = await client.put('/txn/k', 'v2')
  const cases: [string, EtcdCompare, boolean][] = [
    ['value equal', { key: '/txn/k', target: 'VALUE', result: 'EQUAL', value: 'v2' }, true],
    ['value equal (wrong)', { key: '/txn/k', target: 'VALUE', result: 'EQUAL', value: 'v1' }, false],
    ['value not equal', { key: '/txn/k', target: 'VALUE', result: 'NOT_EQUAL', value: 'v1' }, true],
    ['value greater', { key: '/txn/k', target: 'VALUE', result: 'GREATER', value: 'v1' }, true],
    ['value less', { key: '/txn/k', target: 'VALUE', result: 'LESS', value: 'v1' }, false],
    ['version equal', { key: '/txn/k', target: 'VERSION', result: 'EQUAL', version: 2 }, true],
    ['version greater', { key: '/txn/k', target: 'VERSION', result: 'GREATER', version: 2 }, false],
    ['version less', { key: '/txn/k', target: 'VERSION', result: 'LESS', version: 3 }, true],
    ['absent key has version 0', { key: '/txn/absent', target: 'VERSION', result: 'EQUAL', version: 0 }, true],
    ['create revision equal', { key: '/txn/k', target: 'CREATE', result: 'EQUAL', createRevision: created.header.revision }, true],
    ['create revision 0 means absent', { key: '/txn/k', target: 'CREATE', result: 'EQUAL', createRevision: 0 }, false],
    ['mod revision equal', { key: '/txn/k', target: 'MOD', result: 'EQUAL', modRevision: updated.header.revision }, true],
    ['mod revision stale', { key: '/txn/k', target: 'MOD', result: 'EQUAL', modRevision: created.header.revision }, false],
    ['mod revision not equal', { key: '/txn/k', target: 'MOD', result: 'NOT_EQUAL', modRevision: created.header.revision }, true],
    ['mod revision less', { key: '/txn/k', target: 'MOD', result: 'LESS', modRevision: updated.header.revision + 1 }, true],
    ['lease equal none', { key: '/txn/k', target: 'LEASE', result: 'EQUAL', lease: '0' }, true]
  ]
  for (const [name, compare, expected] of cases) {
    const result = await client.txn({ compare: [compare], success: [{ range: { key: '/txn/k' } }], failure: [] })
    t.equal(result.succeeded, expected, name)
  }
  // several compares: all must hold
  const both = await client.txn({
    compare: [
      { key: '/txn/k', target: 'VALUE', result: 'EQUAL', value: 'v2' },
      { key: '/txn/k', target: 'VERSION', result: 'EQUAL', version: 1 }
    ],
    success: [{ put: { key: '/txn/k', value: 'never' } }],
    failure: [{ range: { key: '/txn/k' } }, { range: { key: '/txn/none' } }]
  })
  t.equal(both.succeeded, false)
  t.equal(both.responses.length, 2)
  t.match(both.responses[0], { range: { count: 1, kvs: [{ value: 'v2' }] } })
  t.match(both.responses[1], { range: { count: 0, kvs: [] } })

  // a compare-and-swap on the mod revision, as an If-Match write: exactly one of two wins
  const current = await client.get('/txn/k')
  const swap = (value: string) =>
    client.txn({
      compare: [{ key: '/txn/k', target: 'MOD', result: 'EQUAL', modRevision: current?.modRevision ?? 0 }],
      success: [{ put: { key: '/txn/k', value, prevKv: true } }, { delete: { key: '/txn/other', prevKv: true } }],
      failure: [{ range: { key: '/txn/k' } }]
    })
  await client.put('/txn/other', 'o')
  const [one, two] = await Promise.all([swap('first'), swap('second')])
  t.equal([one, two].filter((result) => result.succeeded).length, 1, 'exactly one compare-and-swap wins')
  const winner = one.succeeded ? one : two
  const loser = one.succeeded ? two : one
  t.match(winner.responses[0], { put: { prevKv: { value: 'v2' } } })
  t.match(winner.responses[1], { delete: { deleted: 1, prevKvs: [{ key: '/txn/other', value: 'o' }] } })
  t.equal(winner.header.revision, (current?.modRevision ?? 0) + 2, 'one transaction, one revision (after the put of /txn/other)')
  t.match(loser.responses[0], { range: { kvs: [{ modRevision: winner.header.revision }] } })
  // create-if-absent
  const create = () => client.txn({ compare: [{ key: '/txn/new', target: 'CREATE', result: 'EQUAL', createRevision: 0 }], success: [{ put: { key: '/txn/new', value: 'n' } }] })
  t.equal((await create()).succeeded, true)
  t.equal((await create()).succeeded, false)
  // prefix compare: every key of the range
  await client.put('/txn/p/1', 'a')
  await client.put('/txn/p/2', 'a')
  t.equal((await client.txn({ compare: [{ key: '/txn/p/', prefix: true, target: 'VALUE', result: 'EQUAL', value: 'a' }] })).succeeded, true)
  await client.put('/txn/p/2', 'b')
  t.equal((await client.txn({ compare: [{ key: '/txn/p/', prefix: true, target: 'VALUE', result: 'EQUAL', value: 'a' }] })).succeeded, false)
})

void t.test('bad requests are refused with ETCD_REQUEST_FAILED, not retried', async (t) => {
  const started = Date.now()
  await t.rejects(
    client.txn({
      compare: [],
      success: [{ put: { key: '/dup', value: '1' } }, { put: { key: '/dup', value: '2' } }]
    }),
    { code: 'ETCD_REQUEST_FAILED', message: /duplicate key/ }
  )
  await t.rejects(client.range('/r', { revision: 1_000_000 }), { code: 'ETCD_REQUEST_FAILED', message: /future revision/, grpcCode: 11 })
  t.ok(Date.now() - started < 2_000, 'refused at once')
})

void t.test('watch: every event in order, a transaction’s events together, DELETE, prevKv, prefix, from a past revision', async (t) => {
  const start = (await client.put('/w/seed', 's')).header.revision + 1
  const watch = client.watch({ key: '/w/', prefix: true, startRevision: start, prevKv: true })
  const writes = (async () => {
    for (let index = 0; index < 50; index++) await client.put(`/w/k${index % 5}`, `v${index}`)
    await client.txn({
      compare: [],
      success: [{ put: { key: '/w/t1', value: 'a' } }, { put: { key: '/w/t2', value: 'b' } }, { delete: { key: '/w/k0' } }]
    })
    await client.put('/x/outside', 'not watched')
    await client.delete('/w/k1')
  })()
  const batches = await collect(watch, (seen) => eventCount(seen) >= 54)
  await writes
  const events = batches.flatMap((batch) => batch.events)
  t.equal(events.length, 54)
  const revisions = events.map((event) => event.kv.modRevision)
  t.same(
    revisions.slice(0, 50),
    Array.from({ length: 50 }, (_, index) => start + index),
    'one revision per put, none missing, in order'
  )
  t.same(
    events.slice(0, 50).map((event) => event.kv.value),
    Array.from({ length: 50 }, (_, index) => `v${index}`)
  )
  const txnEvents = events.slice(50, 53)
  t.same(
    txnEvents.map((event) => [event.type, event.kv.key, event.kv.modRevision]),
    [
      ['PUT', '/w/t1', start + 50],
      ['PUT', '/w/t2', start + 50],
      ['DELETE', '/w/k0', start + 50]
    ],
    'a transaction is one revision'
  )
  t.ok(
    batches.some((batch) => batch.events.some((event) => event.kv.key === '/w/t1') && batch.events.some((event) => event.kv.key === '/w/k0')),
    'in one batch'
  )
  t.equal(txnEvents[2]?.prevKv?.value, 'v45', 'the deleted value as prevKv')
  t.match(events[53], { type: 'DELETE', kv: { key: '/w/k1', modRevision: start + 52, value: '' }, prevKv: { value: 'v46' } })
  t.equal(events[5]?.prevKv?.value, 'v0')
  t.equal(watch.nextRevision, start + 53)
})

void t.test('watch from now: delivers what is written once it is connected; close ends the iteration', async (t) => {
  let connected: () => void = () => undefined
  const ready = new Promise<void>((resolve) => (connected = resolve))
  const watch = client.watch({ key: '/now', onConnectionChange: (state) => state === 'connected' && connected() })
  const iterator = watch[Symbol.asyncIterator]()
  const first = iterator.next()
  await ready
  await client.put('/now', 'a')
  await client.put('/now', 'b')
  const values = ((await first).value as EtcdWatchBatch).events.map((event) => event.kv.value)
  if (values.length < 2) values.push(...((await iterator.next()).value as EtcdWatchBatch).events.map((event) => event.kv.value))
  t.same(values, ['a', 'b'])
  const pending = iterator.next()
  watch.close()
  t.same(await pending, { done: true, value: undefined })
})

void t.test('large values: the stream is cut across chunks and put back together', async (t) => {
  const big = 'x'.repeat(200_000)
  const start = (await client.put('/big/seed', '')).header.revision + 1
  await client.put('/big/a', big)
  await client.put('/big/b', big + 'y')
  const watch = client.watch({ key: '/big/', prefix: true, startRevision: start })
  const batches = await collect(watch, (seen) => eventCount(seen) >= 2)
  const events = batches.flatMap((batch) => batch.events)
  t.equal(events[0]?.kv.value.length, 200_000)
  t.equal(events[1]?.kv.value, big + 'y')
})

void t.test('compaction: a read or watch before it is ETCD_COMPACTED with the compact revision, never a silent skip', async (t) => {
  const old = (await client.put('/c/k', '1')).header.revision
  await client.put('/c/k', '2')
  await client.put('/c/k', '3')
  const at = await cluster.compact()
  await t.rejects(client.range('/c/k', { revision: old }), { code: 'ETCD_COMPACTED' })
  const watch = client.watch({ key: '/c/k', startRevision: old })
  const error = await (async () => {
    try {
      for await (const batch of watch) t.fail(`no batch expected, got ${JSON.stringify(batch)}`)
    } catch (caught) {
      return caught
    }
  })()
  t.ok(isEtcdError(error))
  t.match(error, { code: 'ETCD_COMPACTED', compactRevision: at, resumeRevision: old, statusCode: 500 })
  // from the compact revision on, the history is there
  const fromCompaction = client.watch({ key: '/c/k', startRevision: at })
  const batches = await collect(fromCompaction, (seen) => eventCount(seen) >= 1)
  t.equal(batches[0]?.events[0]?.kv.value, '3')
})

void t.test('leases: grant, keepalive, time to live with keys, revoke deletes the keys; a keeper keeps one alive and reports loss', async (t) => {
  const lease = await client.grantLease(5)
  t.match(lease.id, /^\d+$/)
  t.equal(lease.ttl, 5)
  await client.put('/lease/k', 'v', { lease: lease.id })
  t.equal((await client.get('/lease/k'))?.lease, lease.id)
  t.equal(await client.keepAliveOnce(lease.id), 5)
  const ttl = await client.leaseTimeToLive(lease.id, { keys: true })
  t.equal(ttl.grantedTtl, 5)
  t.ok(ttl.ttl > 0 && ttl.ttl <= 5)
  t.same(ttl.keys, ['/lease/k'])
  t.equal(await client.revokeLease(lease.id), true)
  t.equal(await client.get('/lease/k'), undefined, 'revoking deletes its keys')
  t.equal(await client.keepAliveOnce(lease.id), 0, 'a revoked lease renews to 0')
  t.equal((await client.leaseTimeToLive(lease.id)).ttl, -1)
  t.equal(await client.revokeLease(lease.id), false)

  const kept = await client.grantLease(2)
  const renewals: number[] = []
  let lost: LeaseLoss | undefined
  const keeper = keepLeaseAlive(client, kept.id, { ttlSeconds: 2, intervalMs: 200, onRenewed: (ttl) => renewals.push(ttl), onLost: (loss) => (lost = loss) })
  t.teardown(() => keeper.stop())
  const deadline = Date.now() + 10_000
  while (renewals.length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(renewals.slice(0, 3), [2, 2, 2])
  t.ok(keeper.aliveUntil > Date.now())
  await client.revokeLease(kept.id)
  while (!lost && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  t.match(lost, { id: kept.id, reason: 'expired', error: { code: 'ETCD_REQUEST_FAILED' } })
})

void t.test('status: the member, its leader and version', async (t) => {
  const status = await client.status({ endpoint: 0 })
  t.equal(status.version, '3.4.23')
  t.equal(status.leader, status.header.memberId, 'a single member leads itself')
  t.equal(status.endpoint, cluster.endpoints[0])
  t.same(status.errors, [])
  t.ok(status.raftIndex > 0 && status.dbSize > 0)
})
