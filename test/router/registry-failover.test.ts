import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { request } from 'undici'
import { RegistryClient } from '../../registry/client/registry-client.js'
import { startLoad, type Load } from '../helpers/load.js'
import { cliPath, freePort, routerArgs, spawnNode, type SpawnedProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/registry-harness.js'

/**
 * A router, its instances and an operator following two registry URLs, A and B, all real
 * processes on 127.0.0.1. Until replicas share a store (etcd), B is a registry started on
 * A's file store after A was killed (only one runs at a time): it has A's state and
 * revisions, which is what the clients need to move on and resume.
 */
const TOKEN = 'failover-admin-token-0123456789abcdef'
const apiMain = fileURLToPath(new URL('../../dist/sample-services/api/main.js', import.meta.url))

interface LogLine {
  msg?: string
  registry?: string
  resumedAfter?: number | null
}

/** Where each of the router's watch streams came from, and the revision it resumed after (null: a snapshot). */
function streams(process: SpawnedProcess): { registry: string | undefined; resumedAfter: number | null | undefined }[] {
  return process
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine)
    .filter((line) => line.msg === 'connected to the registry watch stream')
    .map((line) => ({ registry: line.registry, resumedAfter: line.resumedAfter }))
}

async function routes(adminUrl: string): Promise<{ revision: number; services: { name: string; versions: { name: string; weight: number; instances: { id: string }[] }[] }[] }> {
  return (await (await request(`${adminUrl}/routes`)).body.json()) as Awaited<ReturnType<typeof routes>>
}

async function waitForMore(load: Load, count: number): Promise<void> {
  const target = load.completed + count
  await waitFor(() => (load.completed >= target ? true : undefined), `${count} more requests`, 60_000)
}

void t.test('a router following [A, B]: A killed under load, 0 failed requests, the watch resumes on B after the revision it had', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'switchyard-failover-'))
  const children: SpawnedProcess[] = []
  t.teardown(async () => {
    await Promise.all(children.map((child) => child.kill('SIGKILL')))
    await rm(dataDir, { recursive: true, force: true })
  })
  const [portA, portB, proxyPort, adminPort] = [await freePort(), await freePort(), await freePort(), await freePort()]
  const [urlA, urlB] = [`http://127.0.0.1:${portA}`, `http://127.0.0.1:${portB}`]
  const registries = `${urlA},${urlB}`
  const env = { SWITCHYARD_REGISTRY_URL: registries, SWITCHYARD_TOKEN: TOKEN, SWITCHYARD_LOG_LEVEL: 'info' }
  const spawnRegistry = async (port: number) => {
    const child = spawnNode(
      [
        cliPath,
        'registry',
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--data-dir',
        dataDir,
        '--renew-seconds',
        '1',
        '--lease-seconds',
        '10',
        '--eviction-interval-seconds',
        '1'
      ],
      { SWITCHYARD_ADMIN_TOKEN: TOKEN, SWITCHYARD_LOG_LEVEL: 'info' }
    )
    children.push(child)
    await child.waitForOutput('registry listening on', 30_000)
    return child
  }
  const registryA = await spawnRegistry(portA)
  const operator = new RegistryClient({ url: registries, token: TOKEN })

  // Instances whose agents follow both URLs too: they heartbeat every second.
  const apis: [string, string][] = [
    ['v1', 'api-v1-0'],
    ['v1', 'api-v1-1'],
    ['v2', 'api-v2-0']
  ]
  for (const [version, id] of apis) {
    const child = spawnNode([apiMain], { ...env, SWITCHYARD_VERSION: version, SWITCHYARD_INSTANCE_ID: id, PORT: '0', SAMPLE_DRAIN_MS: '0' })
    children.push(child)
    await child.waitForOutput('"event":"ready"', 30_000)
  }
  await operator.setWeights('api', { v1: 100, v2: 0 })

  const router = spawnNode(routerArgs(proxyPort, adminPort, ['--router-id', 'router-1', '--routes', '/api=api']), env)
  children.push(router)
  const adminUrl = `http://127.0.0.1:${adminPort}`
  await router.waitForOutput('router listening on', 30_000)
  const before = (await operator.weights('api')).revision
  await waitFor(async () => ((await routes(adminUrl)).revision === before ? true : undefined), `the router at revision ${before}`, 20_000)
  await waitFor(() => (streams(router).length === 1 ? true : undefined), 'the log line of the first stream')
  t.same(streams(router), [{ registry: urlA, resumedAfter: null }], 'the first stream, from A, began with a snapshot')

  // Bounded: it stops by itself after 5 minutes at the latest (process start-ups are slow on a busy machine).
  const load = startLoad({ url: `http://127.0.0.1:${proxyPort}/api/work`, concurrency: 20, maxMs: 300_000 })
  await waitForMore(load, 200)

  await registryA.kill('SIGKILL')
  await router.waitForOutput('registry unreachable; routing on the last table while reconnecting', 20_000)
  await waitForMore(load, 200)

  const registryB = await spawnRegistry(portB)
  const startedB = Date.now()
  await waitFor(() => (streams(router).length === 2 ? true : undefined), 'the router connected to B', 30_000)
  t.same(streams(router)[1], { registry: urlB, resumedAfter: before }, 'the stream from B resumed after the revision the router had applied (no snapshot)')

  // The operator's client finds A refused and B answering.
  const changed = await operator.setWeights('api', { v1: 50, v2: 50 })
  t.equal(changed.revision, before + 1, 'B continues the revisions of A')
  await waitFor(async () => ((await routes(adminUrl)).revision === changed.revision ? true : undefined), `the router at revision ${changed.revision}`, 20_000)
  const table = await routes(adminUrl)
  t.same(
    table.services.find((service) => service.name === 'api')?.versions.map((version) => [version.name, version.weight]),
    [
      ['v1', 50],
      ['v2', 50]
    ],
    'the change made through B is in force'
  )
  // The router's reports and the instances' heartbeats moved to B as well.
  await waitFor(
    async () => ((await operator.routers()).routers.find((entry) => entry.id === 'router-1')?.appliedRevision === changed.revision ? true : undefined),
    'router-1 reporting to B',
    20_000
  )
  await waitFor(
    async () => {
      const instances = (await operator.service('api')).instances
      return instances.length === 3 && instances.every((instance) => instance.lastHeartbeat !== null && Date.parse(instance.lastHeartbeat) >= startedB) ? true : undefined
    },
    'every instance heartbeating at B',
    20_000
  )

  await waitForMore(load, 200)
  const result = await load.stop()
  t.equal(result.failed, 0, `no failed proxied requests (${result.failures.join('; ')})`)
  t.ok(result.ok >= 600, `${result.ok} requests answered`)
  t.ok((result.versions.v2 ?? 0) > 0, `v2 served after the change through B: ${JSON.stringify(result.versions)}`)
  t.equal(registryB.child.exitCode, null, 'B still runs')
  t.equal(streams(router).length, 2, 'one reconnection')
})
