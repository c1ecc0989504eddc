/**
 * Issue #12's faults with real processes on 127.0.0.1: a 3-member etcd, 2 registry
 * replicas on it, a router following both, sample instances heartbeating, 20 concurrent
 * clients through the router and an operator changing weights every 200 ms through
 * alternating replicas. Then a registry replica is killed (-9), an etcd member is
 * killed, etcd loses its quorum and gets it back; and a router that was away while the
 * history was trimmed and etcd compacted comes back to a snapshot.
 */
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js'
import { call } from '../helpers/http.js'
import { startLoad } from '../helpers/load.js'
import { cliPath, freePort, routerArgs, spawnNode, type SpawnedProcess } from '../helpers/processes.js'
import { fileURLToPath } from 'node:url'
import { waitFor as pollUntil } from '../helpers/registry-harness.js'

const TOKEN = 'etcd-faults-admin-token-0123456789'
const apiMain = fileURLToPath(new URL('../../dist/sample-services/api/main.js', import.meta.url))

/** The harness's poll with the subject first, as these tests read best; every 50 ms (each look is an HTTP call to a process). */
const waitFor = <T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> => pollUntil(check, what, timeoutMs, 50)

interface Replica {
  url: string
  process: SpawnedProcess
}

interface Mesh {
  cluster: EtcdCluster
  replicas: Replica[]
  children: SpawnedProcess[]
  startReplica(name: string, extra?: string[]): Promise<Replica>
  startRouter(registries: string[]): Promise<{ process: SpawnedProcess; proxyUrl: string; adminUrl: string }>
  startApi(version: string, registries: string[]): Promise<SpawnedProcess>
}

async function startMesh(t: Test, replicaArgs: string[] = []): Promise<Mesh> {
  const cluster = await startEtcdCluster({ members: 3 })
  const children: SpawnedProcess[] = []
  t.teardown(async () => {
    await Promise.all(children.map((child) => child.kill('SIGKILL')))
    await cluster.close()
  })
  const env = { SWITCHYARD_ADMIN_TOKEN: TOKEN, SWITCHYARD_TOKEN: TOKEN, SWITCHYARD_LOG_LEVEL: 'info' }
  const mesh: Mesh = {
    cluster,
    replicas: [],
    children,
    async startReplica(name, extra = []) {
      const port = await freePort()
      const child = spawnNode(
        [
          cliPath,
          'registry',
          '--host',
          '127.0.0.1',
          '--port',
          String(port),
          '--store',
          'etcd',
          '--etcd-endpoints',
          cluster.endpoints.join(','),
          '--etcd-timeout-seconds',
          '2',
          '--replica-id',
          name,
          '--eviction-interval-seconds',
          '1',
          ...replicaArgs,
          ...extra
        ],
        env
      )
      children.push(child)
      await child.waitForOutput('registry listening on', 30_000)
      const replica = { url: `http://127.0.0.1:${port}`, process: child }
      mesh.replicas.push(replica)
      return replica
    },
    async startRouter(registries) {
      const proxyPort = await freePort()
      const adminPort = await freePort()
      const child = spawnNode(routerArgs(proxyPort, adminPort, ['--router-id', `router-${adminPort}`]), {
        ...env,
        SWITCHYARD_REGISTRY_URL: registries.join(','),
        SWITCHYARD_ROUTES: '/api=api'
      })
      children.push(child)
      await child.waitForOutput('router listening on', 30_000)
      return { process: child, proxyUrl: `http://127.0.0.1:${proxyPort}`, adminUrl: `http://127.0.0.1:${adminPort}` }
    },
    async startApi(version, registries) {
      const child = spawnNode([apiMain], { ...env, SWITCHYARD_REGISTRY_URL: registries.join(','), SWITCHYARD_VERSION: version, PORT: '0', SAMPLE_DRAIN_MS: '0' })
      children.push(child)
      await child.waitForOutput('"event":"ready"', 30_000)
      return child
    }
  }
  return mesh
}

async function json(url: string, init: { method?: 'GET' | 'PUT' | 'POST'; body?: unknown; headers?: Record<string, string> } = {}) {
  const answer = await call(init.method ?? 'GET', url, {
    token: TOKEN,
    ...(init.body !== undefined ? { body: init.body } : {}),
    ...(init.headers ? { headers: init.headers } : {})
  })
  return answer
}

async function routerTable(adminUrl: string): Promise<{ revision: number; weights: Record<string, number> }> {
  const response = await request(`${adminUrl}/routes`)
  const routes = (await response.body.json()) as { revision: number; services: { name: string; versions: { name: string; weight: number }[] }[] }
  const api = routes.services.find((service) => service.name === 'api')
  return { revision: routes.revision, weights: Object.fromEntries((api?.versions ?? []).map((version) => [version.name, version.weight])) }
}

/** An operator setting api's weights every 200 ms through the replicas in turn; keeps what was acknowledged. */
function startOperator(urls: () => string[]) {
  const acknowledged: { revision: number; weights: Record<string, number> }[] = []
  const refused: string[] = []
  let stopped = false
  let round = 0
  const loop = (async () => {
    while (!stopped) {
      const list = urls()
      const url = list[round % list.length] as string
      const v2 = (round * 7) % 101
      const weights = { v1: 100 - v2, v2 }
      round++
      try {
        const answer = await json(`${url}/v1/services/api/weights`, { method: 'PUT', body: { weights } })
        if (answer.status === 200) acknowledged.push({ revision: answer.json.revision as number, weights })
        else refused.push(`${answer.status} ${answer.json?.code as string}`)
      } catch (error) {
        refused.push(`error ${(error as Error).message}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  })()
  return {
    acknowledged,
    refused,
    async stop() {
      stopped = true
      await loop
    }
  }
}

/** Every acknowledged change is in the audit log with exactly its weights. */
async function assertAcknowledgedKept(t: Test, url: string, acknowledged: { revision: number; weights: Record<string, number> }[]) {
  const history = await json(`${url}/v1/services/api/history`)
  t.equal(history.status, 200, 'the history reads')
  const entries = new Map((history.json.history as { revision: number; to: Record<string, number> }[]).map((entry) => [entry.revision, entry.to]))
  const missing = acknowledged.filter((change) => {
    const to = entries.get(change.revision)
    return (
      !to ||
      JSON.stringify(Object.fromEntries(Object.entries(to).filter(([, w]) => w > 0))) !==
        JSON.stringify(Object.fromEntries(Object.entries(change.weights).filter(([, w]) => w > 0)))
    )
  })
  t.same(missing, [], `all ${acknowledged.length} acknowledged weight changes are in the history with their weights`)
}

void t.test('replica killed, etcd member killed, quorum lost and restored: traffic flows and nothing acknowledged is lost', async (t) => {
  const mesh = await startMesh(t)
  const a = await mesh.startReplica('replica-a')
  const b = await mesh.startReplica('replica-b')
  const registries = [a.url, b.url]
  await mesh.startApi('v1', registries)
  await mesh.startApi('v2', registries)
  await waitFor('both versions registered', async () => {
    const answer = await json(`${b.url}/v1/services/api`)
    return answer.status === 200 && (answer.json.instances as unknown[]).length === 2 ? true : undefined
  })
  const allowed = await json(`${a.url}/v1/services/api/weights`, { method: 'PUT', body: { weights: { v1: 90, v2: 10 } } })
  t.equal(allowed.status, 200)
  const router = await mesh.startRouter(registries)
  await waitFor('the router to route', async () => ((await routerTable(router.adminUrl)).revision >= (allowed.json.revision as number) ? true : undefined))

  const load = startLoad({ url: `${router.proxyUrl}/api/hello`, concurrency: 20, maxMs: 180_000 })
  let live = [a.url, b.url]
  const operator = startOperator(() => live)
  await waitFor('some acknowledged changes', () => (operator.acknowledged.length >= 5 ? true : undefined))

  // The router reports to a (its first URL); b knows it all the same.
  await waitFor('b to list the router that reports to a', async () => {
    const routers = await json(`${b.url}/v1/routers`)
    return (routers.json.routers as { id: string }[]).some((entry) => entry.id.startsWith('router-')) ? true : undefined
  })
  t.pass('every replica lists every router')

  // 1. kill -9 the replica the router watches first.
  await a.process.kill('SIGKILL')
  live = [b.url]
  const afterKill = operator.acknowledged.length
  await waitFor('writes through b after a died', () => (operator.acknowledged.length >= afterKill + 5 ? true : undefined))
  await waitFor('the router to resume its watch on b', () => (router.process.output().includes(`"registry":"${b.url}"`) ? true : undefined))
  const resumed = router.process
    .output()
    .split('\n')
    .filter((line) => line.includes('connected to the registry watch stream') && line.includes(b.url))
  t.ok(resumed.length > 0, 'the router connected to b')
  t.notMatch(resumed[0] ?? '', /"resumedAfter":null/, 'and resumed with since (no snapshot): no revision missed')
  t.notMatch(router.process.output(), /REVISION_GAP/, 'no gap was ever seen')
  const head = (await json(`${b.url}/v1/services/api/weights`)).json.revision as number
  await waitFor('the router at b’s revision', async () => ((await routerTable(router.adminUrl)).revision >= head ? true : undefined))

  // 2. kill one etcd member (the leader, the hardest one): writes continue.
  const leader = await mesh.cluster.leader()
  await leader.kill()
  const afterMember = operator.acknowledged.length
  await waitFor('writes after an etcd member died', () => (operator.acknowledged.length >= afterMember + 5 ? true : undefined), 40_000)
  t.pass('writes continue with 2 of 3 etcd members')

  // 3. stop a second member: quorum lost.
  const second = mesh.cluster.members.find((member) => member.state === 'running')
  if (!second) throw new Error('no running member')
  await second.stop()
  const write = await json(`${b.url}/v1/services/api/weights`, { method: 'PUT', body: { weights: { v1: 50, v2: 50 } } })
  t.equal(write.status, 503, 'a write without quorum answers 503')
  t.equal(write.json.code, 'STORE_UNAVAILABLE', 'with the code STORE_UNAVAILABLE')
  const read = await json(`${b.url}/v1/services/api`)
  t.equal(read.status, 200, 'reads keep serving the last state')
  const watch = await request(`${b.url}/v1/watch`, { headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(watch.statusCode, 200, 'a new watch is served (from the last state)')
  watch.body.destroy()
  const duringOutage = load.completed
  await waitFor('traffic during the outage', () => (load.completed > duringOutage + 200 ? true : undefined))
  // Once its etcd watch cannot be resumed, the replica tells load balancers it may be stale.
  const notReady = await waitFor(
    'b to say it is not ready',
    async () => {
      const ready = await json(`${b.url}/readyz`)
      return ready.status === 503 ? ready : undefined
    },
    60_000
  )
  t.equal(notReady.json.code, 'NOT_READY', '/readyz: 503 NOT_READY while the replica cannot follow etcd')
  t.equal((await json(`${b.url}/v1/services/api`)).status, 200, 'reads still answer from the last state')

  // 4. restore: everything resumes.
  await second.start()
  await leader.start()
  await mesh.cluster.waitHealthy(30_000)
  await waitFor('b ready again', async () => ((await json(`${b.url}/readyz`)).status === 200 ? true : undefined), 60_000)
  const afterRestore = operator.acknowledged.length
  await waitFor('writes after quorum came back', () => (operator.acknowledged.length >= afterRestore + 5 ? true : undefined), 60_000)
  await operator.stop()
  const result = await load.stop()
  t.equal(result.failed, 0, `0 failed proxied requests of ${result.ok + result.failed} (${result.failures.slice(0, 3).join('; ')})`)
  t.ok(result.ok > 1000, `traffic flowed throughout (${result.ok} requests)`)
  t.ok(operator.acknowledged.length > 20, `${operator.acknowledged.length} weight changes acknowledged`)
  await assertAcknowledgedKept(t, b.url, operator.acknowledged)

  // A replica started again reads the same state.
  const c = await mesh.startReplica('replica-c')
  const fromB = await json(`${b.url}/v1/services/api/weights`)
  await waitFor('c at b’s revision', async () => ((await json(`${c.url}/v1/services/api/weights`)).json.revision === fromB.json.revision ? true : undefined))
  t.same((await json(`${c.url}/v1/services/api/weights`)).json, fromB.json, 'a new replica answers the same')
  await assertAcknowledgedKept(t, c.url, operator.acknowledged)
  const final = await routerTable(router.adminUrl)
  await waitFor('the router at the final revision', async () => ((await routerTable(router.adminUrl)).revision === fromB.json.revision ? true : undefined))
  t.ok(final.revision <= (fromB.json.revision as number))
})

void t.test('two operators with the same If-Match through two replica processes: exactly one 200, one 412', async (t) => {
  const mesh = await startMesh(t)
  const a = await mesh.startReplica('replica-a')
  const b = await mesh.startReplica('replica-b')
  await json(`${a.url}/v1/services/api/weights?allowUnregistered=true`, { method: 'PUT', body: { weights: { v1: 100 } } })
  for (let round = 0; round < 3; round++) {
    const current = await json(`${a.url}/v1/services/api/weights`)
    const ifMatch = String(current.json.revision)
    const [first, second] = await Promise.all([
      json(`${a.url}/v1/services/api/weights?allowUnregistered=true`, { method: 'PUT', body: { weights: { v1: 60, v2: 40 } }, headers: { 'if-match': ifMatch } }),
      json(`${b.url}/v1/services/api/weights?allowUnregistered=true`, { method: 'PUT', body: { weights: { v1: 30, v2: 70 } }, headers: { 'if-match': ifMatch } })
    ])
    t.same([first.status, second.status].sort(), [200, 412], `round ${round}: one 200, one 412`)
    t.equal((first.status === 412 ? first : second).json.code, 'REVISION_MISMATCH')
  }
})

void t.test('a router away while the history was trimmed and etcd compacted gets a snapshot and the same table as a fresh router', async (t) => {
  const mesh = await startMesh(t, ['--history-retention', '10'])
  const a = await mesh.startReplica('replica-a')
  const b = await mesh.startReplica('replica-b')
  await json(`${a.url}/v1/services/api/weights?allowUnregistered=true`, { method: 'PUT', body: { weights: { v1: 100 } } })
  const router = await mesh.startRouter([a.url, b.url])
  await waitFor('the router connected to a', () => (router.process.output().includes('connected to the registry watch stream') ? true : undefined))
  const away = (await routerTable(router.adminUrl)).revision
  router.process.child.kill('SIGSTOP')
  t.teardown(() => router.process.child.kill('SIGCONT'))
  let last = 0
  for (let i = 0; i < 40; i++) {
    const answer = await json(`${b.url}/v1/services/api/weights?allowUnregistered=true`, { method: 'PUT', body: { weights: { v1: 100 - i, v2: i } } })
    t.equal(answer.status, 200)
    last = answer.json.revision as number
  }
  // The journal is trimmed to the last 10 changes below the newest snapshot; etcd then compacts its own history too.
  await waitFor('the journal trimmed past the router', async () => {
    const keys = (await mesh.cluster.etcdctl(['get', '/switchyard/journal/', '--prefix', '--keys-only'])).split('\n').filter((line) => line.trim() !== '')
    const oldest = Number((keys[0] ?? '').split('/').pop())
    return oldest > away + 1 ? true : undefined
  })
  await mesh.cluster.compact()
  const marked = await request(`${b.url}/v1/watch?since=${away}`, { headers: { authorization: `Bearer ${TOKEN}` } })
  let text = ''
  for await (const chunk of marked.body) {
    text += (chunk as Buffer).toString()
    if (text.includes('event: heartbeat')) break
  }
  marked.body.destroy()
  t.match(text, /event: snapshot/, `a watcher with a trimmed since (${away}) is sent a snapshot: ${text.slice(0, 300)}`)
  t.match(text, /"reason":"history-unavailable"/, 'marked as such')

  // The replica it watched dies while it is away; it comes back to the other one.
  await a.process.kill('SIGKILL')
  router.process.child.kill('SIGCONT')
  await waitFor('the router at the newest revision', async () => ((await routerTable(router.adminUrl)).revision === last ? true : undefined))
  const fresh = await mesh.startRouter([b.url])
  await waitFor('the fresh router at the newest revision', async () => ((await routerTable(fresh.adminUrl)).revision === last ? true : undefined))
  t.same(await routerTable(router.adminUrl), await routerTable(fresh.adminUrl), 'the same table as a fresh router')
  t.notMatch(router.process.output(), /REVISION_GAP/, 'it never applied past a gap')
})
