import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { buildRegistryApp, redactedPaths } from '../../registry/app.js'
import { Registry } from '../../registry/registry.js'
import { loadPrometheusQueries, PrometheusSignals } from '../../registry/signals/prometheus-source.js'
import { PrometheusClient } from '../../registry/signals/prometheus-client.js'
import { singleValue } from '../../registry/signals/prometheus-answer.js'
import { MemoryStore } from '../../registry/store/memory-store.js'
import { freePort } from '../helpers/processes.js'
import { PROMETHEUS_BINARY, prometheusInstalled, startPrometheus } from '../helpers/prometheus-server.js'
import { TOKENS, testTokenSet, waitFor } from '../helpers/registry-harness.js'
import { startTestMesh, type TestMesh } from '../helpers/router-harness.js'
import { call } from '../helpers/http.js'
import { MemoryBrokerAdapter } from '../../router/messages/brokers/memory-broker.js'
import { parseMessageRouterSettings } from '../../router/messages/config.js'
import { startMessageRouter } from '../../router/messages/server.js'
import { OrdersWorker } from '../../sample-services/orders-worker/worker.js'

// Basic auth on Prometheus' web endpoints: the source must send it from the URL's user:password.
const AUTH = { user: 'switchyard', password: 'scrape-secret', bcrypt: '$2b$12$8fGqFlHRPsfO0QQG77MbG.AkFURGC0DjTc1s5RPPZ5.C7157ZKdUG' }
const PER_VERSION = 40
const MESSAGES = 40

// The Prometheus source against a real Prometheus (Debian's package) scraping a real router.
if (!(await prometheusInstalled())) {
  t.fail(`no Prometheus at ${PROMETHEUS_BINARY}: install Debian's package (apt-get install -y prometheus; .ci/run does it) or set SWITCHYARD_TEST_PROMETHEUS`)
} else {
  await t.test('the Prometheus source against a real Prometheus scraping a router', run)
}

async function run(t: Test): Promise<void> {
  const mesh = await startTestMesh()
  t.teardown(() => mesh.close())
  await mesh.addUpstream('api', 'v1')
  // v2 fails every other request it gets: exactly half.
  await mesh.addUpstream('api', 'v2', (req, res, upstream) => {
    req.resume()
    req.on('end', () => {
      res.statusCode = upstream.hits % 2 === 0 ? 500 : 200
      res.end(JSON.stringify({ version: 'v2' }))
    })
  })
  await mesh.setWeights('api', { v1: 50, v2: 50 })
  const plane = await startMessagePlane(t, mesh)
  const prometheus = await startPrometheus({ targets: [new URL(mesh.adminUrl).host, new URL(plane.adminUrl).host], basicAuth: AUTH })
  t.teardown(() => prometheus.close())
  const port = new URL(prometheus.url).port
  const url = `http://${AUTH.user}:${AUTH.password}@127.0.0.1:${port}`
  const client = new PrometheusClient({ url })
  /** polls until Prometheus' latest scrape sums `promql` to `expected` */
  const scraped = (promql: string, expected: number, what: string) =>
    waitFor(async () => (singleValue(await client.query(promql, Date.now(), 'test'), 'test') === expected ? true : undefined), `Prometheus to scrape ${what}`, 30_000)

  // What the clients saw, per version (pinned by header, so each version gets exactly PER_VERSION).
  const sent: Record<string, { requests: number; errors: number }> = {}
  const send = async (version: string, count: number) => {
    const tally = (sent[version] ??= { requests: 0, errors: 0 })
    for (let i = 0; i < count; i++) {
      const answer = await mesh.get('/api/hello', { 'x-switchyard-version': version })
      tally.requests++
      if (answer.status >= 500) tally.errors++
    }
  }
  await send('v1', PER_VERSION)
  await send('v2', PER_VERSION)
  t.same(sent, { v1: { requests: PER_VERSION, errors: 0 }, v2: { requests: PER_VERSION, errors: PER_VERSION / 2 } }, 'the upstreams answered as set up')
  await scraped('sum(switchyard_requests_total{service="api"})', 2 * PER_VERSION, 'every request')

  // Orders through the message router; the workers say what each version got and rejected.
  for (let i = 0; i < MESSAGES; i++) {
    const answer = await call('POST', `${plane.adminUrl}/v1/topics/orders/messages`, { body: { item: 'book', quantity: i + 1 } })
    if (answer.status >= 300) throw new Error(`publish failed: ${answer.status} ${answer.text}`)
  }
  const handled = () => plane.workers.reduce((sum, worker) => sum + worker.stats.handled + worker.stats.rejected, 0)
  await waitFor(() => (handled() === MESSAGES ? true : undefined), 'the workers to take every order')
  const rejected = plane.workers.reduce((sum, worker) => sum + worker.stats.rejected, 0)
  t.ok(rejected > 0, `v2 rejected ${rejected} orders`)
  await scraped('sum(switchyard_messages_total{topic="orders",outcome="routed"})', MESSAGES, 'every routed order')
  await scraped('sum(switchyard_messages_rejected_total{topic="orders"})', rejected, 'every rejected order')

  const queries = await loadPrometheusQueries(undefined)

  void t.test('figures per version match what was sent', async (t) => {
    const source = new PrometheusSignals({ url, queries })
    const to = Date.now()
    const signals = await source.signals('api', to - 120_000, to)
    t.equal(signals.source, 'prometheus')
    t.equal(signals.windowMs, 120_000)
    t.same(Object.keys(signals.versions), ['v1', 'v2'])
    for (const version of ['v1', 'v2']) {
      const figures = signals.versions[version]!
      const { requests, errors } = sent[version]!
      t.equal(figures.requests, requests, `${version} requests`)
      t.equal(figures.errors, errors, `${version} errors`)
      t.equal(figures.errorRatePercent, (errors / requests) * 100, `${version} error rate`)
      t.equal(figures.rps, Math.round((requests / 120) * 1000) / 1000, `${version} rps`)
      t.equal(figures.statusClasses['5xx'], errors)
      t.ok(figures.p50Ms !== undefined && figures.p50Ms > 0, `${version} p50 present: ${figures.p50Ms}`)
      t.ok(figures.p99Ms !== undefined && figures.p99Ms >= figures.p50Ms! && figures.p99Ms <= 10_000, `${version} p99 present: ${figures.p99Ms}`)
      t.equal(figures.messagesRouted, 0)
    }
    t.notOk(source.url.includes(AUTH.password), 'the URL it shows has no password')
  })

  void t.test('the routers report the same counts', async (t) => {
    // The default source, on the mesh's own registry: both sources count the same answers.
    const reported = await waitFor(async () => {
      const answer = await mesh.reg.call('GET', '/v1/services/api/signals?window=60s', { token: 'reader' })
      return answer.json.versions?.v2?.requests === PER_VERSION && answer.json.versions?.v1?.requests === PER_VERSION ? answer.json : undefined
    }, 'the router to report every request')
    t.equal(reported.versions.v2.errors, sent.v2!.errors)
  })

  void t.test('GET /v1/services/:service/signals of a registry built with the Prometheus source', async (t) => {
    const logs: string[] = []
    const app = await registryApp(() => new PrometheusSignals({ url, queries }), logs)
    t.teardown(() => app.close())
    const answer = await app.inject({ method: 'GET', url: '/v1/services/api/signals?window=120s', headers: { authorization: `Bearer ${TOKENS.reader}` } })
    t.equal(answer.statusCode, 200, answer.body)
    const body = answer.json()
    t.equal(body.source, 'prometheus')
    t.equal(body.versions.v1.requests, PER_VERSION)
    t.equal(body.versions.v2.requests, PER_VERSION)
    t.equal(body.versions.v2.errorRatePercent, 50)
    const series = await app.inject({ method: 'GET', url: '/v1/services/api/signals/series', headers: { authorization: `Bearer ${TOKENS.reader}` } })
    t.equal(series.statusCode, 200, series.body)
    t.same([series.json().source, series.json().history, series.json().points], ['prometheus', false, []], 'no history from Prometheus: the charts start empty')
  })

  void t.test('failures answer 503 SIGNALS_UNAVAILABLE, with no password in messages or logs', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'switchyard-queries-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const file = join(dir, 'queries.yaml')
    await writeFile(file, 'queries:\n  requests: sum(rate(switchyard_requests_total{service="{{service}}",version="{{version}}"}[{{window}}])\n')
    const badQuery = await loadPrometheusQueries(file)
    const wrongPassword = `http://${AUTH.user}:not-${AUTH.password}@127.0.0.1:${port}`
    const nothingThere = `http://${AUTH.user}:${AUTH.password}@127.0.0.1:${await freePort()}`
    const cases = [
      { name: 'a query Prometheus refuses', url, queries: badQuery, message: /refused the requests query: bad_data/ },
      { name: 'a wrong password', url: wrongPassword, queries, message: /answered the versions query with 401/ },
      { name: 'nothing listening', url: nothingThere, queries, message: /is unreachable \(versions query\): ECONNREFUSED/ }
    ]
    for (const { name, url: sourceUrl, queries: templates, message } of cases) {
      const logs: string[] = []
      const app = await registryApp(() => new PrometheusSignals({ url: sourceUrl, queries: templates }), logs)
      const answer = await app.inject({ method: 'GET', url: '/v1/services/api/signals?window=60s', headers: { authorization: `Bearer ${TOKENS.reader}` } })
      await app.close()
      t.equal(answer.statusCode, 503, name)
      t.equal(answer.json().code, 'SIGNALS_UNAVAILABLE', name)
      t.match(answer.json().message, message, name)
      t.notOk(answer.body.includes(AUTH.password), `${name}: no password in the answer`)
      t.ok(logs.length > 0, `${name}: logged`)
      t.notOk(logs.join('').includes(AUTH.password), `${name}: no password in the logs`)
    }
  })

  void t.test('message figures per version, summed over the topics the file maps to the service', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'switchyard-queries-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const file = join(dir, 'queries.yaml')
    await writeFile(file, 'topics:\n  orders: orders-worker\n')
    const source = new PrometheusSignals({ url, queries: await loadPrometheusQueries(file) })
    const to = Date.now()
    const signals = await source.signals('orders-worker', to - 120_000, to)
    t.same(Object.keys(signals.versions), ['v1', 'v2'])
    for (const worker of plane.workers) {
      const figures = signals.versions[worker.stats.version]!
      t.equal(figures.messagesRouted, worker.stats.handled + worker.stats.rejected, `${worker.stats.version} routed`)
      t.equal(figures.messagesRejected, worker.stats.rejected, `${worker.stats.version} rejected`)
      t.equal(figures.rejectRatePercent, Math.round((worker.stats.rejected / figures.messagesRouted) * 1_000_000) / 10_000, `${worker.stats.version} reject rate`)
      t.equal(figures.requests, 0)
    }
    const unmapped = await new PrometheusSignals({ url, queries }).signals('orders-worker', to - 120_000, to)
    t.same(unmapped.versions, {}, 'without a topic mapped to it, a service has no message figures')
  })

  void t.test('a window counts only what happened in it', async (t) => {
    // Every earlier request is in a scrape taken before this instant (polled above).
    const from = Date.now()
    const before = { ...sent.v2! }
    await send('v2', 10)
    await scraped('sum(switchyard_requests_total{service="api"})', 2 * PER_VERSION + 10, 'the second batch')
    const to = Date.now()
    const signals = await new PrometheusSignals({ url, queries }).signals('api', from, to)
    t.equal(signals.windowMs, to - from)
    t.equal(signals.versions.v2!.requests, 10)
    t.equal(signals.versions.v2!.errors, sent.v2!.errors - before.errors)
    t.equal(signals.versions.v1!.requests, 0, 'v1 had no traffic in the window')
    t.equal(signals.versions.v1!.p99Ms, undefined, 'so no latency either')
  })
}

/** A registry app (real clock, memory store) that knows service api, with the given signal source. */
async function registryApp(source: () => PrometheusSignals, logs: string[]) {
  const registry = await Registry.open({ store: new MemoryStore() })
  const stream = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk))
      done()
    }
  })
  const app = buildRegistryApp({
    registry,
    tokens: testTokenSet(),
    logger: { level: 'trace', stream, redact: { paths: redactedPaths, censor: '[redacted]' } },
    signals: { source },
    rollouts: { tickMs: 0 }
  })
  app.addHook('onClose', async () => registry.close())
  const registered = await app.inject({
    method: 'POST',
    url: '/v1/services/api/instances',
    headers: { authorization: `Bearer ${TOKENS.registrar}` },
    payload: { version: 'v1', host: '127.0.0.1', port: 1, id: 'api-1' }
  })
  if (registered.statusCode >= 300) throw new Error(`registration failed: ${registered.body}`)
  return app
}

/**
 * The message router (in-memory broker) on the mesh's registry, topic orders -> orders-worker
 * split 50/50, with the sample orders workers: v2 rejects every other order.
 */
async function startMessagePlane(t: Test, mesh: TestMesh) {
  for (const version of ['v1', 'v2']) {
    const answer = await mesh.reg.call('POST', '/v1/services/orders-worker/instances', {
      token: 'registrar',
      body: { version, host: '127.0.0.1', port: 1, id: `orders-worker-${version}` }
    })
    if (answer.status >= 300) throw new Error(`registration failed: ${answer.text}`)
  }
  const revision = await mesh.setWeights('orders-worker', { v1: 50, v2: 50 })
  const adapter = new MemoryBrokerAdapter()
  const settings = parseMessageRouterSettings(
    {
      broker: 'memory',
      topics: 'orders=orders-worker',
      registry: mesh.reg.url,
      token: TOKENS.router,
      adminHost: '127.0.0.1',
      adminPort: 0,
      reportIntervalSeconds: 1,
      logLevel: 'silent'
    },
    {}
  )
  const running = await startMessageRouter(settings, { adapter })
  t.teardown(() => running.close())
  await waitFor(() => (running.source.table.revision >= revision ? true : undefined), 'the message router at the weights revision')
  let draws = 0
  const workers = [
    new OrdersWorker(adapter, { topic: 'orders', version: 'v1' }),
    new OrdersWorker(adapter, { topic: 'orders', version: 'v2', rejectRate: 0.5, random: () => (draws++ % 2 === 0 ? 0 : 0.99) })
  ]
  for (const worker of workers) worker.start()
  t.teardown(() => Promise.all(workers.map((worker) => worker.stop())))
  return { adminUrl: running.adminUrl, workers }
}
