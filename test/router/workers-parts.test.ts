import t from 'tap'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { ConfigError } from '../../core/config.js'
import type { RegistryChange, RegistrySnapshot } from '../../core/registry-events.js'
import { emptyCounters } from '../../core/signals/counters.js'
import { parseProxyConfig, parseRouterSettings } from '../../router/config.js'
import type { ToPrimary } from '../../router/workers/messages.js'
import { mergeMetrics, retained } from '../../router/workers/metrics-merge.js'
import { PrimaryChannel } from '../../router/workers/primary-link.js'
import { restartDelayMs } from '../../router/workers/restart-delay.js'
import { mergeRoutes, type RoutesView } from '../../router/workers/routes-merge.js'
import { addSignalCounters, requestsIn } from '../../router/workers/signal-totals.js'
import { EndpointCatalog, type SharedEjection } from '../../router/upstream/endpoint.js'
import { workerConfig } from '../../router/workers/worker-config.js'
import { workerCount } from '../../router/workers/worker-count.js'
import { metric } from '../helpers/prometheus.js'

void t.test('--workers: a count or auto, 1 when not given', (t) => {
  const cases: [string | undefined, number][] = [
    [undefined, 1],
    ['1', 1],
    ['3', 3],
    ['auto', 4]
  ]
  for (const [setting, expected] of cases)
    t.equal(
      workerCount(setting, () => 4),
      expected,
      String(setting)
    )
  t.equal(
    workerCount('auto', () => 0),
    1,
    'never 0'
  )
  t.equal(parseRouterSettings({}, {}).workers, '1', 'npm start and every router without the setting: one process')
  t.equal(parseRouterSettings({}, { SWITCHYARD_ROUTER_WORKERS: 'auto' }).workers, 'auto')
  t.equal(parseRouterSettings({ workers: '2' }, { SWITCHYARD_ROUTER_WORKERS: 'auto' }).workers, '2', 'the flag wins')
  for (const bad of ['0', 'many', '1000', '-1', '2.5']) {
    t.throws(() => parseRouterSettings({ workers: bad }, {}), ConfigError, bad)
    try {
      parseRouterSettings({ workers: bad }, {})
    } catch (error) {
      t.match((error as ConfigError).problems[0], /^--workers: /, `${bad} is named`)
    }
  }
  t.end()
})

void t.test("upgrades.maxConnections is the router's: each worker takes its share, rounded up", (t) => {
  const config = parseProxyConfig({ upgrades: { maxConnections: 10_001, idleTimeoutMs: 5_000 } }, 'test')
  const cases: [number, number][] = [
    [1, 10_001],
    [2, 5_001],
    [3, 3_334],
    [16, 626]
  ]
  for (const [workers, expected] of cases) t.equal(workerConfig(config, workers).upgrades.maxConnections, expected, `${workers} workers`)
  t.equal(workerConfig(config, 2).upgrades.idleTimeoutMs, 5_000, 'the rest as written')
  t.equal(workerConfig(parseProxyConfig({ upgrades: { maxConnections: 0 } }, 'test'), 4).upgrades.maxConnections, 0, 'no upgrades stays no upgrades')
  t.equal(config.upgrades.maxConnections, 10_001, 'the config itself untouched')
  t.end()
})

void t.test("ejections: told to the other workers, adopted when they last longer, never shortening this worker's own", async (t) => {
  const catalog = new EndpointCatalog({ connectTimeoutMs: 1_000, keepAliveMs: 1_000, connections: 1 })
  const told: SharedEjection[] = []
  catalog.onEjected = (ejection) => told.push(ejection)
  const instance = { service: 'api', id: 'a-1', version: 'v1', host: '127.0.0.1', port: 9, status: 'up' as const, metadata: {}, registeredAt: 0, lastHeartbeat: 0 }
  const endpoint = catalog.endpointFor(instance)
  const outlier = { consecutiveFailures: 1, baseEjectionMs: 5_000, maxEjectionMs: 60_000, maxEjectionPercent: 100 }
  t.equal(endpoint.countFailure([endpoint], 0, outlier), true, 'one failure ejects with consecutiveFailures 1')
  t.same(told, [{ key: 'api/a-1@127.0.0.1:9', ejectedUntil: 5_000, ejections: 1 }], 'its own ejection goes out with the key every worker knows it by')
  const cases: [string, SharedEjection, number, number][] = [
    ['longer: adopted', { key: endpoint.key, ejectedUntil: 9_000, ejections: 2 }, 9_000, 2],
    ['shorter: ignored', { key: endpoint.key, ejectedUntil: 7_000, ejections: 3 }, 9_000, 2],
    ['another instance: ignored', { key: 'api/b-1@127.0.0.1:10', ejectedUntil: 20_000, ejections: 4 }, 9_000, 2]
  ]
  for (const [name, ejection, until, ejections] of cases) {
    endpoint.consecutiveFailures = 2
    catalog.adopt(ejection)
    t.same([endpoint.ejectedUntil, endpoint.ejections], [until, ejections], name)
  }
  t.equal(endpoint.lastEjectionEnd, 9_000)
  t.equal(told.length, 1, 'an adopted ejection is not told again')
  await catalog.closeAll()
})

void t.test('restart delay: at once after a long life, then doubling from 100 ms to 10 s', (t) => {
  const cases: [number, number][] = [
    [0, 0],
    [1, 100],
    [2, 200],
    [3, 400],
    [7, 6_400],
    [8, 10_000],
    [30, 10_000]
  ]
  for (const [quickExits, delay] of cases) t.equal(restartDelayMs(quickExits), delay, `${quickExits} in a row`)
  t.end()
})

void t.test('signal counters: summed per service and version, inputs untouched', (t) => {
  const one = emptyCounters()
  one.statusClasses[1] = 5
  one.latency[0] = 5
  const two = emptyCounters()
  two.statusClasses[4] = 2
  two.latency[3] = 2
  const a = { api: { v1: one } }
  const b = { api: { v1: two, v2: one }, web: { v1: two } }
  const sum = addSignalCounters(a, b)
  t.same(sum.api?.v1?.statusClasses, [0, 5, 0, 0, 2])
  t.same(sum.api?.v1?.latency.slice(0, 4), [5, 0, 0, 2])
  t.same(sum.api?.v2, one)
  t.not(sum.api?.v2, one, 'a copy')
  t.same(sum.web?.v1, two)
  t.same(one.statusClasses, [0, 5, 0, 0, 0], 'inputs unchanged')
  t.equal(requestsIn(sum), 5 + 2 + 5 + 2)
  t.equal(requestsIn({}), 0)
  t.end()
})

function routesView(revision: number, inflight: number, ejectedUntil: string | null, extra: Record<string, unknown> = {}): RoutesView & Record<string, unknown> {
  return {
    revision,
    ...extra,
    services: [
      {
        name: 'api',
        versions: [
          { name: 'v1', instances: [{ id: 'a', inflight, ejected: ejectedUntil !== null, ejectedUntil }] },
          { name: 'v2', instances: [{ id: 'b', inflight: 1, ejected: false, ejectedUntil: null }] }
        ]
      }
    ]
  }
}

void t.test('routes: the lowest revision shown, in-flight summed, ejected by any worker', (t) => {
  t.equal(mergeRoutes([]), undefined)
  const merged = mergeRoutes([
    routesView(7, 2, null, { rules: ['kept'] }),
    routesView(6, 3, '2030-01-01T00:00:01.000Z', { rules: ['lowest'] }),
    routesView(7, 4, '2030-01-01T00:00:05.000Z')
  ])
  t.equal(merged?.revision, 6)
  t.same(merged?.rules, ['lowest'], 'fields the merge does not know pass through from the lowest')
  t.equal(merged?.workers, 3)
  const v1 = merged?.services[0]?.versions[0]?.instances[0]
  t.same(v1, { id: 'a', inflight: 9, ejected: true, ejectedUntil: '2030-01-01T00:00:05.000Z' })
  t.equal(merged?.services[0]?.versions[1]?.instances[0]?.inflight, 3)
  // An instance only one worker knows (tables a revision apart) is not invented elsewhere.
  const apart = mergeRoutes([
    routesView(5, 1, null),
    { revision: 6, services: [{ name: 'api', versions: [{ name: 'v3', instances: [{ id: 'c', inflight: 4, ejected: false, ejectedUntil: null }] }] }] }
  ])
  t.same(
    apart?.services[0]?.versions.map((version) => version.name),
    ['v1', 'v2']
  )
  t.end()
})

async function processMetrics(requests: number, revision: number, seconds: number): Promise<Awaited<ReturnType<Registry['getMetricsAsJSON']>>> {
  const registry = new Registry()
  const registers = [registry]
  new Counter({ name: 'switchyard_requests_total', help: 'h', labelNames: ['code'], registers }).inc({ code: '200' }, requests)
  new Histogram({ name: 'switchyard_request_duration_seconds', help: 'h', buckets: [0.1, 1], registers }).observe(seconds)
  new Gauge({ name: 'switchyard_route_table_revision', help: 'h', registers }).set(revision)
  new Gauge({ name: 'switchyard_requests_in_flight', help: 'h', registers }).set(2)
  // Through JSON, as they cross the IPC channel.
  return JSON.parse(JSON.stringify(await registry.getMetricsAsJSON())) as Awaited<ReturnType<Registry['getMetricsAsJSON']>>
}

void t.test('metrics: counters, histograms and gauges summed over workers, the revision the lowest; an exited worker leaves its counters only', async (t) => {
  const first = await processMetrics(10, 7, 0.05)
  const second = await processMetrics(5, 6, 0.5)
  const text = await mergeMetrics([first, second]).metrics()
  t.equal(metric(text, 'switchyard_requests_total', { code: '200' }), 15)
  t.equal(metric(text, 'switchyard_request_duration_seconds_count'), 2)
  t.equal(metric(text, 'switchyard_request_duration_seconds_bucket', { le: '0.1' }), 1)
  t.equal(metric(text, 'switchyard_requests_in_flight'), 4)
  t.equal(metric(text, 'switchyard_route_table_revision'), 6)

  const left = await retained([], second)
  t.same(left.map((entry) => entry.name).sort(), ['switchyard_request_duration_seconds', 'switchyard_requests_total'])
  const twice = await retained(left, await processMetrics(1, 9, 0.05))
  const after = await mergeMetrics([first, twice]).metrics()
  t.equal(metric(after, 'switchyard_requests_total', { code: '200' }), 16, 'what exited workers counted stays in the sum')
  t.equal(metric(after, 'switchyard_requests_in_flight'), 2, 'their gauges do not')
  t.equal(metric(after, 'switchyard_route_table_revision'), 7)
})

void t.test("the worker's end of the link: deliveries wait for the table source; reports say when a table is in force", async (t) => {
  const sent: ToPrimary[] = []
  const channel = new PrimaryChannel('http://127.0.0.1:9901', 60_000, (message) => sent.push(message))
  const seen: string[] = []
  const snapshot: RegistrySnapshot = { revision: 3, services: [] }
  const change = { type: 'rollout-changed', revision: 4 } as unknown as RegistryChange
  channel.deliver({ snapshot })
  const feed = channel.feed({ onSnapshot: (value) => seen.push(`snapshot ${value.revision}`), onChange: (value) => seen.push(`change ${value.revision}`) })
  channel.deliver({ change })
  t.same(seen, [], 'nothing before start')
  feed.start()
  t.same(seen, ['snapshot 3', 'change 4'], 'in order at start')
  channel.deliver({ change: { ...change, revision: 5 } as RegistryChange })
  t.same(seen, ['snapshot 3', 'change 4', 'change 5'])
  feed.stop()
  channel.deliver({ change: { ...change, revision: 6 } as RegistryChange })
  t.equal(seen.length, 3, 'held once stopped')

  let revision = 0
  const reporter = channel.reporter({ counters: () => ({}), appliedRevision: () => revision })
  reporter.start()
  revision = 5
  reporter.applied()
  reporter.report()
  await reporter.stop()
  reporter.report()
  t.same(sent, [
    { kind: 'switchyard:report', appliedRevision: 0, ready: false, counters: {} },
    { kind: 'switchyard:report', appliedRevision: 5, ready: true, counters: {} },
    { kind: 'switchyard:report', appliedRevision: 5, ready: true, counters: {} }
  ])
})
