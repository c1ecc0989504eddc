import { cp, mkdtemp, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { RegistryChange, RegistrySnapshot } from '../../core/registry-events.js'
import { RegistryModel } from '../../core/registry-model.js'
import { InstanceAgent } from '../../registry/client/instance-agent.js'
import { RegistryClient, RegistryRequestError } from '../../registry/client/registry-client.js'
import { RegistryEndpoints } from '../../registry/client/registry-endpoints.js'
import { RegistryWatcher, type WatchStreamInfo } from '../../registry/client/watch-client.js'
import { parseMessageRouterConfig, parseMessageRouterSettings } from '../../router/messages/config.js'
import { startMessageRouter } from '../../router/messages/server.js'
import { freePort, runCli } from '../helpers/processes.js'
import { startTestRegistry, TOKENS, waitFor, type TestRegistry } from '../helpers/registry-harness.js'

/** The part of a tap test these helpers need. */
type Test = { teardown(fn: () => unknown): void }

/** A URL nothing listens on: connections are refused. */
async function deadUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`
}

/** A real HTTP server standing in for a failing replica; counts the requests it read. */
async function startReplicaStandIn(t: Test, handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = []
  const server = createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`)
    request.resume()
    handler(request, response)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  )
  const address = server.address()
  return { url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, requests }
}

const unavailable = (_request: IncomingMessage, response: ServerResponse) => {
  response.writeHead(503, { 'content-type': 'application/json' })
  response.end(JSON.stringify({ code: 'NOT_READY', message: 'this replica is not ready' }))
}

async function registry(t: Test): Promise<TestRegistry> {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  return reg
}

void t.test('a client given [dead URL, live URL] works, and stays on the live one', async (t) => {
  const reg = await registry(t)
  const dead = await deadUrl()
  const switches: string[] = []
  const endpoints = new RegistryEndpoints(`${dead},${reg.url}`, { onSwitch: (from, to) => switches.push(`${from} -> ${to}`) })
  const client = new RegistryClient({ url: endpoints, token: TOKENS.admin })
  t.same((await client.services()).services, [])
  t.equal(endpoints.current, reg.url)
  t.same(switches, [`${dead} -> ${reg.url}`], 'one switch')
  // A write that was refused by the dead replica was never sent: it may go to the next.
  const backToDead = new RegistryClient({ url: `${dead},${reg.url}`, token: TOKENS.admin })
  const set = await backToDead.setWeights('api', { v1: 100 }, undefined, { allowUnregistered: true })
  t.equal(set.weights.v1, 100, 'a weight change refused by the first replica is applied by the second')
  t.equal((await client.history('api')).history.length, 1, 'applied once')
  await client.services()
  t.same(switches, [`${dead} -> ${reg.url}`], 'later calls go straight to the endpoint that works')
})

void t.test('a 5xx moves reads on; a write answered 5xx is not repeated elsewhere', async (t) => {
  const reg = await registry(t)
  const failing = await startReplicaStandIn(t, unavailable)
  const client = new RegistryClient({ url: `${failing.url},${reg.url}`, token: TOKENS.admin })
  t.same((await client.services()).services, [], 'the read is answered by the second replica')
  t.same(failing.requests, ['GET /v1/services'])

  const writer = new RegistryClient({ url: `${failing.url},${reg.url}`, token: TOKENS.admin })
  const error = await writer.setWeights('api', { v1: 100 }, undefined, { allowUnregistered: true }).catch((caught: unknown) => caught)
  t.ok(error instanceof RegistryRequestError)
  t.match(error, { status: 503, code: 'NOT_READY' }, "the failing replica's answer, as it gave it")
  t.equal((await reg.call('GET', '/v1/services/api/weights')).status, 404, 'the second replica never saw the write')
})

void t.test('a lost answer: reads move on, writes stop with REGISTRY_OUTCOME_UNKNOWN', async (t) => {
  const reg = await registry(t)
  // Reads the request and never answers: the client cannot know whether it was applied.
  const silent = await startReplicaStandIn(t, () => {})
  const client = new RegistryClient({ url: `${silent.url},${reg.url}`, token: TOKENS.admin, timeoutMs: 300 })
  const error = await client.setWeights('api', { v1: 100 }, 3, { allowUnregistered: true }).catch((caught: unknown) => caught)
  t.match(error, { status: 0, code: 'REGISTRY_OUTCOME_UNKNOWN' })
  t.match((error as Error).message, `no answer from the registry at ${silent.url}`)
  t.match((error as Error).message, 'may or may not have been applied')
  t.equal((await reg.call('GET', '/v1/services/api/weights')).status, 404, 'not repeated on the second replica')
  t.same((await client.services()).services, [], 'a read after the same silence is answered by the second replica')
  t.same(silent.requests, ['PUT /v1/services/api/weights?allowUnregistered=true', 'GET /v1/services'])
})

void t.test('a 4xx is an answer: every replica would give it, so the client does not move', async (t) => {
  const first = await registry(t)
  const second = await registry(t)
  await second.call('PUT', '/v1/services/api/weights?allowUnregistered=true', { token: 'operator', body: { weights: { v1: 100 } } })
  const endpoints = new RegistryEndpoints(`${first.url},${second.url}`)
  const client = new RegistryClient({ url: endpoints, token: TOKENS.admin })
  t.match(await client.weights('api').catch((caught: unknown) => caught), { status: 404, code: 'SERVICE_NOT_FOUND' })
  t.equal(endpoints.current, first.url)
  const refused = new RegistryClient({ url: endpoints, token: 'not-a-token' })
  t.match(await refused.services().catch((caught: unknown) => caught), { status: 401 })
  t.equal(endpoints.current, first.url)
})

void t.test('no replica answers: REGISTRY_UNREACHABLE naming each, after two rounds', async (t) => {
  const [a, b] = [await deadUrl(), await deadUrl()]
  const switches: string[] = []
  const client = new RegistryClient({ url: new RegistryEndpoints(`${a},${b}`, { onSwitch: (from, to) => switches.push(`${from} -> ${to}`) }), token: TOKENS.admin })
  const error = await client.services().catch((caught: unknown) => caught)
  t.match(error, { status: 0, code: 'REGISTRY_UNREACHABLE' })
  t.match((error as Error).message, new RegExp(`^cannot reach the registry at ${a} \\(connect ECONNREFUSED [^)]+\\), ${b} \\(connect ECONNREFUSED [^)]+\\)$`))
  t.same(switches, [`${a} -> ${b}`, `${b} -> ${a}`, `${a} -> ${b}`, `${b} -> ${a}`], 'each replica tried twice')
  const allFailing = await startReplicaStandIn(t, unavailable)
  const answered = await new RegistryClient({ url: `${allFailing.url},${a}`, token: TOKENS.admin }).services().catch((caught: unknown) => caught)
  t.match(answered, { status: 503, code: 'NOT_READY' }, 'when no replica does better, the last 5xx is the answer')
})

void t.test('an instance agent given [dead URL, live URL] registers and heartbeats', async (t) => {
  const reg = await startTestRegistry({ renewSeconds: 1, leaseSeconds: 3 })
  t.teardown(reg.destroy)
  const events: string[] = []
  const agent = new InstanceAgent({
    registryUrl: `${await deadUrl()},${reg.url}`,
    token: TOKENS.registrar,
    service: 'api',
    version: 'v1',
    host: '127.0.0.1',
    port: 1,
    id: 'api-1',
    onEvent: (event) => events.push(event)
  })
  t.equal(await agent.start(), 'api-1')
  t.teardown(() => agent.stop(0))
  t.same(
    (await reg.call('GET', '/v1/services/api')).json.instances.map((instance: { id: string }) => instance.id),
    ['api-1']
  )
  await waitFor(() => (reg.logs.some((line) => line.includes('/v1/services/api/instances/api-1/heartbeat')) ? true : undefined), 'a heartbeat at the live registry')
  t.same(events, ['registered'])
  await agent.stop(0)
  t.equal((await reg.call('GET', '/v1/services/api')).json.instances.length, 0, 'deregistered through the live registry')
})

/** A watcher mirroring the registry into a model (which throws on any gap), with what it saw. */
interface Mirror {
  watcher: RegistryWatcher
  model: RegistryModel | undefined
  snapshots: RegistrySnapshot[]
  changes: RegistryChange[]
  streams: WatchStreamInfo[]
  switches: string[]
  errors: Error[]
}

function mirror(t: Test, urls: string, initialBackoffMs: number): Mirror {
  const state: Omit<Mirror, 'watcher'> = { model: undefined, snapshots: [], changes: [], streams: [], switches: [], errors: [] }
  const endpoints = new RegistryEndpoints(urls, { onSwitch: (from, to) => state.switches.push(`${from} -> ${to}`), initialBackoffMs, random: () => 0.999 })
  const watcher = new RegistryWatcher({
    url: endpoints,
    token: TOKENS.reader,
    initialBackoffMs,
    maxBackoffMs: initialBackoffMs,
    random: () => 0.999,
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
      onConnectionChange(connection, _error, stream) {
        if (connection === 'connected' && stream) state.streams.push(stream)
      }
    }
  })
  watcher.start()
  t.teardown(() => watcher.stop())
  return Object.assign(state, { watcher })
}

async function setWeights(reg: TestRegistry, weights: Record<string, number>): Promise<number> {
  const answer = await reg.call('PUT', '/v1/services/api/weights?allowUnregistered=true', { token: 'operator', body: { weights } })
  if (answer.status !== 200) throw new Error(answer.text)
  return answer.json.revision as number
}

void t.test('the watch resumes on the next replica with since: the changes it missed, no snapshot', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'switchyard-failover-'))
  t.teardown(() => rm(dataDir, { recursive: true, force: true }))
  const [portA, portB] = [await freePort(), await freePort()]
  // Closed in teardown whichever is running.
  const running: { a?: TestRegistry | undefined; b?: TestRegistry } = { a: await startTestRegistry({ dataDir, port: portA }) }
  t.teardown(async () => {
    await running.a?.close()
    await running.b?.close()
  })
  const a = running.a as TestRegistry
  const urlB = `http://127.0.0.1:${portB}`
  await setWeights(a, { v1: 100 })
  // A long first backoff: once both replicas failed in a row, there is time to change B before the watcher returns.
  const seen = mirror(t, `${a.url},${urlB}`, 3_000)
  const before = await setWeights(a, { v1: 90, v2: 10 })
  await waitFor(() => (seen.watcher.revision === before ? true : undefined), `the watcher at revision ${before}`)
  t.same(seen.streams, [{ url: a.url, resumedAfter: undefined }], 'the first stream began with a snapshot from A')

  // Only one registry runs on the store at a time: A goes, then B opens the same state.
  await a.close()
  running.a = undefined
  await waitFor(() => (seen.switches.includes(`${urlB} -> http://127.0.0.1:${portA}`) ? true : undefined), 'the watcher trying B, then backing off')
  const b = await startTestRegistry({ dataDir, port: portB })
  running.b = b
  const missed = await setWeights(b, { v1: 50, v2: 50 })
  await waitFor(() => (seen.watcher.revision === missed ? true : undefined), `the watcher at revision ${missed}`, 20_000)
  t.same(seen.streams[1], { url: urlB, resumedAfter: before }, 'the stream from B resumed after the revision applied from A')
  t.equal(seen.snapshots.length, 1, 'no second snapshot')
  t.same(
    seen.changes.map((change) => change.revision),
    [before, missed],
    'every revision once, in order'
  )
  t.same(seen.errors, [])
  t.same(seen.model?.snapshot(), await b.registry.snapshot(), "the watcher's state is B's")
  t.equal(seen.watcher.endpoint, urlB, 'and it stays with B')
})

void t.test('a replica without the history the watcher needs answers with a snapshot, and the watcher takes it', async (t) => {
  const dataA = await mkdtemp(join(tmpdir(), 'switchyard-failover-'))
  const dataB = await mkdtemp(join(tmpdir(), 'switchyard-failover-'))
  t.teardown(() => Promise.all([rm(dataA, { recursive: true, force: true }), rm(dataB, { recursive: true, force: true })]))
  let a: TestRegistry | undefined = await startTestRegistry({ dataDir: dataA })
  t.teardown(() => a?.close())
  await setWeights(a, { v1: 100 })
  // B starts later from a copy of A's store as it was then: behind the watcher.
  await a.close()
  await cp(dataA, dataB, { recursive: true })
  a = await startTestRegistry({ dataDir: dataA })
  const portB = await freePort()
  const seen = mirror(t, `${a.url},http://127.0.0.1:${portB}`, 50)
  const ahead = await setWeights(a, { v1: 80, v2: 20 })
  await waitFor(() => (seen.watcher.revision === ahead ? true : undefined), `the watcher at revision ${ahead}`)
  await a.close()
  a = undefined
  const b = await startTestRegistry({ dataDir: dataB, port: portB })
  t.teardown(b.close)
  await waitFor(() => (seen.streams.length === 2 ? true : undefined), 'the watcher connected to B', 20_000)
  t.same(seen.streams[1], { url: b.url, resumedAfter: undefined }, 'B has no history after the revision asked for: a snapshot')
  t.equal(seen.snapshots.length, 2)
  t.same(seen.model?.snapshot(), await b.registry.snapshot(), "the watcher's state is B's, not A's later one")
  t.same(seen.errors, [])
})

void t.test('a message router given [dead URL, live URL] follows and reports to the live one', async (t) => {
  const reg = await registry(t)
  await reg.call('POST', '/v1/services/orders-worker/instances', { token: 'registrar', body: { version: 'v1', host: '127.0.0.1', port: 1000, id: 'w1' } })
  const settings = parseMessageRouterSettings(
    { adminHost: '127.0.0.1', adminPort: '0', routerId: 'messages-1', logLevel: 'silent' },
    { SWITCHYARD_REGISTRY_URL: `${await deadUrl()},${reg.url}`, SWITCHYARD_TOKEN: TOKENS.router, SWITCHYARD_BROKER: 'memory' }
  )
  const messages = await startMessageRouter(settings, { config: parseMessageRouterConfig({ topics: [{ name: 'orders', service: 'orders-worker' }] }, 'test') })
  t.teardown(() => messages.close())
  await messages.source.whenReady()
  t.equal(messages.source.table.services.get('orders-worker')?.versions[0]?.endpoints.length, 1, 'the table came from the live registry')
  await waitFor(
    async () => ((await reg.call('GET', '/v1/routers')).json.routers.some((router: { id: string }) => router.id === 'messages-1') ? true : undefined),
    'the report at the live registry'
  )
})

void t.test('CLI: --registry and SWITCHYARD_REGISTRY_URL take several URLs; a bad one is named', async (t) => {
  const reg = await registry(t)
  const dead = await deadUrl()
  const viaFlag = await runCli(['services', '--json', '--registry', `${dead},${reg.url}`], { SWITCHYARD_TOKEN: TOKENS.reader, SWITCHYARD_REGISTRY_URL: undefined })
  t.equal(viaFlag.code, 0, viaFlag.stderr)
  t.same(JSON.parse(viaFlag.stdout).services, [])
  const viaEnv = await runCli(['weights', 'set', 'api', 'v1=100', '--allow-unregistered'], { SWITCHYARD_TOKEN: TOKENS.operator, SWITCHYARD_REGISTRY_URL: `${dead}, ${reg.url}` })
  t.equal(viaEnv.code, 0, viaEnv.stderr)
  t.equal(viaEnv.stdout, 'api: v1=100 (revision 1)\n')

  const other = await deadUrl()
  const noneAnswers = await runCli(['services'], { SWITCHYARD_TOKEN: TOKENS.reader, SWITCHYARD_REGISTRY_URL: `${dead},${other}` })
  t.equal(noneAnswers.code, 1)
  t.match(noneAnswers.stderr, new RegExp(`^switchyard: REGISTRY_UNREACHABLE: cannot reach the registry at ${dead} \\(connect ECONNREFUSED [^)]+\\), ${other} \\(`))

  const badFlag = await runCli(['services', '--registry', `${reg.url},htp://b:8761`], { SWITCHYARD_TOKEN: TOKENS.reader })
  t.equal(badFlag.code, 2)
  t.equal(badFlag.stderr, `switchyard: --registry: registry URL "htp://b:8761" (entry 2 of "${reg.url},htp://b:8761") has scheme htp: give http:// or https://\n`)
  const badEnv = await runCli(['router', '--port', '0', '--admin-port', '0'], { SWITCHYARD_REGISTRY_URL: 'http://a:8761,,http://b:8761' })
  t.equal(badEnv.code, 2)
  t.match(badEnv.stderr, 'SWITCHYARD_REGISTRY_URL: registry URL "" (entry 2 of "http://a:8761,,http://b:8761") is empty')
  const help = await runCli(['--help'])
  t.match(help.stdout.replace(/\s+/g, ' '), "--registry <urls> registry URL, or several replicas' URLs comma-separated (http://a:8761,http://b:8761)")
})
