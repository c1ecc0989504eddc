import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createParser, type EventSourceMessage } from 'eventsource-parser'
import t from 'tap'
import { request } from 'undici'
import type { RegistryChange, RegistrySnapshot } from '../../core/registry-events.js'
import { RegistryModel } from '../../core/registry-model.js'
import { buildRegistryApp } from '../../registry/app.js'
import { RegistryWatcher } from '../../registry/client/watch-client.js'
import { Registry } from '../../registry/registry.js'
import { FileStore } from '../../registry/store/file-store.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { startTestRegistry, testTokenSet, TOKENS, waitFor, type TestRegistry } from '../helpers/registry-harness.js'

/** The part of a tap test these helpers need. */
type Test = { teardown(fn: () => unknown): void }

/** A RegistryWatcher whose handlers mirror the registry into a RegistryModel (which throws on any gap). */
interface Mirror {
  watcher: RegistryWatcher
  model: RegistryModel | undefined
  snapshots: RegistrySnapshot[]
  changes: RegistryChange[]
  connection: ('connected' | 'disconnected')[]
  errors: Error[]
}

function mirror(t: Test, url: string, options: { since?: number; idleTimeoutMs?: number } = {}): Mirror {
  const state: Omit<Mirror, 'watcher'> = { model: undefined, snapshots: [], changes: [], connection: [], errors: [] }
  const watcher = new RegistryWatcher({
    url,
    token: TOKENS.reader,
    initialBackoffMs: 20,
    maxBackoffMs: 200,
    random: () => 0.5,
    ...(options.since === undefined ? {} : { since: options.since }),
    ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
    handlers: {
      onSnapshot(snapshot) {
        state.snapshots.push(snapshot)
        state.model = RegistryModel.fromSnapshot(snapshot)
      },
      onChange(change) {
        state.changes.push(change)
        try {
          if (!state.model) throw new Error(`change ${change.revision} arrived before any snapshot`)
          state.model.apply(change)
        } catch (error) {
          state.errors.push(error as Error)
        }
      },
      onConnectionChange(connection) {
        state.connection.push(connection)
      }
    }
  })
  const result = Object.assign(state, { watcher })
  watcher.start()
  t.teardown(() => watcher.stop())
  return result
}

/** A raw SSE stream read with undici, every event kept in order. */
interface RawStream {
  status: number
  events: EventSourceMessage[]
  /** the text before the first event (the retry line) */
  raw: string
  close(): void
}

async function openStream(t: Test, url: string, options: { query?: string; headers?: Record<string, string> } = {}): Promise<RawStream> {
  const abort = new AbortController()
  const response = await request(`${url}/v1/watch${options.query ?? ''}`, {
    headers: { authorization: `Bearer ${TOKENS.reader}`, accept: 'text/event-stream', ...options.headers },
    signal: abort.signal,
    bodyTimeout: 0
  })
  const stream: RawStream = { status: response.statusCode, events: [], raw: '', close: () => abort.abort() }
  t.teardown(stream.close)
  const parser = createParser({ onEvent: (event) => stream.events.push(event) })
  void (async () => {
    const decoder = new TextDecoder()
    try {
      for await (const chunk of response.body) {
        const text = decoder.decode(chunk as Buffer, { stream: true })
        stream.raw += text
        parser.feed(text)
      }
    } catch {
      // aborted by the test or closed by the registry
    }
  })()
  return stream
}

/** Events up to (not including) the first heartbeat, which the registry sends once a stream has caught up. */
async function untilCaughtUp(stream: RawStream): Promise<EventSourceMessage[]> {
  const index = await waitFor(() => {
    const found = stream.events.findIndex((event) => event.event === 'heartbeat')
    return found === -1 ? undefined : found
  }, 'the caught-up heartbeat')
  return stream.events.slice(0, index)
}

async function register(reg: TestRegistry, service: string, id: string, version = 'v1'): Promise<void> {
  const response = await reg.call('POST', `/v1/services/${service}/instances`, { token: 'registrar', body: { version, host: '127.0.0.1', port: 9000, id } })
  if (response.status !== 201 && response.status !== 200) throw new Error(`register ${service}/${id}: ${response.status} ${response.text}`)
}

/** A weight change to watch; versions need no instance here (allowUnregistered), these tests route nothing. */
async function setWeights(reg: TestRegistry, service: string, weights: Record<string, number>): Promise<number> {
  const response = await reg.call('PUT', `/v1/services/${service}/weights?allowUnregistered=true`, { token: 'operator', body: { weights } })
  if (response.status !== 200) throw new Error(`weights ${service}: ${response.status} ${response.text}`)
  return response.json.revision as number
}

async function deregister(reg: TestRegistry, service: string, id: string): Promise<void> {
  const response = await reg.call('DELETE', `/v1/services/${service}/instances/${id}`, { token: 'registrar' })
  if (response.status !== 204) throw new Error(`deregister ${service}/${id}: ${response.status} ${response.text}`)
}

/** The registry state as GET /v1/services shows it, reduced to what a snapshot also carries. */
async function restState(url: string): Promise<{ revision: number; services: unknown[] }> {
  const response = await request(`${url}/v1/services`, { headers: { authorization: `Bearer ${TOKENS.reader}` } })
  const body = (await response.body.json()) as { revision: number; services: { name: string; weights: Record<string, number>; instances: Record<string, unknown>[] }[] }
  return {
    revision: body.revision,
    services: body.services.map((service) => ({
      name: service.name,
      weights: service.weights,
      instances: service.instances.map(({ id, version, host, port, status, metadata }) => ({ id, version, host, port, status, metadata }))
    }))
  }
}

function modelState(model: RegistryModel): { revision: number; services: unknown[] } {
  const snapshot = model.snapshot()
  return {
    revision: snapshot.revision,
    services: snapshot.services.map((service) => ({
      name: service.name,
      weights: service.weights,
      instances: service.instances.map(({ id, version, host, port, status, metadata }) => ({ id, version, host, port, status, metadata }))
    }))
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i)
}

/** About 50 changes of every kind, some of them concurrent. */
async function churn(reg: TestRegistry): Promise<void> {
  for (let i = 0; i < 4; i++) await register(reg, 'api', `api-${i}`)
  await register(reg, 'api', 'api-canary', 'v2')
  await register(reg, 'billing', 'billing-0')
  for (let step = 10; step <= 50; step += 10) await setWeights(reg, 'api', { v1: 100 - step, v2: step })
  await Promise.all(range(0, 9).map((i) => register(reg, 'worker', `worker-${i}`)))
  await Promise.all([
    setWeights(reg, 'billing', { v1: 100 }),
    deregister(reg, 'api', 'api-0'),
    reg.call('PUT', '/v1/services/api/instances/api-1/status', { token: 'registrar', body: { status: 'draining' } }),
    setWeights(reg, 'api', { v1: 30, v2: 70 })
  ])
  await Promise.all(range(0, 4).map((i) => deregister(reg, 'worker', `worker-${i}`)))
  for (let i = 0; i < 8; i++) await setWeights(reg, `svc-${i % 4}`, { v1: 100 - i * 10, v2: i * 10 })
  await deregister(reg, 'api', 'api-1')
  await register(reg, 'api', 'api-1', 'v2')
  await Promise.all(range(5, 9).map((i) => deregister(reg, 'worker', `worker-${i}`)))
  for (let i = 0; i < 4; i++) await setWeights(reg, 'billing', { v1: 100 - i, v2: i })
}

void t.test('the first connect gets a snapshot at the current revision', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  await register(reg, 'api', 'api-0')
  await register(reg, 'api', 'api-1', 'v2')
  await setWeights(reg, 'api', { v1: 80, v2: 20 })
  const current = await restState(reg.url)

  const raw = await openStream(t, reg.url)
  t.equal(raw.status, 200)
  const first = await untilCaughtUp(raw)
  t.equal(first.length, 1, 'exactly one event before the caught-up heartbeat')
  t.equal(first[0]?.event, 'snapshot')
  t.equal(first[0]?.id, String(current.revision), 'its id is the revision')
  t.match(raw.raw, /^retry: 1000\n\n/, 'the stream starts by setting the retry delay')
  const snapshot = JSON.parse(first[0]?.data ?? '{}') as RegistrySnapshot
  t.equal(snapshot.revision, current.revision)
  t.same(modelState(RegistryModel.fromSnapshot(snapshot)), current, 'the snapshot is the state GET /v1/services shows')
  const heartbeat = raw.events.find((event) => event.event === 'heartbeat')
  t.same(JSON.parse(heartbeat?.data ?? '{}'), { revision: current.revision }, 'the heartbeat carries the revision')

  const watched = mirror(t, reg.url)
  await waitFor(() => (watched.snapshots.length > 0 ? true : undefined), 'the watcher snapshot')
  t.equal(watched.snapshots[0]?.revision, current.revision)
  t.equal(watched.watcher.revision, current.revision)
  t.same(watched.connection, ['connected'])
})

void t.test('changes arrive in revision order with no gaps and the mirror ends equal to GET /v1/services', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  await register(reg, 'api', 'api-seed')
  const watched = mirror(t, reg.url)
  const start = await waitFor(() => watched.snapshots[0]?.revision, 'the snapshot')

  await churn(reg)
  const final = await restState(reg.url)
  t.ok(final.revision - start >= 50, `made ${final.revision - start} changes`)
  await waitFor(() => (watched.watcher.revision === final.revision ? true : undefined), 'the watcher to reach the final revision')

  t.same(
    watched.changes.map((change) => change.revision),
    range(start + 1, final.revision),
    'every revision once, consecutively'
  )
  t.same(watched.errors, [], 'the model applied every change without a gap')
  t.equal(watched.snapshots.length, 1, 'no second snapshot')
  t.ok(watched.model, 'the mirror has a model')
  if (watched.model) t.same(modelState(watched.model), final, 'the mirror matches GET /v1/services')
  const types = new Set(watched.changes.map((change) => change.type))
  t.same([...types].sort(), ['instance-registered', 'instance-removed', 'instance-status-changed', 'weights-changed'], 'every kind of change was seen')
})

void t.test('reconnecting with since gets exactly the missed changes and no snapshot', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  await register(reg, 'api', 'api-0')
  await register(reg, 'api', 'api-1', 'v2')
  const since = reg.registry.revision
  await setWeights(reg, 'api', { v1: 90, v2: 10 })
  await deregister(reg, 'api', 'api-0')
  await register(reg, 'billing', 'billing-0')
  const now = reg.registry.revision

  const stream = await openStream(t, reg.url, { query: `?since=${since}` })
  t.equal(stream.status, 200)
  const missed = await untilCaughtUp(stream)
  t.same(
    missed.map((event) => event.event),
    missed.map(() => 'change'),
    'only changes, no snapshot'
  )
  t.same(
    missed.map((event) => Number(event.id)),
    range(since + 1, now),
    'exactly the missed revisions'
  )
  t.match(
    missed.map((event) => JSON.parse(event.data) as RegistryChange),
    [
      { type: 'weights-changed', service: 'api', weights: { v1: 90, v2: 10 } },
      { type: 'instance-removed', id: 'api-0', reason: 'deregistered' },
      { type: 'weights-changed', service: 'billing' },
      { type: 'instance-registered', instance: { id: 'billing-0' } }
    ]
  )

  const live = await setWeights(reg, 'api', { v1: 50, v2: 50 })
  await waitFor(() => (stream.events.some((event) => event.id === String(live)) ? true : undefined), 'the live change')
  t.same(
    stream.events.filter((event) => event.event !== 'heartbeat').map((event) => Number(event.id)),
    range(since + 1, live),
    'then the live change follows'
  )

  const current = await openStream(t, reg.url, { query: `?since=${live}` })
  t.same(await untilCaughtUp(current), [], 'since = the current revision: nothing to send, just the heartbeat')

  const watched = mirror(t, reg.url, { since })
  await waitFor(() => (watched.watcher.revision === live ? true : undefined), 'the resumed watcher to catch up')
  t.same(watched.snapshots, [], 'the client resumed without a snapshot')
  t.same(
    watched.changes.map((change) => change.revision),
    range(since + 1, live)
  )
})

void t.test('since older than the hub remembers, or in the future, gets a fresh snapshot', async (t) => {
  const reg = await startTestRegistry({ watchBuffer: 5 })
  t.teardown(reg.destroy)
  await register(reg, 'api', 'api-0') // revisions 1 and 2
  for (let i = 1; i <= 8; i++) await setWeights(reg, 'api', { v1: 100 - i, v2: i })
  const now = reg.registry.revision
  t.equal(now, 10)

  const oldest = await openStream(t, reg.url, { query: `?since=${now - 5}` })
  const kept = await untilCaughtUp(oldest)
  t.same(
    kept.map((event) => `${event.event}:${event.id}`),
    range(now - 4, now).map((revision) => `change:${revision}`),
    'the last 5 changes are still remembered'
  )

  for (const since of [0, 1, now - 6]) {
    const stream = await openStream(t, reg.url, { query: `?since=${since}` })
    const events = await untilCaughtUp(stream)
    t.same(
      events.map((event) => `${event.event}:${event.id}`),
      [`snapshot:${now}`],
      `since=${since} is too old: a snapshot`
    )
  }
  for (const since of [now + 1, 999_999]) {
    const stream = await openStream(t, reg.url, { query: `?since=${since}` })
    const events = await untilCaughtUp(stream)
    t.same(
      events.map((event) => `${event.event}:${event.id}`),
      [`snapshot:${now}`],
      `since=${since} is in the future: a snapshot`
    )
    t.equal((JSON.parse(events[0]?.data ?? '{}') as RegistrySnapshot).revision, now)
  }

  const invalid = await request(`${reg.url}/v1/watch?since=abc`, { headers: { authorization: `Bearer ${TOKENS.reader}` } })
  t.equal(invalid.statusCode, 400, 'a since that is not a revision is refused')
  await invalid.body.text()

  const future = mirror(t, reg.url, { since: 500 })
  await waitFor(() => (future.snapshots.length === 1 ? true : undefined), 'the snapshot for a watcher from the future')
  t.equal(future.watcher.revision, now, 'the watcher adopts the registry revision')
  const next = await setWeights(reg, 'api', { v1: 1, v2: 99 })
  await waitFor(() => (future.watcher.revision === next ? true : undefined), 'the next change')
  t.same(
    future.changes.map((change) => change.revision),
    [next]
  )
})

void t.test('Last-Event-ID works like since', async (t) => {
  const reg = await startTestRegistry({ watchBuffer: 5 })
  t.teardown(reg.destroy)
  await register(reg, 'api', 'api-0')
  const since = reg.registry.revision
  await setWeights(reg, 'api', { v1: 60, v2: 40 })
  await setWeights(reg, 'api', { v1: 40, v2: 60 })
  const now = reg.registry.revision

  const resumed = await openStream(t, reg.url, { headers: { 'last-event-id': String(since) } })
  t.same(
    (await untilCaughtUp(resumed)).map((event) => `${event.event}:${event.id}`),
    range(since + 1, now).map((revision) => `change:${revision}`),
    'the missed changes'
  )

  const querywins = await openStream(t, reg.url, { query: `?since=${now - 1}`, headers: { 'last-event-id': String(since) } })
  t.same(
    (await untilCaughtUp(querywins)).map((event) => `${event.event}:${event.id}`),
    [`change:${now}`],
    'since in the query wins over the header'
  )

  const future = await openStream(t, reg.url, { headers: { 'last-event-id': String(now + 100) } })
  t.same(
    (await untilCaughtUp(future)).map((event) => event.event),
    ['snapshot'],
    'a future Last-Event-ID gets a snapshot'
  )

  for (let i = 0; i < 6; i++) await setWeights(reg, 'api', { v1: 50 + i, v2: 50 - i })
  const stale = await openStream(t, reg.url, { headers: { 'last-event-id': String(since) } })
  t.same(
    (await untilCaughtUp(stale)).map((event) => `${event.event}:${event.id}`),
    [`snapshot:${reg.registry.revision}`],
    'a forgotten Last-Event-ID gets a snapshot'
  )

  const garbage = await openStream(t, reg.url, { headers: { 'last-event-id': 'not-a-revision' } })
  t.equal(garbage.status, 200)
  t.same(
    (await untilCaughtUp(garbage)).map((event) => event.event),
    ['snapshot'],
    'an unusable Last-Event-ID is ignored'
  )
})

void t.test('20 concurrent watchers all receive the same sequence', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  await register(reg, 'api', 'api-seed')
  const watchers = Array.from({ length: 20 }, () => mirror(t, reg.url))
  await waitFor(() => (watchers.every((w) => w.snapshots.length === 1) ? true : undefined), 'every snapshot')
  const start = reg.registry.revision
  t.ok(
    watchers.every((w) => w.snapshots[0]?.revision === start),
    'every snapshot is at the same revision'
  )
  const metrics = await reg.call('GET', '/metrics', { token: null })
  t.match(metrics.text, /^switchyard_registry_watchers 20$/m, 'the registry counts 20 watchers')

  await churn(reg)
  const final = await restState(reg.url)
  await waitFor(() => (watchers.every((w) => w.watcher.revision === final.revision) ? true : undefined), 'every watcher to reach the final revision')
  const expected = range(start + 1, final.revision)
  const sequences = watchers.map((w) => JSON.stringify(w.changes))
  t.ok(
    sequences.every((sequence) => sequence === sequences[0]),
    'the 20 sequences are identical, change for change'
  )
  t.same(
    watchers[0]?.changes.map((change) => change.revision),
    expected,
    'and consecutive'
  )
  t.ok(
    watchers.every((w) => w.errors.length === 0),
    'no watcher saw a gap'
  )
  t.ok(
    watchers.every((w) => w.model !== undefined && JSON.stringify(modelState(w.model)) === JSON.stringify(final)),
    'every mirror matches GET /v1/services'
  )
})

void t.test('heartbeat events arrive on an idle stream', async (t) => {
  const reg = await startTestRegistry({ heartbeatMs: 50 })
  t.teardown(reg.destroy)
  await register(reg, 'api', 'api-0')
  // Resuming at the current revision brings no snapshot and no change: only heartbeats tell it the stream is live.
  const watched = mirror(t, reg.url, { since: reg.registry.revision })
  const stream = await openStream(t, reg.url)
  await waitFor(() => (stream.events.filter((event) => event.event === 'heartbeat').length >= 12 ? true : undefined), '12 heartbeats')
  await waitFor(() => (watched.connection.includes('connected') ? true : undefined), 'the watcher to report connected')
  const heartbeats = stream.events.filter((event) => event.event === 'heartbeat')
  t.ok(
    heartbeats.every((event) => event.data === JSON.stringify({ revision: reg.registry.revision })),
    'each heartbeat carries the current revision'
  )
  t.ok(
    heartbeats.every((event) => event.id === undefined),
    'heartbeats carry no id, so they do not move Last-Event-ID'
  )
  t.same(watched.snapshots, [], 'the watcher got no snapshot')
  t.same(watched.changes, [], 'nor any change')

  const revision = await setWeights(reg, 'api', { v1: 100 })
  await waitFor(
    () => (stream.events.some((event) => event.event === 'heartbeat' && event.data === JSON.stringify({ revision })) ? true : undefined),
    'a heartbeat with the new revision'
  )
})

/** A registry on the given port over an existing data dir, as a restarted process would be. */
async function restartOnPort(t: Test, dataDir: string, port: number, beforeListening: (registry: Registry) => Promise<void> = async () => {}): Promise<Registry> {
  const registry = await Registry.open({ store: new FileStore({ dataDir }), clock: new FakeClock().now })
  await beforeListening(registry)
  const app = buildRegistryApp({ registry, tokens: testTokenSet(), watch: { heartbeatMs: 60_000 } })
  t.teardown(async () => {
    await app.close()
    await registry.close()
  })
  await app.listen({ host: '127.0.0.1', port })
  return registry
}

async function tempDir(t: Test): Promise<string> {
  const dataDir = await mkdtemp(join(tmpdir(), 'switchyard-watch-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  return dataDir
}

void t.test('a watcher follows its registry through a restart on the same port', async (t) => {
  const dataDir = await tempDir(t)
  const first = await startTestRegistry({ dataDir })
  t.teardown(first.destroy)
  await register(first, 'api', 'api-0')
  await register(first, 'api', 'api-1', 'v2')
  const watched = mirror(t, first.url)
  await waitFor(() => (watched.snapshots.length === 1 ? true : undefined), 'the first snapshot')
  await setWeights(first, 'api', { v1: 70, v2: 30 })
  const before = first.registry.revision
  await waitFor(() => (watched.watcher.revision === before ? true : undefined), 'the watcher to catch up')

  await first.close()
  await waitFor(() => (watched.connection.includes('disconnected') ? true : undefined), 'the watcher to notice')

  // Same data dir, same port; two changes are made by the new process before it listens.
  const registry = await restartOnPort(t, dataDir, Number(new URL(first.url).port), async (registry) => {
    t.equal(registry.revision, before, 'the restarted registry replayed its store')
    await registry.setWeights('api', { v1: 20, v2: 80 }, { actor: 'test' })
    await registry.register('billing', { version: 'v1', host: '127.0.0.1', port: 9100, id: 'billing-0' })
  })
  await waitFor(() => (watched.watcher.revision === registry.revision ? true : undefined), 'the watcher to reconnect and catch up')
  t.same(watched.connection, ['connected', 'disconnected', 'connected'], 'one disconnect and one reconnect reported')
  t.equal(watched.snapshots.length, 1, 'the new hub had every change since the watcher left: no snapshot needed')
  t.same(
    watched.changes.filter((change) => change.revision > before).map((change) => change.revision),
    range(before + 1, registry.revision),
    'exactly the changes made while it was away'
  )

  // first.call and first.url now reach the restarted registry on the same port.
  const live = await first.call('PUT', '/v1/services/api/weights', { token: 'operator', body: { weights: { v1: 0, v2: 100 } } })
  t.equal(live.status, 200)
  t.equal((await first.call('DELETE', '/v1/services/api/instances/api-0', { token: 'registrar' })).status, 204)
  const final = await restState(first.url)
  t.equal(final.revision, (live.json.revision as number) + 1)
  await waitFor(() => (watched.watcher.revision === final.revision ? true : undefined), 'the watcher to see the changes made after the restart')
  const firstRevision = watched.snapshots[0]?.revision ?? 0
  t.same(
    watched.changes.map((change) => change.revision),
    range(firstRevision + 1, final.revision),
    'every revision across the restart, once, in order'
  )
  t.same(watched.errors, [])
  if (watched.model) t.same(modelState(watched.model), final, 'the mirror matches GET /v1/services after the restart')
})

void t.test('a watcher that missed changes before a restart gets exactly them from the replayed journal', async (t) => {
  const dataDir = await tempDir(t)
  const first = await startTestRegistry({ dataDir })
  t.teardown(first.destroy)
  await register(first, 'api', 'api-0')
  const watched = mirror(t, first.url)
  await waitFor(() => (watched.snapshots.length === 1 ? true : undefined), 'the first snapshot')
  const seen = watched.watcher.revision
  // The watcher is away (say, partitioned) while the old process makes its last changes.
  watched.watcher.stop()
  await setWeights(first, 'api', { v1: 50, v2: 50 })
  await register(first, 'api', 'api-1', 'v2')
  await first.close()

  const registry = await restartOnPort(t, dataDir, Number(new URL(first.url).port))
  watched.watcher.start()
  await waitFor(() => (watched.watcher.revision === registry.revision ? true : undefined), 'the missed changes after the restart')
  t.ok(seen !== undefined && seen < registry.revision)
  t.equal(watched.snapshots.length, 1, 'no second snapshot: the restarted registry remembers its journal')
  t.same(
    watched.changes.map((change) => change.revision),
    range((seen ?? 0) + 1, registry.revision),
    'exactly the missed revisions, in order'
  )
  if (watched.model) t.same(modelState(watched.model), await restState(first.url), 'the mirror matches GET /v1/services')
  const next = await registry.setWeights('api', { v1: 10, v2: 90 }, { actor: 'test' })
  await waitFor(() => (watched.watcher.revision === next.revision ? true : undefined), 'the next change')
  t.same(watched.errors, [])
})

void t.test('a watcher resumes without a snapshot when nothing changed during a restart', async (t) => {
  const dataDir = await tempDir(t)
  const first = await startTestRegistry({ dataDir })
  t.teardown(first.destroy)
  await register(first, 'api', 'api-0')
  await setWeights(first, 'api', { v1: 100 })
  const watched = mirror(t, first.url)
  await waitFor(() => (watched.snapshots.length === 1 ? true : undefined), 'the first snapshot')
  const revision = first.registry.revision
  await first.close()
  await waitFor(() => (watched.connection.includes('disconnected') ? true : undefined), 'the watcher to notice')

  const registry = await restartOnPort(t, dataDir, Number(new URL(first.url).port))
  await waitFor(() => (watched.connection.length === 3 ? true : undefined), 'the reconnect')
  t.equal(watched.snapshots.length, 1, 'no second snapshot was needed')

  // A stream that claims an older revision than the replayed one is not told it is caught up:
  // it is sent the journal's changes after it.
  for (const since of [0, revision - 1]) {
    const stream = await openStream(t, first.url, { query: `?since=${since}` })
    const events = await untilCaughtUp(stream)
    t.not(events.length, 0, `since=${since} after the restart gets something`)
    t.same(
      events.map((event) => (event.event === 'snapshot' ? `snapshot:${event.id}` : `change:${event.id}`)),
      range(since + 1, revision).map((r) => `change:${r}`),
      `since=${since} gets the replayed changes after it`
    )
  }
  // From another history (ahead of this one): a snapshot, marked as such.
  const foreign = await openStream(t, first.url, { query: `?since=${revision + 100}` })
  const foreignEvents = await untilCaughtUp(foreign)
  t.same(
    foreignEvents.map((event) => (event.event === 'snapshot' ? `snapshot:${event.id}:${(JSON.parse(event.data) as { reason?: string }).reason}` : 'change')),
    [`snapshot:${revision}:history-unavailable`],
    'a revision this registry never had gets a snapshot marked history-unavailable'
  )
  const current = await openStream(t, first.url)
  await untilCaughtUp(current)
  const heartbeat = current.events.find((event) => event.event === 'heartbeat')
  t.same(JSON.parse(heartbeat?.data ?? '{}'), { revision }, 'heartbeats after the restart carry the replayed revision')

  const change = await registry.setWeights('api', { v1: 90, v2: 10 }, { actor: 'test', allowUnregistered: true })
  await waitFor(() => (watched.watcher.revision === change.revision ? true : undefined), 'the change after the restart')
  t.same(
    watched.changes.map((c) => c.revision),
    [change.revision]
  )
  t.same(watched.errors, [])
})
