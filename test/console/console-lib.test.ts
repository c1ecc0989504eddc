import t from 'tap'
import type { RegistryChange } from '../../core/registry-events.js'
import type { VersionFigures } from '../../core/signals/figures.js'
import { age, millis, percent, rate, splitText } from '../../console/lib/format.js'
import { changedVersions, filterHistory, type HistoryEntry } from '../../console/lib/history.js'
import { applyChange, fromRest, fromSnapshot, versionSummaries, versionsOf, withHeartbeats, type RegistryView } from '../../console/lib/model.js'
import { canChangeTraffic, mayChangeAnything } from '../../console/lib/permissions.js'
import { href, parseRoute } from '../../console/lib/route.js'
import { observedShares, shareGap, SignalSeries } from '../../console/lib/signals.js'
import { describeChange, heaviest, promote, rebalance, rollBack, sameSplit, splitOf, total, weightsOf } from '../../console/lib/weight-split.js'

const AT = Date.UTC(2026, 0, 1)
const iso = (ms: number) => new Date(ms).toISOString()

function restView(): RegistryView {
  return fromRest({
    revision: 7,
    services: [
      {
        name: 'api',
        weights: { 'v1.10': 10, 'v1.9': 90 },
        instances: [
          { id: 'a', version: 'v1.9', host: '10.0.0.1', port: 80, status: 'up', metadata: {}, registeredAt: iso(AT), lastHeartbeat: iso(AT + 5000) },
          { id: 'b', version: 'v1.10', host: '10.0.0.2', port: 80, status: 'draining', metadata: { zone: 'a' }, registeredAt: iso(AT), lastHeartbeat: null }
        ]
      }
    ]
  })
}

void t.test('model: REST answer, versions in reading order, summaries', (t) => {
  const view = restView()
  const api = view.services.get('api')!
  t.same(api.versions, ['v1.9', 'v1.10'])
  t.equal(api.instances[0]?.lastHeartbeat, AT + 5000)
  t.equal(api.instances[1]?.lastHeartbeat, null)
  t.same(versionSummaries(api), [
    { version: 'v1.9', weight: 90, up: 1, draining: 0 },
    { version: 'v1.10', weight: 10, up: 0, draining: 1 }
  ])
  t.same(versionsOf({ v1: 100, v2: 0 }, []), ['v1'], 'a version at 0% with no instance is gone, as the registry counts')
  t.same(versionsOf({ v1: 100, v2: 0 }, [{ version: 'v2' }, { version: 'v0' }]), ['v0', 'v1', 'v2'])
  t.end()
})

void t.test('model: every change type, old revisions ignored, untouched services kept as they were', (t) => {
  let view = fromRest({
    revision: 7,
    services: [
      { name: 'api', weights: { v1: 100 }, instances: [] },
      { name: 'web', weights: { v1: 100 }, instances: [] }
    ]
  })
  const web = view.services.get('web')
  const instance = { id: 'i1', service: 'api', version: 'v2', host: 'h', port: 1, metadata: { k: 'v' }, status: 'up' as const, registeredAt: AT }
  const changes: RegistryChange[] = [
    { type: 'instance-registered', revision: 8, at: AT, instance },
    { type: 'instance-status-changed', revision: 9, at: AT, service: 'api', id: 'i1', status: 'draining' },
    { type: 'weights-changed', revision: 10, at: AT, service: 'api', weights: { v1: 60, v2: 40 }, previous: { v1: 100 }, actor: 'alice' },
    { type: 'instance-removed', revision: 11, at: AT, service: 'api', id: 'i1', reason: 'evicted' }
  ]
  const seen: unknown[] = []
  for (const change of changes) {
    view = applyChange(view, change)
    const api = view.services.get('api')!
    seen.push([view.revision, api.versions, api.instances.map((i) => `${i.id}:${i.status}:${i.lastHeartbeat}`), api.weights])
  }
  t.same(seen, [
    [8, ['v1', 'v2'], [`i1:up:${AT}`], { v1: 100 }],
    [9, ['v1', 'v2'], [`i1:draining:${AT}`], { v1: 100 }],
    [10, ['v1', 'v2'], [`i1:draining:${AT}`], { v1: 60, v2: 40 }],
    [11, ['v1', 'v2'], [], { v1: 60, v2: 40 }]
  ])
  t.equal(view.services.get('web'), web, 'a service no change touched is the same object (its row is not redrawn)')
  t.equal(applyChange(view, changes[0]!), view, 'a change the view already holds changes nothing')
  const rollout = applyChange(view, { type: 'rollout-changed', revision: 12, at: AT, service: 'api', rollout: {} as never, event: 'started', actor: 'alice' })
  t.equal(rollout.revision, 12)
  t.equal(rollout.services, view.services)
  const unknown = applyChange(view, { type: 'instance-status-changed', revision: 13, at: AT, service: 'nope', id: 'x', status: 'up' })
  t.equal(unknown.revision, 13)
  t.notOk(unknown.services.has('nope'))
  t.notOk(applyChange(view, { type: 'instance-removed', revision: 14, at: AT, service: 'nope', id: 'x', reason: 'deregistered' }).services.has('nope'))
  t.end()
})

void t.test('model: a snapshot keeps known heartbeats; a fresh GET lays heartbeats over the view', (t) => {
  const view = restView()
  const snapshot = fromSnapshot(
    {
      revision: 20,
      services: [
        {
          name: 'api',
          weights: { 'v1.9': 100 },
          instances: [
            { id: 'a', service: 'api', version: 'v1.9', host: '10.0.0.1', port: 80, status: 'up', metadata: {}, registeredAt: AT },
            { id: 'c', service: 'api', version: 'v1.9', host: '10.0.0.3', port: 80, status: 'up', metadata: {}, registeredAt: AT + 9000 }
          ]
        }
      ]
    },
    view
  )
  t.same(
    snapshot.services.get('api')!.instances.map((i) => [i.id, i.lastHeartbeat]),
    [
      ['a', AT + 5000],
      ['c', AT + 9000]
    ]
  )
  t.equal(snapshot.revision, 20)
  const rest = {
    name: 'api',
    weights: {},
    instances: [{ id: 'c', version: 'v1.9', host: 'x', port: 1, status: 'up' as const, metadata: {}, registeredAt: iso(AT), lastHeartbeat: iso(AT + 12_000) }]
  }
  const beaten = withHeartbeats(snapshot, rest)
  t.same(
    beaten.services.get('api')!.instances.map((i) => [i.id, i.lastHeartbeat]),
    [
      ['a', AT + 5000],
      ['c', AT + 12_000]
    ]
  )
  t.equal(withHeartbeats(beaten, rest), beaten, 'nothing new: the same view')
  t.equal(withHeartbeats(beaten, { ...rest, name: 'other' }), beaten)
  t.end()
})

void t.test('weight split: always 10,000 basis points, the others in proportion, largest remainders first', (t) => {
  const cases: [number[], number, number, number[]][] = [
    [[9000, 1000], 1, 2500, [7500, 2500]],
    [[10000, 0], 1, 10000, [0, 10000]],
    [[5000, 3000, 2000], 0, 2000, [2000, 4800, 3200]],
    [[10000, 0, 0], 0, 0, [0, 5000, 5000]],
    [[10000, 0, 0, 0], 0, 0, [0, 3334, 3333, 3333]],
    [[3333, 3333, 3334], 2, 1, [5000, 4999, 1]],
    [[10000], 0, 20, [10000]],
    [[5000, 5000], 0, 12000, [10000, 0]],
    [[5000, 5000], 0, -5, [0, 10000]],
    [[5000, 5000], 1, 2550.4, [7450, 2550]]
  ]
  for (const [split, index, value, expected] of cases) {
    const result = rebalance(split, index, value)
    t.same(result, expected, `${split} with #${index} at ${value}`)
    t.equal(total(result), 10000)
  }
  const versions = ['v1', 'v2', 'v3']
  t.same(splitOf(versions, { v1: 33.33, v3: 66.67 }), [3333, 0, 6667])
  t.same(weightsOf(versions, [3333, 0, 6667]), { v1: 33.33, v2: 0, v3: 66.67 })
  t.same(rollBack(versions, [5000, 2000, 3000], 'v3', 'v1'), [8000, 2000, 0])
  t.same(promote(versions, 'v2'), [0, 10000, 0])
  t.equal(heaviest(versions, [2000, 4000, 4000]), 'v2', 'first on a tie')
  t.equal(heaviest([], []), undefined)
  t.ok(sameSplit([1, 2], [1, 2]))
  t.notOk(sameSplit([1, 2], [2, 1]))
  t.notOk(sameSplit([1], [1, 0]))
  t.equal(describeChange(versions, [10000, 0, 0], [9000, 1000, 0]), 'v1 100% → 90%, v2 0% → 10%')
  t.equal(describeChange(versions, [10000, 0, 0], [10000, 0, 0]), 'no change')
  t.end()
})

void t.test('format: fixed units, never NaN', (t) => {
  t.same([percent(12.345), percent(12.345, 2), percent(null), percent(Number.NaN), percent(100)], ['12.3%', '12.35%', '–', '–', '100%'])
  t.same([rate(1234.5), rate(12.345), rate(1.2345), rate(0), rate(undefined)], ['1,235', '12.3', '1.23', '0', '–'])
  t.same([millis(0.456), millis(12.6), millis(1500), millis(undefined)], ['0.5 ms', '13 ms', '1.5 s', '–'])
  const now = AT + 10 * 86_400_000
  t.same(
    [age(now - 4_000, now), age(now - 180_000, now), age(now - 3 * 3_600_000, now), age(now - 3 * 86_400_000, now), age(now + 5_000, now), age(null, now)],
    ['4 s', '3 min', '3 h', '3 d', '0 s', '–']
  )
  t.equal(splitText({ 'v1.3': 90, 'v1.4': 10 }), 'v1.3=90 v1.4=10')
  t.equal(splitText({}), '(none)')
  t.end()
})

void t.test('history: filter by words and by who, newest first', (t) => {
  const entries: HistoryEntry[] = [
    { revision: 1, at: iso(AT), actor: 'registry (first version of the service)', from: {}, to: { v1: 100 } },
    { revision: 4, at: iso(AT), actor: 'alice', from: { v1: 100, v2: 0 }, to: { v1: 90, v2: 10 } },
    { revision: 9, at: iso(AT), actor: 'rollout', from: { v1: 90, v2: 10 }, to: { v1: 50, v2: 50 } },
    { revision: 12, at: iso(AT), actor: 'rollout (bob)', from: { v1: 50, v2: 50 }, to: { v2: 100 } }
  ]
  const revisions = (text: string, kind: 'all' | 'rollout' | 'manual') => filterHistory(entries, { text, kind }).map((entry) => entry.revision)
  t.same(revisions('', 'all'), [12, 9, 4, 1])
  t.same(revisions('', 'rollout'), [12, 9])
  t.same(revisions('', 'manual'), [4, 1])
  t.same(revisions('ALICE', 'all'), [4])
  t.same(revisions('v2 bob', 'all'), [12])
  t.same(revisions('9', 'all'), [9])
  t.same(changedVersions(entries[3]!), ['v1', 'v2'])
  t.end()
})

const figures = (requests: number, messagesRouted = 0): VersionFigures => ({
  requests,
  rps: requests / 60,
  errors: 0,
  errorRatePercent: 0,
  p50Ms: requests ? 2 : undefined,
  p99Ms: requests ? 9 : undefined,
  statusClasses: { '1xx': 0, '2xx': requests, '3xx': 0, '4xx': 0, '5xx': 0 },
  messagesRouted,
  mps: messagesRouted / 60,
  messagesRejected: 0,
  rejectRatePercent: 0,
  latency: []
})

void t.test('signals: observed share beside the weight, gaps, chart columns', (t) => {
  const signals = { service: 'api', windowMs: 60_000, source: 'routers', versions: { v1: figures(300, 10), v2: figures(100, 30) } }
  t.same(observedShares(signals, ['v1', 'v2', 'v3']), {
    v1: { http: 75, queue: 25 },
    v2: { http: 25, queue: 75 },
    v3: { http: 0, queue: 0 }
  })
  t.same(observedShares(undefined, ['v1']), { v1: { http: null, queue: null } })
  t.same(
    [shareGap(10, 25, 400), shareGap(10, 15, 400), shareGap(10, 25, 20), shareGap(10, null, 400)],
    [true, false, false, false],
    'far off with enough traffic; close, too little traffic or none: no flag'
  )
  const series = new SignalSeries(2)
  series.add({ t: 1, versions: { v1: figures(0) } })
  series.add({ t: 2, versions: { v1: figures(10), v2: figures(0, 5) } })
  series.add({ t: 3, versions: { v1: figures(20) } })
  t.equal(series.size, 2, 'only the last points are kept')
  t.same(series.versions(), ['v1', 'v2'])
  t.same(
    series.columns('p99Ms', ['v1', 'v2']),
    [
      [2, 3],
      [9, 9],
      [null, null]
    ],
    'no latency without requests'
  )
  t.same(series.columns('mps', ['v2']), [
    [2, 3],
    [5 / 60, null]
  ])
  t.ok(series.has('queue'))
  t.ok(series.has('http'))

  // History from the registry goes before the live points, never after or twice.
  const live = new SignalSeries(4)
  live.add({ t: 10, versions: { v1: figures(1) } })
  live.prefill([7, 8, 9, 10, 11].map((t) => ({ t, versions: { v1: figures(0) } })))
  t.same(live.columns('rps', ['v1'])[0], [7, 8, 9, 10], 'older points only (10 is the live one), at most 4')
  live.prefill([1, 2, 3].map((t) => ({ t, versions: {} })))
  t.same(live.columns('rps', ['v1'])[0], [7, 8, 9, 10], 'beyond capacity the oldest go')
  const empty = new SignalSeries(3)
  empty.prefill([1, 2].map((t) => ({ t, versions: {} })))
  t.same(empty.columns('rps', [])[0], [1, 2], 'all of it before any live point')
  t.end()
})

void t.test('routes and permissions', (t) => {
  t.same(['', '#/', '#/services', '#/services/api', '#/services/a%2Fb', '#/rollouts', '#/history', '#/history/api', '#/routers', '#/nope', '#/services/%E0%A4%A'].map(parseRoute), [
    { page: 'services' },
    { page: 'services' },
    { page: 'services' },
    { page: 'service', name: 'api' },
    { page: 'service', name: 'a/b' },
    { page: 'rollouts' },
    { page: 'history', service: undefined },
    { page: 'history', service: 'api' },
    { page: 'routers' },
    { page: 'services' },
    { page: 'service', name: '%E0%A4%A' }
  ])
  t.same(
    [
      { page: 'services' } as const,
      { page: 'service', name: 'a b' } as const,
      { page: 'rollouts' } as const,
      { page: 'history', service: 'api' } as const,
      { page: 'history', service: undefined } as const,
      { page: 'routers' } as const
    ].map(href),
    ['#/services', '#/services/a%20b', '#/rollouts', '#/history/api', '#/history', '#/routers']
  )
  const who = (role: string, services: string[] | null = null) => ({ name: 'x', role, services })
  t.same(
    [
      canChangeTraffic(who('reader'), 'api'),
      canChangeTraffic(who('registrar'), 'api'),
      canChangeTraffic(who('router'), 'api'),
      canChangeTraffic(who('operator'), 'api'),
      canChangeTraffic(who('admin'), 'api'),
      canChangeTraffic(who('operator', ['api']), 'api'),
      canChangeTraffic(who('operator', ['api']), 'web')
    ],
    [false, false, false, true, true, true, false]
  )
  t.same([mayChangeAnything(who('reader')), mayChangeAnything(who('operator', ['api']))], [false, true])
  t.end()
})
