import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { ConfigError } from '../../core/config.js'
import { buildRegistryApp } from '../../registry/app.js'
import { Registry } from '../../registry/registry.js'
import { FileStore } from '../../registry/store/file-store.js'
import { loadProxyConfig, parseProxyConfig, parseRoutesShorthand } from '../../router/config.js'
import { startRouter } from '../../router/server.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { get } from '../helpers/http.js'
import { freePort } from '../helpers/processes.js'
import { metric, samples, scrape } from '../helpers/prometheus.js'
import { testTokenSet, TOKENS, waitFor } from '../helpers/registry-harness.js'
import { startTestMesh } from '../helpers/router-harness.js'

void t.test('health, readiness and /routes of a router with a table', async (t) => {
  const mesh = await startTestMesh({
    routes: [
      { match: { pathPrefix: '/api' }, service: 'api', stripPrefix: true, timeoutMs: 1500, retries: 1 },
      { name: 'web', match: { host: '*.example.com' }, service: 'webfront' }
    ]
  })
  t.teardown(mesh.close)
  const stable = await mesh.addUpstream('api', 'v1.3')
  const canary = await mesh.addUpstream('api', 'v1.4')
  const revision = await mesh.setWeights('api', { 'v1.3': 80, 'v1.4': 20 })

  const health = await get(`${mesh.adminUrl}/healthz`)
  t.equal(health.status, 200)
  t.same(health.json, { status: 'ok' })

  const ready = await get(`${mesh.adminUrl}/readyz`)
  t.equal(ready.status, 200)
  t.match(ready.json, { status: 'ready', revision, registryConnected: true })

  const routes = await mesh.routes()
  t.equal(routes.revision, revision, 'the revision in force')
  t.equal(routes.registryConnected, true)
  t.match(routes.updatedAt, /^\d{4}-\d\d-\d\dT/)
  t.same(routes.rules, [
    { name: 'api-0', match: { pathPrefix: '/api', host: null }, service: 'api', stripPrefix: true, timeoutMs: 1500, retries: 1, protocol: 'http1' },
    { name: 'web', match: { pathPrefix: null, host: '*.example.com' }, service: 'webfront', stripPrefix: false, timeoutMs: 60_000, retries: 2, protocol: 'http1' }
  ])
  t.same(routes.services, [
    {
      name: 'api',
      fallbackActive: false,
      versions: [
        { name: 'v1.3', weight: 80, instances: [{ id: stable.id, address: `127.0.0.1:${stable.port}`, inflight: 0, ejected: false, ejectedUntil: null }] },
        { name: 'v1.4', weight: 20, instances: [{ id: canary.id, address: `127.0.0.1:${canary.port}`, inflight: 0, ejected: false, ejectedUntil: null }] }
      ]
    }
  ])
})

void t.test('/readyz says NOT_READY until the first table, then ready', async (t) => {
  const registryPort = await freePort()
  const config = parseProxyConfig({ routes: [{ match: { pathPrefix: '/api' }, service: 'api' }] }, 'test')
  const router = await startRouter(
    {
      host: '127.0.0.1',
      port: 0,
      adminHost: '127.0.0.1',
      adminPort: 0,
      registry: `http://127.0.0.1:${registryPort}`,
      token: TOKENS.reader,
      reportIntervalSeconds: 1,
      logLevel: 'silent'
    },
    config
  )
  t.teardown(() => router.close())

  const notReady = await get(`${router.adminUrl}/readyz`)
  t.equal(notReady.status, 503)
  t.equal(notReady.json.code, 'NOT_READY')
  t.equal((await get(`${router.adminUrl}/healthz`)).status, 200, 'alive all the same')
  const routes = await get(`${router.adminUrl}/routes`)
  t.match(routes.json, { revision: 0, updatedAt: null, registryConnected: false, services: [] })
  const proxied = await get(`${router.proxyUrl}/api/x`)
  t.equal(proxied.status, 503, 'the proxy answers, but cannot route yet')
  t.equal(proxied.json.code, 'NO_ROUTE_TABLE')
  t.equal((await get(`${router.adminUrl}/readyz`)).status, 503, 'still not ready while the registry is away')

  // Now a registry appears at that address.
  const dataDir = await mkdtemp(join(tmpdir(), 'switchyard-admin-'))
  const registry = await Registry.open({ store: new FileStore({ dataDir }), clock: new FakeClock().now })
  const app = buildRegistryApp({ registry, tokens: testTokenSet() })
  t.teardown(async () => {
    await app.close()
    await registry.close()
    await rm(dataDir, { recursive: true, force: true })
  })
  await app.listen({ host: '127.0.0.1', port: registryPort })
  const ready = await waitFor(
    async () => {
      const answer = await get(`${router.adminUrl}/readyz`)
      return answer.status === 200 ? answer : undefined
    },
    '/readyz to turn ready',
    30_000
  )
  t.match(ready.json, { status: 'ready', registryConnected: true })
  t.equal((await get(`${router.adminUrl}/routes`)).json.registryConnected, true)
})

void t.test('/metrics', async (t) => {
  const mesh = await startTestMesh()
  t.teardown(mesh.close)
  await mesh.addUpstream('api', 'v1.3')
  t.equal((await mesh.get('/api/hello')).status, 200)
  const metricsUrl = `${mesh.adminUrl}/metrics`

  void t.test('has every documented metric', async (t) => {
    const response = await request(metricsUrl)
    t.match(response.headers['content-type'], /^text\/plain/)
    const text = await response.body.text()
    for (const [name, type] of [
      ['switchyard_requests_total', 'counter'],
      ['switchyard_request_duration_seconds', 'histogram'],
      ['switchyard_upstream_connect_errors_total', 'counter'],
      ['switchyard_retries_total', 'counter'],
      ['switchyard_retry_budget_exhausted_total', 'counter'],
      ['switchyard_ejections_total', 'counter'],
      ['switchyard_requests_in_flight', 'gauge'],
      ['switchyard_route_table_revision', 'gauge'],
      ['switchyard_route_table_last_update_seconds', 'gauge'],
      ['switchyard_version_fallback_total', 'counter'],
      ['switchyard_unrouted_requests_total', 'counter']
    ]) {
      t.ok(text.includes(`\n# TYPE ${name} ${type}\n`) || text.startsWith(`# TYPE ${name} ${type}\n`), `${name} (${type})`)
    }
    t.equal(metric(text, 'switchyard_requests_total', { service: 'api', version: 'v1.3', code: '200' }), 1, 'the request, by service, version and code')
    t.equal(metric(text, 'switchyard_request_duration_seconds_count', { service: 'api', version: 'v1.3' }), 1)
    t.equal(metric(text, 'switchyard_request_duration_seconds_bucket', { service: 'api', version: 'v1.3', le: '+Inf' }), 1)
    t.equal(metric(text, 'switchyard_requests_in_flight', { service: 'api' }), 0, 'nothing in flight once answered')
    t.equal(metric(text, 'switchyard_route_table_revision'), mesh.reg.registry.revision)
    t.ok(metric(text, 'switchyard_route_table_last_update_seconds') > 1_600_000_000, 'last update is a unix time in seconds')
  })

  void t.test('label values never come from client input', async (t) => {
    // Create every series these requests can touch, then check that no new one appears.
    await mesh.get('/unrouted-warmup')
    await mesh.get('/api/x', { 'x-switchyard-version': 'warmup' })
    const before = await scrape(mesh.adminUrl)
    const seriesBefore = new Set(samples(before).map((sample) => sample.series))
    const tokens: string[] = []
    const count = 60
    for (let i = 0; i < count; i++) {
      const token = `zz${randomBytes(6).toString('hex')}`
      tokens.push(token)
      const unrouted = await mesh.get(`/${token}/x?${token}=1`, { host: `${token}.example.org`, 'x-switchyard-key': token })
      t.equal(unrouted.status, 404)
      await mesh.get(`/api/${token}?q=${token}`, { 'x-switchyard-key': token, 'x-request-id': token })
      await mesh.get('/api/x', { 'x-switchyard-version': token })
    }
    const after = await scrape(mesh.adminUrl)
    const seriesAfter = new Set(samples(after).map((sample) => sample.series))
    const added = [...seriesAfter].filter((key) => !seriesBefore.has(key) && key.startsWith('switchyard_'))
    t.same(added, [], 'no new switchyard series')
    t.notOk(
      tokens.some((token) => after.includes(token)),
      'no client-sent value appears anywhere in /metrics'
    )
    const grew = (name: string, labels: Record<string, string>) => metric(after, name, labels) - metric(before, name, labels)
    t.equal(grew('switchyard_unrouted_requests_total', { reason: 'ROUTE_NOT_FOUND' }), count, 'unrouted requests are counted by reason')
    t.equal(grew('switchyard_unrouted_requests_total', { reason: 'UNKNOWN_VERSION' }), count)
    t.equal(grew('switchyard_requests_total', { service: 'api', version: 'v1.3', code: '200' }), count, 'routed requests land on the known series')
  })
})

void t.test('config validation', (t) => {
  void t.test('parseProxyConfig lists each mistake with its path', (t) => {
    const cases: [string, unknown, RegExp][] = [
      ['unknown field', { routez: [] }, /^router\.yaml\/routez: /],
      ['route without match', { routes: [{ service: 'api' }] }, /^router\.yaml\/routes\/0\/match: /],
      ['route with an empty match', { routes: [{ match: {}, service: 'api' }] }, /^router\.yaml\/routes\/0\/match: give a pathPrefix, a host or both/],
      ['stickyKey with header and cookie', { stickyKey: { header: 'x-user', cookie: 'session' } }, /^router\.yaml\/stickyKey: use either header or cookie/],
      ['zero timeout', { timeouts: { connectMs: 0 } }, /^router\.yaml\/timeouts\/connectMs: /],
      ['timeout as text', { timeouts: { firstByteMs: 'fast' } }, /^router\.yaml\/timeouts\/firstByteMs: /],
      ['unknown timeout', { timeouts: { totalMs: 5 } }, /^router\.yaml\/timeouts\/totalMs: /],
      ['bad service name', { routes: [{ match: { pathPrefix: '/api' }, service: 'API service' }] }, /^router\.yaml\/routes\/0\/service: /],
      ['path prefix without slash', { routes: [{ match: { pathPrefix: 'api' }, service: 'api' }] }, /^router\.yaml\/routes\/0\/match\/pathPrefix: /],
      ['short secret', { forcedVersion: { secretHeader: { name: 'x-secret', value: 'short' } } }, /^router\.yaml\/forcedVersion\/secretHeader\/value: /],
      ['unknown weighted choice', { weightedChoice: 'least-loaded' }, /^router\.yaml\/weightedChoice: /]
    ]
    for (const [name, document, problem] of cases) {
      const error = (() => {
        try {
          parseProxyConfig(document, 'router.yaml')
          return undefined
        } catch (caught) {
          return caught
        }
      })()
      t.type(error, ConfigError, `${name}: ConfigError`)
      t.ok(
        (error as ConfigError | undefined)?.problems.some((text) => problem.test(text)),
        `${name}: ${JSON.stringify((error as ConfigError | undefined)?.problems)}`
      )
      t.match((error as Error | undefined)?.message, /router\.yaml\//, `${name}: the message names the path`)
    }
    t.end()
  })

  void t.test('parseProxyConfig fills in defaults', (t) => {
    const config = parseProxyConfig({}, 'empty')
    t.same(config.routes, [])
    t.same(config.timeouts, { connectMs: 2_000, firstByteMs: 30_000, idleMs: 60_000, requestMs: 60_000 })
    t.same(config.retries, { max: 2, budgetRatio: 0.2, minPerSecond: 5 })
    t.equal(config.forcedVersion.allowed, true)
    t.equal(config.weightedChoice, 'smooth-round-robin')
    const partial = parseProxyConfig({ timeouts: { connectMs: 100 }, stickyKey: { cookie: 'session' } }, 'partial')
    t.same(partial.timeouts, { connectMs: 100, firstByteMs: 30_000, idleMs: 60_000, requestMs: 60_000 }, 'a partial object keeps the other defaults')
    t.same(partial.stickyKey, { cookie: 'session' }, 'a cookie sticky key gets no header added')
    t.end()
  })

  void t.test('parseRoutesShorthand', (t) => {
    t.same(parseRoutesShorthand('/api=api,/web=webfront'), [
      { match: { pathPrefix: '/api' }, service: 'api' },
      { match: { pathPrefix: '/web' }, service: 'webfront' }
    ])
    t.same(parseRoutesShorthand(' /=web , /v1/orders=orders '), [
      { match: { pathPrefix: '/' }, service: 'web' },
      { match: { pathPrefix: '/v1/orders' }, service: 'orders' }
    ])
    t.same(
      parseRoutesShorthand('[{"match":{"host":"api.example.com"},"service":"api","timeoutMs":500}]'),
      [{ match: { host: 'api.example.com' }, service: 'api', timeoutMs: 500 }],
      'the JSON form'
    )
    for (const bad of [
      'api',
      '/api=',
      '=api',
      'api=api',
      '/api=a=b',
      '/api=api,',
      '/api=API service',
      '[{"match":{}',
      '[{"match":{"pathPrefix":"/x"}}]',
      '[{"match":{},"service":"x"}]'
    ]) {
      t.throws(() => parseRoutesShorthand(bad), ConfigError, `${JSON.stringify(bad)} is refused`)
    }
    const error = (() => {
      try {
        parseRoutesShorthand('/api=api,oops')
      } catch (caught) {
        return caught as ConfigError
      }
      return undefined
    })()
    t.match(error?.problems, [/"oops" is not PATH_PREFIX=SERVICE/], 'the bad entry is named')
    t.end()
  })

  void t.test('loadProxyConfig reads a YAML file and adds shorthand routes after its own', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'switchyard-router-config-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const file = join(dir, 'router.yaml')
    await writeFile(
      file,
      [
        '# routes and proxy settings',
        'routes:',
        '  - match: { pathPrefix: /api }',
        '    service: api',
        '    stripPrefix: true',
        '  - name: shop',
        '    match:',
        '      host: "*.shop.example.com"',
        '    service: shop',
        'stickyKey: { cookie: session }',
        'timeouts:',
        '  connectMs: 500',
        'weightedChoice: random',
        'trustForwardedFrom: [10.0.0.0/8, "::1/128"]',
        ''
      ].join('\n')
    )
    const config = await loadProxyConfig({ config: file, routes: '/web=webfront' })
    t.same(config.routes, [
      { match: { pathPrefix: '/api' }, service: 'api', stripPrefix: true },
      { name: 'shop', match: { host: '*.shop.example.com' }, service: 'shop' },
      { match: { pathPrefix: '/web' }, service: 'webfront' }
    ])
    t.same(config.stickyKey, { cookie: 'session' })
    t.same(config.timeouts, { connectMs: 500, firstByteMs: 30_000, idleMs: 60_000, requestMs: 60_000 })
    t.equal(config.weightedChoice, 'random')
    t.same(config.trustForwardedFrom, ['10.0.0.0/8', '::1/128'])

    const onlyShorthand = await loadProxyConfig({ routes: '/api=api' })
    t.same(onlyShorthand.routes, [{ match: { pathPrefix: '/api' }, service: 'api' }], 'no file: defaults plus the shorthand')

    const badFile = join(dir, 'bad.yaml')
    await writeFile(badFile, 'routes:\n  - match: { pathPrefix: /api }\n    service: api\n    retry: 3\n')
    await t.rejects(
      loadProxyConfig({ config: badFile }),
      { name: 'ConfigError', problems: [new RegExp(`^${badFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/routes/0/retry: `)] },
      'mistakes are reported with the file name and path'
    )
    await t.rejects(loadProxyConfig({ config: join(dir, 'missing.yaml') }), { name: 'ConfigError', message: /cannot read router config/ })
    const notYaml = join(dir, 'broken.yaml')
    await writeFile(notYaml, 'routes: [unclosed\n')
    await t.rejects(loadProxyConfig({ config: notYaml }), { name: 'ConfigError', message: /cannot read router config/ })
  })
  t.end()
})
