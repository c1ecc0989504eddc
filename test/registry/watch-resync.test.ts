import { createServer, request as httpRequest, type Server } from 'node:http'
import t from 'tap'
import type { RegistryChange, RegistrySnapshot } from '../../core/registry-events.js'
import { RegistryModel } from '../../core/registry-model.js'
import { buildTable, type RouteTable } from '../../core/route-table.js'
import { RegistryWatcher } from '../../registry/client/watch-client.js'
import { RouteTableSource } from '../../router/table/table-source.js'
import { startTestRegistry, TOKENS, waitFor, type TestRegistry } from '../helpers/registry-harness.js'

/**
 * The watch client must never skip a change: a revision counts as seen only once its
 * handler applied it, and a failed apply or a gap in the revisions makes the client
 * start over from a snapshot. Both are checked against a real registry: the table
 * built from what the client applied must equal the table of a fresh source.
 */

type Test = { teardown(fn: () => unknown): void }

async function register(reg: TestRegistry, id: string, version: string): Promise<void> {
  const response = await reg.call('POST', '/v1/services/api/instances', { token: 'registrar', body: { version, host: '127.0.0.1', port: 9000, id } })
  if (response.status !== 201 && response.status !== 200) throw new Error(`register ${id}: ${response.status} ${response.text}`)
}

async function setWeights(reg: TestRegistry, weights: Record<string, number>): Promise<number> {
  const response = await reg.call('PUT', '/v1/services/api/weights', { token: 'operator', body: { weights } })
  if (response.status !== 200) throw new Error(`weights: ${response.status} ${response.text}`)
  return response.json.revision as number
}

/** A table reduced to what routing uses, endpoints named by instance id. */
function describe(table: RouteTable<string>): unknown {
  return {
    revision: table.revision,
    services: [...table.services.values()].map((route) => ({
      name: route.name,
      versions: route.versions.map((version) => ({ name: version.name, weight: version.weight, endpoints: version.endpoints })),
      available: route.available.map((version) => version.name),
      fallbackActive: route.fallbackActive
    }))
  }
}

/** A route table source that has never failed, started now: what the router should end with. */
async function freshTable(t: Test, url: string, revision: number): Promise<unknown> {
  const fresh = new RouteTableSource<string>({ registryUrl: url, token: TOKENS.reader, endpointFor: (instance) => instance.id })
  fresh.start()
  t.teardown(() => fresh.stop())
  await waitFor(() => (fresh.table.revision === revision ? true : undefined), 'the fresh source at the final revision')
  return describe(fresh.table)
}

/** A watcher whose handlers keep a model and a table, as a router does, and log every event. */
interface Recorder {
  watcher: RegistryWatcher
  /** `snapshot:R`, `change:R` and `threw:R`, in order */
  events: string[]
  table: RouteTable<string> | undefined
  /** the handler throws on the change with this revision, once */
  failAt: number | undefined
}

function recorder(t: Test, url: string, initialBackoffMs = 20): Recorder {
  let model: RegistryModel | undefined
  const state: Omit<Recorder, 'watcher'> = { events: [], table: undefined, failAt: undefined }
  const watcher = new RegistryWatcher({
    url,
    token: TOKENS.reader,
    initialBackoffMs,
    maxBackoffMs: 10 * initialBackoffMs,
    random: () => 0.5,
    handlers: {
      onSnapshot(snapshot: RegistrySnapshot) {
        state.events.push(`snapshot:${snapshot.revision}`)
        model = RegistryModel.fromSnapshot(snapshot)
        state.table = buildTable(model, (instance) => instance.id)
      },
      onChange(change: RegistryChange) {
        if (change.revision === state.failAt) {
          state.failAt = undefined
          state.events.push(`threw:${change.revision}`)
          throw new Error(`cannot apply revision ${change.revision} right now`)
        }
        if (!model) throw new Error('a change before any snapshot')
        model.apply(change)
        state.table = buildTable(model, (instance) => instance.id, state.table, new Set([change.type === 'instance-registered' ? change.instance.service : change.service]))
        state.events.push(`change:${change.revision}`)
      }
    }
  })
  const result = Object.assign(state, { watcher })
  watcher.start()
  t.teardown(() => watcher.stop())
  return result
}

/** Every change a handler applied follows the revision applied just before it. */
function gapless(events: readonly string[]): boolean {
  let last: number | undefined
  for (const event of events) {
    const [kind, revision] = event.split(':') as [string, string]
    if (kind === 'threw') continue
    if (kind === 'change' && Number(revision) !== (last as number) + 1) return false
    last = Number(revision)
  }
  return true
}

void t.test('a handler that throws once: the revision does not advance, the watcher resyncs from a snapshot, and the table ends as a fresh one', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  await register(reg, 'api-0', 'v1')
  await register(reg, 'api-1', 'v2')
  await setWeights(reg, { v1: 100 })
  const watched = recorder(t, reg.url)
  await waitFor(() => (watched.events.length > 0 ? true : undefined), 'the first snapshot')
  const start = reg.registry.revision
  t.same(watched.events, [`snapshot:${start}`])

  watched.failAt = start + 1
  await setWeights(reg, { v1: 50, v2: 50 })
  await register(reg, 'api-2', 'v2')
  await setWeights(reg, { v1: 10, v2: 90 })
  await waitFor(() => (watched.events.filter((event) => event.startsWith('snapshot')).length === 2 ? true : undefined), 'the resync snapshot')
  t.same(watched.events.slice(0, 2), [`snapshot:${start}`, `threw:${start + 1}`], 'the handler threw on the first change and applied nothing after it')
  const resync = Number(watched.events[2]?.split(':')[1])
  t.match(watched.events[2], /^snapshot:/, 'then came a snapshot, not the changes after the failed one')
  t.ok(resync > start, 'the snapshot holds the change that failed')

  const next = await setWeights(reg, { v1: 0, v2: 100 })
  await waitFor(() => (watched.watcher.revision === next ? true : undefined), 'the watcher to apply the next change')
  t.ok(gapless(watched.events), `every change applied follows the one before (${watched.events.join(', ')})`)
  t.same(describe(watched.table as RouteTable<string>), await freshTable(t, reg.url, next), 'the table equals a fresh one')
})

void t.test('the revision the watcher reports is the last its handler applied', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  await register(reg, 'api-0', 'v1')
  await register(reg, 'api-1', 'v2')
  // A backoff long enough (500 ms) to read the revision between the failure and the resync.
  const watched = recorder(t, reg.url, 500)
  await waitFor(() => (watched.events.length > 0 ? true : undefined), 'the first snapshot')
  const start = reg.registry.revision
  t.equal(watched.watcher.revision, start)
  watched.failAt = start + 1
  t.equal(await setWeights(reg, { v1: 50, v2: 50 }), start + 1)
  await waitFor(() => (watched.events.includes(`threw:${start + 1}`) ? true : undefined), 'the failed apply')
  t.equal(watched.watcher.revision, start, 'a change whose handler threw is not counted')
  await waitFor(() => (watched.watcher.revision === start + 1 ? true : undefined), 'the resync')
  t.same(watched.events, [`snapshot:${start}`, `threw:${start + 1}`, `snapshot:${start + 1}`], 'the change came back inside a snapshot')
})

interface LossyRelay {
  url: string
  /** the request target of every watch stream opened through it */
  opened: string[]
  /** drops the change event with this revision from the stream it is on, once */
  dropOnce(revision: number): void
}

/**
 * An HTTP relay in front of the real registry that passes watch streams through event
 * by event and can lose one change event, as a buggy hop or a lost write would.
 */
async function lossyRelay(t: Test, registryUrl: string): Promise<LossyRelay> {
  const upstream = new URL(registryUrl)
  const opened: string[] = []
  let drop: number | undefined
  const server: Server = createServer((req, res) => {
    opened.push(req.url ?? '')
    const forward = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      let pending = ''
      answer.setEncoding('utf8')
      answer.on('data', (text: string) => {
        pending += text
        let end: number
        while ((end = pending.indexOf('\n\n')) !== -1) {
          const event = pending.slice(0, end + 2)
          pending = pending.slice(end + 2)
          if (drop !== undefined && event.startsWith(`id: ${drop}\nevent: change\n`)) {
            drop = undefined
            continue
          }
          res.write(event)
        }
      })
      answer.on('end', () => res.end())
      answer.on('error', () => res.destroy())
    })
    forward.on('error', () => res.destroy())
    res.on('close', () => forward.destroy())
    req.pipe(forward)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise((resolve) => server.close(resolve))
  })
  const address = server.address()
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    opened,
    dropOnce(revision) {
      drop = revision
    }
  }
}

void t.test('a gap in the revisions: the watcher applies nothing past it and resyncs by snapshot', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  await register(reg, 'api-0', 'v1')
  await register(reg, 'api-1', 'v2')
  const relay = await lossyRelay(t, reg.url)
  const watched = recorder(t, relay.url)
  await waitFor(() => (watched.events.length > 0 ? true : undefined), 'the first snapshot')
  const start = reg.registry.revision

  relay.dropOnce(start + 2)
  await setWeights(reg, { v1: 90, v2: 10 })
  await setWeights(reg, { v1: 80, v2: 20 }) // lost on the way
  await setWeights(reg, { v1: 70, v2: 30 })
  await waitFor(() => (watched.events.length >= 3 ? true : undefined), 'the resync snapshot')
  t.same(watched.events, [`snapshot:${start}`, `change:${start + 1}`, `snapshot:${start + 3}`], 'the change after the gap was not applied: a snapshot came instead')
  t.same(relay.opened, ['/v1/watch', '/v1/watch'], 'the second stream asked for a snapshot (no since)')
  t.equal(watched.watcher.revision, start + 3)
  t.same(describe(watched.table as RouteTable<string>), await freshTable(t, reg.url, start + 3), 'the table equals a fresh one')
})

void t.test('a gap in the revisions: the route table source resyncs by snapshot and ends with the same table as a fresh one', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  await register(reg, 'api-0', 'v1')
  const relay = await lossyRelay(t, reg.url)
  const revisions: number[] = []
  const source = new RouteTableSource<string>({
    registryUrl: relay.url,
    token: TOKENS.reader,
    endpointFor: (instance) => instance.id,
    onApplied: (table) => revisions.push(table.revision)
  })
  source.start()
  t.teardown(() => source.stop())
  await source.whenReady()
  const start = source.table.revision

  relay.dropOnce(start + 2)
  await register(reg, 'api-1', 'v2')
  await setWeights(reg, { v1: 90, v2: 10 })
  await register(reg, 'api-2', 'v2')
  const last = await setWeights(reg, { v1: 50, v2: 50 })
  await waitFor(() => (source.table.revision === last ? true : undefined), 'the source at the last revision')
  t.same(relay.opened, ['/v1/watch', '/v1/watch'], 'the gap made it reconnect without since: a snapshot, not a resume after the gap')
  t.ok(
    revisions.every((revision, i) => i === 0 || revision > (revisions[i - 1] as number)),
    `tables only move forward (${revisions.join(', ')})`
  )
  t.same(describe(source.table), await freshTable(t, reg.url, last), 'the table equals a fresh one')
})
