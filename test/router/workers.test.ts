import t from 'tap'
import { Pool } from 'undici'
import WebSocket, { WebSocketServer } from 'ws'
import { get } from '../helpers/http.js'
import { runCli } from '../helpers/processes.js'
import { metric, scrape } from '../helpers/prometheus.js'
import { TOKENS, waitFor } from '../helpers/registry-harness.js'
import { startUpstream } from '../helpers/router-harness.js'
import { freshGet, meshOf, routerOf } from '../helpers/router-workers.js'

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

void t.test(
  'two workers share the port: both serve, the split holds within 1 pp over 10,000 requests, sticky keys agree, /metrics is the sum, weights set --wait waits for both',
  async (t) => {
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

    // weights set --wait (no rollout) returns once every worker routes on the new weights.
    const env = { SWITCHYARD_REGISTRY_URL: reg.url, SWITCHYARD_TOKEN: TOKENS.operator }
    const set = await runCli(['weights', 'set', 'api', 'v1=0', 'v2=100', '--wait', '--timeout', '10s'], env)
    t.equal(set.code, 0, set.stderr)
    t.match(set.stdout, /applied by 1 router\(s\)/)
    // At once, on fresh connections (both workers): no answer from the old split.
    const versions = new Set<string>()
    for (let i = 0; i < 40; i++) versions.add((await freshGet(router.proxyUrl)).version)
    t.same([...versions], ['v2'])
    const reported = (await get(`${reg.url}/v1/routers`, { authorization: `Bearer ${TOKENS.admin}` })).json
    t.equal(reported.routers[0].appliedRevision, reg.registry.revision, 'the report names the revision both workers applied')
  }
)

/** A WebSocket to the router: open, or the status of its refusal. */
function openSocket(url: string): Promise<{ socket: WebSocket } | { refused: number }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url.replace('http', 'ws')}/api/socket`)
    socket.once('open', () => resolve({ socket }))
    socket.once('unexpected-response', (_request, response) => {
      response.resume()
      resolve({ refused: response.statusCode ?? 0 })
      socket.terminate()
    })
    socket.once('error', reject)
  })
}

void t.test("upgrades.maxConnections is the router's: two workers hold 4 between them, not 4 each", async (t) => {
  const { reg, upstreams, revision } = await meshOf(t, { v1: 100, v2: 0 })
  for (const upstream of upstreams) {
    const wss = new WebSocketServer({ server: upstream.server })
    t.teardown(() => {
      for (const socket of wss.clients) socket.terminate()
      wss.close()
    })
  }
  const router = await routerOf(t, reg, revision, { upgrades: { maxConnections: 4 } })
  // One after another: round-robin hands them to the workers in turn, 4 tries each.
  const outcomes = []
  for (let index = 0; index < 8; index++) outcomes.push(await openSocket(router.proxyUrl))
  const open = outcomes.flatMap((outcome) => ('socket' in outcome ? [outcome.socket] : []))
  t.equal(open.length, 4, 'four open')
  t.same(
    outcomes.flatMap((outcome) => ('refused' in outcome ? [outcome.refused] : [])),
    [503, 503, 503, 503],
    'the others refused with 503 UPGRADE_LIMIT_REACHED'
  )
  t.equal(metric(await scrape(router.adminUrl), 'switchyard_upgraded_connections', { service: 'api', version: 'v1' }), 4, 'summed over the workers')
  for (const socket of open) socket.terminate()
})

void t.test('an ejection holds in every worker: one router, one verdict', async (t) => {
  const { reg } = await meshOf(t, { v1: 100, v2: 0 })
  const bad = await startUpstream('v1', 'api-v1-bad', (request, response) => {
    request.resume()
    response.statusCode = 500
    response.end('{}')
  })
  t.teardown(() => bad.close())
  const added = await reg.call('POST', '/v1/services/api/instances', { token: 'registrar', body: { version: 'v1', host: '127.0.0.1', port: bad.port, id: 'api-v1-bad' } })
  t.ok([200, 201].includes(added.status), added.text)
  // A weight change after the registration: its revision includes the bad instance.
  const weights = await reg.call('PUT', '/v1/services/api/weights', { token: 'operator', body: { weights: { v1: 90, v2: 10 } } })
  const router = await routerOf(t, reg, weights.json.revision as number, { outlierDetection: { consecutiveFailures: 3 } })
  const v1 = { 'x-switchyard-version': 'v1' }
  // A connection per request: the primary hands them to the two workers in turn.
  for (let index = 0; index < 400; index++) {
    await freshGet(router.proxyUrl, v1)
    if (metric(await scrape(router.adminUrl), 'switchyard_ejections_total', { service: 'api', version: 'v1' }) >= 1) break
  }
  const text = await scrape(router.adminUrl)
  t.equal(metric(text, 'switchyard_ejections_total', { service: 'api', version: 'v1' }), 1, 'one worker ejected it, once')
  const hitsAtEjection = bad.hits
  t.ok(hitsAtEjection >= 3 && hitsAtEjection <= 5, `${hitsAtEjection} failures reached it before the ejection (3 in a row in one worker)`)
  const statuses = new Set<number>()
  for (let index = 0; index < 20; index++) statuses.add((await freshGet(router.proxyUrl, v1)).status)
  t.same([...statuses], [200], 'both workers send every request to the healthy instance')
  t.equal(bad.hits, hitsAtEjection, 'the other worker never tried the ejected instance again')
})
