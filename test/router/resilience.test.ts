import { fileURLToPath } from 'node:url'
import t from 'tap'
import { request } from 'undici'
import { TOKENS, startTestRegistry, waitFor } from '../helpers/registry-harness.js'
import { startLoad } from '../helpers/load.js'
import { scrapedMetric } from '../helpers/prometheus.js'
import { cliPath, freePort, spawnNode, type SpawnedProcess } from '../helpers/processes.js'
import { startTestMesh, startUpstream, type TestMesh } from '../helpers/router-harness.js'

const apiMain = fileURLToPath(new URL('../../dist/sample-services/api/main.js', import.meta.url))

/** A real sample-api process registered with the mesh's registry. */
async function startApiProcess(mesh: TestMesh, version: string, id: string): Promise<SpawnedProcess> {
  const child = spawnNode([apiMain], {
    SWITCHYARD_REGISTRY_URL: mesh.reg.url,
    SWITCHYARD_TOKEN: TOKENS.registrar,
    SWITCHYARD_SERVICE: 'api',
    SWITCHYARD_VERSION: version,
    SWITCHYARD_INSTANCE_ID: id,
    SAMPLE_DRAIN_MS: '300',
    PORT: '0'
  })
  await child.waitForOutput('"event":"ready"')
  return child
}

function routedIds(mesh: TestMesh): string[] {
  const route = mesh.router.source.table.services.get('api')
  return route ? route.versions.flatMap((version) => version.endpoints.map((endpoint) => endpoint.instance.id)) : []
}

async function waitForRouted(mesh: TestMesh, id: string, present: boolean): Promise<void> {
  await waitFor(() => (routedIds(mesh).includes(id) === present ? true : undefined), `router ${present ? 'routing to' : 'no longer routing to'} ${id}`, 20_000)
}

async function waitForMore(load: { completed: number }, count: number): Promise<void> {
  const target = load.completed + count
  await waitFor(() => (load.completed >= target ? true : undefined), `${count} more requests`, 60_000)
}

void t.test('rolling upgrade under load: v1.3 x3 replaced by v1.4 x3 with zero failed requests', async (t) => {
  const mesh = await startTestMesh()
  const processes: SpawnedProcess[] = []
  t.teardown(async () => {
    await Promise.all(processes.map((p) => p.kill('SIGKILL')))
    await mesh.close()
  })
  // v1.4 is weighted before it exists (pre-provisioned, so allowUnregistered): its share
  // falls back to v1.3 until it has instances.
  const preProvisioned = await mesh.reg.call('PUT', '/v1/services/api/weights?allowUnregistered=true', { token: 'operator', body: { weights: { 'v1.3': 50, 'v1.4': 50 } } })
  t.equal(preProvisioned.status, 200, preProvisioned.text)
  await mesh.waitForRevision(preProvisioned.json.revision)
  const old: SpawnedProcess[] = []
  for (let i = 0; i < 3; i++) {
    const child = await startApiProcess(mesh, 'v1.3', `old-${i}`)
    processes.push(child)
    old.push(child)
    await waitForRouted(mesh, `old-${i}`, true)
  }
  const load = startLoad({ url: `${mesh.proxyUrl}/api/work`, concurrency: 20 })
  await waitForMore(load, 200)
  for (let i = 0; i < 3; i++) {
    processes.push(await startApiProcess(mesh, 'v1.4', `new-${i}`))
    await waitForRouted(mesh, `new-${i}`, true)
    await waitForMore(load, 100)
    // SIGTERM: the instance drains (routers stop sending), deregisters, then closes.
    const code = await (old[i] as SpawnedProcess).kill('SIGTERM')
    t.equal(code, 0, `old-${i} exits 0 after draining`)
    await waitForRouted(mesh, `old-${i}`, false)
    await waitForMore(load, 100)
  }
  const result = await load.stop()
  t.equal(result.failed, 0, `no failed requests (${result.failures.join('; ')})`)
  t.ok(result.ok > 500, `${result.ok} requests succeeded`)
  t.ok((result.versions['v1.4'] ?? 0) > 0 && (result.versions['v1.3'] ?? 0) > 0, `both versions served: ${JSON.stringify(result.versions)}`)
  t.same(routedIds(mesh).sort(), ['new-0', 'new-1', 'new-2'])
})

void t.test('an instance killed with SIGKILL under load: requests still succeed, it is ejected, then evicted', async (t) => {
  const mesh = await startTestMesh()
  const processes: SpawnedProcess[] = []
  t.teardown(async () => {
    await Promise.all(processes.map((p) => p.kill('SIGKILL')))
    await mesh.close()
  })
  for (let i = 0; i < 3; i++) {
    processes.push(await startApiProcess(mesh, 'v1.3', `api-${i}`))
    await waitForRouted(mesh, `api-${i}`, true)
  }
  const load = startLoad({ url: `${mesh.proxyUrl}/api/work`, concurrency: 20 })
  await waitForMore(load, 300)
  await (processes[0] as SpawnedProcess).kill('SIGKILL')
  await waitForMore(load, 1000)
  const result = await load.stop()
  t.equal(result.failed, 0, `idempotent requests were retried (${result.failures.join('; ')})`)

  const routes = await mesh.routes()
  const killed = routes.services[0].versions[0].instances.find((instance: { id: string }) => instance.id === 'api-0')
  t.equal(killed?.ejected, true, 'outlier detection ejected the dead instance')
  t.ok((await scrapedMetric(mesh.adminUrl, 'switchyard_ejections_total', { service: 'api', version: 'v1.3' })) >= 1, 'the ejection is counted')

  // The lease runs out: the live instances heartbeat, the dead one cannot.
  mesh.reg.clock.advance(31_000)
  for (const id of ['api-1', 'api-2']) t.equal((await mesh.reg.call('PUT', `/v1/services/api/instances/${id}/heartbeat`, { token: 'registrar' })).status, 200)
  const sweep = await mesh.reg.registry.sweep()
  t.same(sweep.evicted, [{ service: 'api', id: 'api-0' }], 'the dead instance is evicted')
  await waitForRouted(mesh, 'api-0', false)
})

void t.test('registry stopped under load: routing goes on, and a change after its restart is applied', async (t) => {
  let mesh: TestMesh | undefined = await startTestMesh()
  const processes: SpawnedProcess[] = []
  let restarted: Awaited<ReturnType<typeof startTestRegistry>> | undefined
  t.teardown(async () => {
    await Promise.all(processes.map((p) => p.kill('SIGKILL')))
    await restarted?.close()
    await mesh?.close()
  })
  processes.push(await startApiProcess(mesh, 'v1.3', 'stable-0'))
  processes.push(await startApiProcess(mesh, 'v1.3', 'stable-1'))
  processes.push(await startApiProcess(mesh, 'v1.4', 'canary-0'))
  for (const id of ['stable-0', 'stable-1', 'canary-0']) await waitForRouted(mesh, id, true)
  const load = startLoad({ url: `${mesh.proxyUrl}/api/work`, concurrency: 20 })
  await waitForMore(load, 200)

  const port = Number(new URL(mesh.reg.url).port)
  await mesh.reg.close()
  await waitFor(
    async () => (((await request(`${mesh?.adminUrl}/readyz`).then((r) => r.body.json())) as { registryConnected: boolean }).registryConnected === false ? true : undefined),
    'router noticing the registry is gone'
  )
  await waitForMore(load, 500)
  t.equal(load.completed > 0, true)

  restarted = await startTestRegistry({ dataDir: mesh.reg.dataDir, port })
  const set = await restarted.call('PUT', '/v1/services/api/weights', { token: 'operator', body: { weights: { 'v1.3': 90, 'v1.4': 10 } } })
  t.equal(set.status, 200)
  await mesh.waitForRevision(set.json.revision)
  await waitFor(() => ((load as { completed: number }).completed > 0 ? true : undefined), 'load')
  await waitForMore(load, 500)
  const result = await load.stop()
  t.equal(result.failed, 0, `zero failed requests while the registry was away (${result.failures.join('; ')})`)
  t.ok((result.versions['v1.4'] ?? 0) > 0, 'the new weights took effect')
  const routes = await mesh.routes()
  t.equal(routes.revision, set.json.revision)
  // The harness deletes the data dir with the first registry; the restarted one shares it.
  const closing = mesh
  mesh = undefined
  await restarted.close()
  restarted = undefined
  await closing.close()
})

void t.test('SIGTERM on the router process: in-flight requests finish, then it exits 0', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  const upstream = await startUpstream('v1.3', 'slow', (req, res) => {
    req.resume()
    setTimeout(() => res.end(JSON.stringify({ version: 'v1.3' })), 400)
  })
  t.teardown(upstream.close)
  await reg.call('POST', '/v1/services/api/instances', { token: 'registrar', body: { version: 'v1.3', host: '127.0.0.1', port: upstream.port, id: 'slow' } })
  const port = await freePort()
  const adminPort = await freePort()
  const router = spawnNode(
    [cliPath, 'router', '--host', '127.0.0.1', '--port', String(port), '--admin-port', String(adminPort), '--routes', '/api=api', '--registry', reg.url, '--log-level', 'warn'],
    {
      SWITCHYARD_TOKEN: TOKENS.reader
    }
  )
  t.teardown(() => router.kill('SIGKILL'))
  await waitFor(
    async () =>
      (await request(`http://127.0.0.1:${adminPort}/readyz`).then(
        (r) => r.statusCode,
        () => 0
      )) === 200
        ? true
        : undefined,
    'router ready',
    20_000
  )
  const inflight = Array.from({ length: 10 }, () => request(`http://127.0.0.1:${port}/api/slow`).then(async (r) => ({ status: r.statusCode, body: await r.body.text() })))
  await waitFor(() => (upstream.hits >= 10 ? true : undefined), 'requests in flight')
  router.child.kill('SIGTERM')
  const answers = await Promise.all(inflight)
  t.same(
    answers.map((a) => a.status),
    Array(10).fill(200),
    'every in-flight request completed'
  )
  t.equal(await router.exited, 0, 'exit 0')
})
