import { createServer as createNetServer, type Server as NetServer } from 'node:net'
import t, { type Test } from 'tap'
import { Client, Pool, request } from 'undici'
import WebSocket, { WebSocketServer } from 'ws'
import { get } from '../helpers/http.js'
import { cliPath, freePort, runCli, spawnNode } from '../helpers/processes.js'
import { metric, scrape } from '../helpers/prometheus.js'
import { startTestRegistry, TOKENS, waitFor, type TestRegistry } from '../helpers/registry-harness.js'
import { startUpstream, type Upstream, type UpstreamHandler } from '../helpers/router-harness.js'
import { startWorkersRouter, type WorkersRouter } from '../helpers/router-workers.js'

/** A registry in this process with api v1 and v2 (one upstream each, in this process) at `weights`. */
async function meshOf(t: Test, weights: Record<string, number>, handler?: UpstreamHandler): Promise<{ reg: TestRegistry; upstreams: Upstream[]; revision: number }> {
  const reg = await startTestRegistry()
  t.teardown(() => reg.destroy())
  const upstreams: Upstream[] = []
  for (const version of ['v1', 'v2']) {
    const upstream = await startUpstream(version, `api-${version}`, handler)
    t.teardown(() => upstream.close())
    upstreams.push(upstream)
    const answer = await reg.call('POST', '/v1/services/api/instances', { token: 'registrar', body: { version, host: '127.0.0.1', port: upstream.port, id: `api-${version}` } })
    if (answer.status !== 201 && answer.status !== 200) throw new Error(answer.text)
  }
  const answer = await reg.call('PUT', '/v1/services/api/weights', { token: 'operator', body: { weights } })
  if (answer.status !== 200) throw new Error(answer.text)
  return { reg, upstreams, revision: answer.json.revision as number }
}

async function routerOf(t: Test, reg: TestRegistry, revision: number, config: Record<string, unknown> = {}): Promise<WorkersRouter> {
  const router = await startWorkersRouter(reg.url, { workers: 2, config: { drainTimeoutMs: 3_000, ...config } })
  t.teardown(() => router.close())
  await router.waitForRevision(revision)
  return router
}

/** `total` GETs over `connections` keep-alive connections; the versions that answered, counted. */
async function split(url: string, total: number, connections: number): Promise<Map<string, number>> {
  const pool = new Pool(url, { connections })
  const counts = new Map<string, number>()
  let sent = 0
  const loop = async () => {
    while (sent < total) {
      sent++
      const answer = await pool.request({ method: 'GET', path: '/api/split' })
      await answer.body.dump()
      const key = answer.statusCode === 200 ? String(answer.headers['x-switchyard-version']) : `status ${answer.statusCode}`
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
  }
  await Promise.all(Array.from({ length: connections }, loop))
  await pool.close()
  return counts
}

/** One GET on a connection of its own (closed after), so that each lands where the primary hands it. */
async function freshGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; version: string }> {
  const answer = await request(`${url}/api/fresh`, { headers: { ...headers, connection: 'close' } })
  await answer.body.dump()
  return { status: answer.statusCode, version: String(answer.headers['x-switchyard-version']) }
}

void t.test('two workers share the port: both serve, the split holds within 1 pp over 10,000 requests, sticky keys agree, /metrics is the sum', async (t) => {
  const { reg, revision } = await meshOf(t, { v1: 90, v2: 10 })
  const router = await routerOf(t, reg, revision)
  const workers = await router.workers()
  t.equal(workers.length, 2)
  t.equal(new Set(workers.map((worker) => worker.pid)).size, 2, 'two worker processes')
  t.notOk(
    workers.some((worker) => worker.pid === router.process.child.pid),
    'neither is the primary'
  )

  const counts = await split(router.proxyUrl, 10_000, 16)
  t.same([...counts.keys()].sort(), ['v1', 'v2'], 'every answer a 200 from v1 or v2')
  const share = ((counts.get('v2') ?? 0) / 10_000) * 100
  t.ok(Math.abs(share - 10) <= 1, `v2 got ${share}% of 10,000 requests (weight 10%)`)

  // Each worker counted its own part, and the parts add up to every request.
  const served = await waitFor(async () => {
    const listed = await router.workers()
    return listed.reduce((sum, worker) => sum + worker.requests, 0) === 10_000 ? listed : undefined
  }, 'both workers reporting 10,000 requests in all')
  t.ok(
    served.every((worker) => worker.requests > 1_000),
    `both workers served: ${served.map((worker) => `pid ${worker.pid}: ${worker.requests}`).join(', ')}`
  )

  const text = await scrape(router.adminUrl)
  t.equal(metric(text, 'switchyard_requests_total', { service: 'api', code: '200' }), 10_000, 'the admin port counts every worker')
  t.equal(metric(text, 'switchyard_requests_total', { service: 'api', version: 'v2', code: '200' }), counts.get('v2'))
  t.equal(metric(text, 'switchyard_request_duration_seconds_count', { service: 'api' }), 10_000, 'histograms are summed too')
  t.equal(metric(text, 'switchyard_router_workers'), 2)
  t.equal(metric(text, 'switchyard_route_table_revision'), revision, 'the revision is not summed: it is the one every worker has')
  t.ok(metric(text, 'process_cpu_seconds_total') > 0)

  // A sticky key lands on the same version whichever worker takes the connection.
  const disagreements: string[] = []
  const stickyCounts = new Map<string, number>()
  for (let key = 0; key < 60; key++) {
    const versions = new Set<string>()
    for (let attempt = 0; attempt < 4; attempt++) {
      const answer = await freshGet(router.proxyUrl, { 'x-switchyard-key': `user-${key}` })
      versions.add(answer.version)
    }
    if (versions.size !== 1) disagreements.push(`user-${key}: ${[...versions].join(',')}`)
    const version = [...versions][0] as string
    stickyCounts.set(version, (stickyCounts.get(version) ?? 0) + 1)
  }
  t.same(disagreements, [], 'each key always on one version')
  const after = await router.workers()
  t.ok(
    after.every((worker, index) => worker.requests > (served[index]?.requests ?? 0)),
    'the fresh connections went to both workers'
  )

  const routes = (await get(`${router.adminUrl}/routes`)).json
  t.equal(routes.revision, revision)
  t.equal(routes.workers, 2)
  t.same(
    routes.services[0].versions.map((version: { name: string; weight: number }) => [version.name, version.weight]),
    [
      ['v1', 90],
      ['v2', 10]
    ]
  )
  const listed = (await get(`${reg.url}/v1/routers`, { authorization: `Bearer ${TOKENS.admin}` })).json
  t.same(
    listed.routers.map((entry: { id: string }) => entry.id),
    [router.id],
    'one router in the registry, whatever the number of workers'
  )
})

void t.test('weights set --wait returns once every worker routes on the new weights', async (t) => {
  const { reg, revision } = await meshOf(t, { v1: 100, v2: 0 })
  const router = await routerOf(t, reg, revision)
  const env = { SWITCHYARD_REGISTRY_URL: reg.url, SWITCHYARD_TOKEN: TOKENS.operator }
  const set = await runCli(['weights', 'set', 'api', 'v1=0', 'v2=100', '--wait', '--timeout', '10s'], env)
  t.equal(set.code, 0, set.stderr)
  t.match(set.stdout, /applied by 1 router\(s\)/)
  // At once, on fresh connections (both workers): no answer from the old split.
  const versions = new Set<string>()
  for (let i = 0; i < 40; i++) versions.add((await freshGet(router.proxyUrl)).version)
  t.same([...versions], ['v2'])
  const listed = (await get(`${reg.url}/v1/routers`, { authorization: `Bearer ${TOKENS.admin}` })).json
  t.equal(listed.routers[0].appliedRevision, reg.registry.revision)
})

void t.test('a killed worker is started again while traffic goes on; only its own connections fail', async (t) => {
  const { reg, revision } = await meshOf(t, { v1: 90, v2: 10 })
  const router = await routerOf(t, reg, revision)
  const before = await router.workers()
  const victim = before[0] as { pid: number; slot: number }

  // Keep-alive clients, one connection each, sending one request after another.
  const clients = Array.from({ length: 8 }, () => ({ client: new Client(router.proxyUrl), ok: 0, okAfterRestart: 0, failures: [] as number[] }))
  t.teardown(() => Promise.all(clients.map((entry) => entry.client.destroy())))
  let stop = false
  let restartedAt = Infinity
  const loops = clients.map(async (entry) => {
    while (!stop) {
      try {
        const answer = await entry.client.request({ method: 'GET', path: '/api/kill' })
        await answer.body.dump()
        if (answer.statusCode !== 200) throw new Error(`status ${answer.statusCode}`)
        entry.ok++
        if (Date.now() > restartedAt) entry.okAfterRestart++
      } catch {
        entry.failures.push(Date.now())
      }
    }
  })
  await waitFor(() => (clients.every((entry) => entry.ok >= 20) ? true : undefined), 'traffic on every client', 20_000)

  process.kill(victim.pid, 'SIGKILL')
  const replaced = await waitFor(
    async () => {
      const now = await router.workers()
      const successor = now.find((worker) => worker.slot === victim.slot)
      return successor && successor.pid !== victim.pid && successor.listening && now.length === 2 ? successor : undefined
    },
    'a worker in place of the killed one',
    30_000
  )
  restartedAt = Date.now()
  t.equal(replaced.restarts, 1)
  // Traffic goes on after the restart, on every client (bounded: each needs 20 more answers).
  await waitFor(() => (clients.every((entry) => entry.okAfterRestart >= 20) ? true : undefined), 'traffic after the restart', 30_000)
  // New connections reach the new worker too.
  await waitFor(
    async () => {
      await Promise.all(Array.from({ length: 4 }, () => freshGet(router.proxyUrl)))
      const now = await router.workers()
      return (now.find((worker) => worker.pid === replaced.pid)?.requests ?? 0) > 0 ? true : undefined
    },
    'the new worker serving',
    20_000
  )
  stop = true
  await Promise.all(loops)

  const failures = clients.flatMap((entry) => entry.failures)
  t.ok(
    clients.every((entry) => entry.failures.length <= 1),
    `a client fails at most once, on its connection to the killed worker: ${clients.map((entry) => entry.failures.length).join(' ')}`
  )
  t.ok(failures.length < clients.length, 'the clients of the other worker never failed')
  t.same(
    failures.filter((at) => at > restartedAt),
    [],
    'no failure after the restart'
  )
  t.match(router.process.output(), /router worker exited; starting another in its place/)
  const text = await scrape(router.adminUrl)
  t.equal(metric(text, 'switchyard_router_worker_restarts_total'), 1)
})

void t.test('SIGTERM drains every worker: requests under way finish, upgraded connections are closed with 1001, then the primary exits 0', async (t) => {
  let release: () => void = () => {}
  const held = new Promise<void>((resolve) => (release = resolve))
  const { reg, upstreams, revision } = await meshOf(t, { v1: 50, v2: 50 }, (req, res, upstream) => {
    req.resume()
    void held.then(() => res.end(JSON.stringify({ version: upstream.version })))
  })
  for (const upstream of upstreams) {
    const wss = new WebSocketServer({ server: upstream.server })
    t.teardown(() => {
      for (const socket of wss.clients) socket.terminate()
      wss.close()
    })
  }
  const router = await routerOf(t, reg, revision, { drainTimeoutMs: 2_000 })
  const workerPids = (await router.workers()).map((worker) => worker.pid)

  // Slow requests on connections of their own (so both workers have some), and a WebSocket.
  const slow = Array.from({ length: 6 }, () => freshGet(router.proxyUrl))
  const socket = new WebSocket(`${router.proxyUrl.replace('http', 'ws')}/api/socket`)
  const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)))
  await new Promise((resolve, reject) => {
    socket.once('open', resolve)
    socket.once('error', reject)
  })
  await waitFor(() => (upstreams.reduce((sum, upstream) => sum + upstream.hits, 0) >= 6 ? true : undefined), 'the slow requests at the upstreams')

  void router.process.kill('SIGTERM')
  await router.process.waitForOutput('SIGTERM received, closing')
  // The upstreams answer after the router began draining: every answer still reaches its client.
  setTimeout(release, 300)
  const answers = await Promise.all(slow)
  t.same(
    answers.map((answer) => answer.status),
    [200, 200, 200, 200, 200, 200]
  )
  t.equal(await closed, 1001, 'the WebSocket is ended with going away once the drain timeout passed')
  t.equal(await router.process.exited, 0)
  for (const pid of workerPids) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `worker ${pid} is gone`)
  await t.rejects(freshGet(router.proxyUrl), 'nothing listens any more')
})

void t.test('a router whose workers cannot listen does not start', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(() => reg.destroy())
  const taken: NetServer = createNetServer()
  const port = await freePort()
  await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())))
  const adminPort = await freePort()
  const child = spawnNode(
    [cliPath, 'router', '--workers', '2', '--host', '127.0.0.1', '--port', String(port), '--admin-host', '127.0.0.1', '--admin-port', String(adminPort), '--routes', '/api=api'],
    { SWITCHYARD_REGISTRY_URL: reg.url, SWITCHYARD_TOKEN: TOKENS.router, OTEL_SDK_DISABLED: 'true' }
  )
  t.teardown(() => child.kill('SIGKILL'))
  t.equal(await child.exited, 1, child.output())
  t.match(child.output(), /EADDRINUSE/)
})
