import t from 'tap'
import { SwitchyardError } from '../../../core/errors.js'
import type { VersionCounters } from '../../../core/signals/counters.js'
import { figuresOf } from '../../../core/signals/figures.js'
import type { RouterKind, RouterReport } from '../../../core/signals/router-report.js'
import { SignalBook } from '../../../core/signals/signal-book.js'
import { FakeClock } from '../../helpers/fake-clock.js'
import { countersOf, type Traffic } from '../../helpers/signal-fixtures.js'

const T0 = Date.UTC(2026, 0, 1) // a whole second
const S0 = T0 / 1000

function setup(options: { routerTimeoutMs?: number; maxWindowMs?: number } = {}): { clock: FakeClock; book: SignalBook } {
  const clock = new FakeClock(T0)
  const book = new SignalBook({ clock: clock.now, routerTimeoutMs: options.routerTimeoutMs ?? 10_000, maxWindowMs: options.maxWindowMs ?? 300_000 })
  return { clock, book }
}

function report(
  id: string,
  services: Record<string, Record<string, Traffic>>,
  extra: { startedAt?: number; appliedRevision?: number; kind?: RouterKind; adminUrl?: string } = {}
): RouterReport {
  const totals: Record<string, Record<string, VersionCounters>> = {}
  for (const [service, versions] of Object.entries(services)) {
    totals[service] = Object.fromEntries(Object.entries(versions).map(([version, traffic]) => [version, countersOf(traffic)]))
  }
  return {
    id,
    kind: extra.kind ?? 'http',
    adminUrl: extra.adminUrl ?? `http://127.0.0.1:9901/${id}`,
    appliedRevision: extra.appliedRevision ?? 1,
    startedAt: extra.startedAt ?? T0 - 60_000,
    services: totals
  }
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
    return undefined
  } catch (error) {
    return error instanceof SwitchyardError ? error.code : 'not a SwitchyardError'
  }
}

void t.test('accept answers the router as listed, with its lag against the registry revision', (t) => {
  const { clock, book } = setup()
  t.strictSame(book.accept(report('r1', {}, { appliedRevision: 3 }), 'router-a', 5), {
    id: 'r1',
    kind: 'http',
    adminUrl: 'http://127.0.0.1:9901/r1',
    appliedRevision: 3,
    lag: 2,
    startedAt: T0 - 60_000,
    firstReportAt: T0,
    lastReportAt: T0,
    reporter: 'router-a'
  })
  clock.advance(1_000)
  t.strictSame(book.accept(report('r1', {}, { appliedRevision: 5, kind: 'messages', adminUrl: 'http://127.0.0.1:9999' }), 'router-a', 5), {
    id: 'r1',
    kind: 'messages',
    adminUrl: 'http://127.0.0.1:9999',
    appliedRevision: 5,
    lag: 0,
    startedAt: T0 - 60_000,
    firstReportAt: T0,
    lastReportAt: T0 + 1_000,
    reporter: 'router-a'
  })
  clock.advance(500)
  t.equal(book.accept(report('r2', {}, { appliedRevision: 7 }), 'router-b', 5).lag, 0, 'a router ahead of the revision it was told of lags 0')
  const listed = book.list(6)
  t.same(
    listed.map((router) => [router.id, router.appliedRevision, router.lag, router.lastReportAt]),
    [
      ['r1', 5, 1, T0 + 1_000],
      ['r2', 7, 0, T0 + 1_500]
    ],
    'oldest first, lag recomputed against the revision asked about'
  )
  listed[0]!.appliedRevision = 100
  t.equal(book.list(6)[0]?.appliedRevision, 5, 'the list is a copy')
  t.same(
    book.behind(6).map((router) => router.id),
    ['r1']
  )
  t.same(
    book.behind(8).map((router) => router.id),
    ['r1', 'r2']
  )
  t.same(book.behind(5), [])
  t.end()
})

void t.test('running totals become per-second deltas summed over every router', (t) => {
  const { clock, book } = setup()
  // First reports set each router's baseline.
  book.accept(report('r1', { api: { v1: { ok: 100 } } }), 'router-a', 1)
  book.accept(report('r2', { api: { v1: { ok: 50 } }, other: { v1: { ok: 7 } } }), 'router-b', 1)
  clock.advance(1_000)
  book.accept(report('r1', { api: { v1: { ok: 110, errors: 1 } } }), 'router-a', 1)
  book.accept(report('r2', { api: { v1: { ok: 60 } }, other: { v1: { ok: 7 } } }), 'router-b', 1)
  clock.advance(1_500)
  // A version a known router reports for the first time counts from zero.
  book.accept(report('r1', { api: { v1: { ok: 130, errors: 1 }, v2: { routed: 10, rejected: 1 } } }), 'router-a', 1)
  clock.advance(500)
  const signals = book.signals('api', T0, T0 + 3_000)
  t.strictSame(signals, {
    service: 'api',
    windowMs: 3_000,
    source: 'routers',
    versions: {
      v1: figuresOf(countersOf({ ok: 40, errors: 1 }), 3_000),
      v2: figuresOf(countersOf({ routed: 10, rejected: 1 }), 3_000)
    }
  })
  t.same([signals.versions.v1?.requests, signals.versions.v1?.rps, signals.versions.v1?.errors, signals.versions.v1?.errorRatePercent], [41, 13.667, 1, 2.439])
  t.same([signals.versions.v2?.messagesRouted, signals.versions.v2?.mps, signals.versions.v2?.rejectRatePercent], [10, 3.333, 10])
  t.strictSame(book.signals('other', T0, T0 + 3_000).versions, {}, 'a version without traffic since the baseline is not listed')
  t.strictSame(book.signals('nobody', T0, T0 + 3_000), { service: 'nobody', windowMs: 3_000, source: 'routers', versions: {} })
  t.equal(book.signals('api', T0).windowMs, 3_000, 'the window ends now unless told')
  t.end()
})

void t.test('a window counts the seconds after the one it starts in, up to the one it ends in', (t) => {
  const { clock, book } = setup()
  book.accept(report('r1', { api: { v1: { ok: 0 } } }), 'router-a', 1)
  // 1 request in second S0+1, 2 in S0+2, 4 in S0+3 (two reports in one second share a slot)
  let total = 0
  for (const [at, add] of [
    [1_000, 1],
    [2_000, 1],
    [2_999, 1],
    [3_000, 4]
  ] as const) {
    clock.nowMs = T0 + at
    total += add
    book.accept(report('r1', { api: { v1: { ok: total } } }), 'router-a', 1)
  }
  const cases: [number, number, number][] = [
    [T0, T0 + 1_000, 1],
    [T0, T0 + 999, 0],
    [T0 - 5_000, T0 + 3_000, 7],
    [T0 + 999, T0 + 2_000, 3],
    [T0 + 1_000, T0 + 3_000, 6],
    [T0 + 1_500, T0 + 2_999, 2],
    [T0 + 2_000, T0 + 3_999, 4],
    [T0 + 3_000, T0 + 9_000, 0]
  ]
  for (const [from, to, requests] of cases) t.equal(book.signals('api', from, to).versions.v1?.requests, requests, `(${from - T0}, ${to - T0}]`)
  t.end()
})

void t.test("a router's first report is its baseline: a registry restart or a silent router's return adds no old traffic", (t) => {
  const { clock, book } = setup({ routerTimeoutMs: 5_000 })
  // The registry just started; the router has been routing for an hour.
  book.accept(report('r1', { api: { v1: { ok: 100_000, errors: 300 } } }, { startedAt: T0 - 3_600_000 }), 'router-a', 1)
  clock.advance(1_000)
  book.accept(report('r1', { api: { v1: { ok: 100_010, errors: 300 } } }, { startedAt: T0 - 3_600_000 }), 'router-a', 1)
  t.equal(book.signals('api', T0 - 60_000, clock.now()).versions.v1?.requests, 10)
  // Silent for longer than the timeout: dropped; when it comes back its totals are a baseline again.
  clock.advance(6_000)
  t.same(book.list(1), [])
  book.accept(report('r1', { api: { v1: { ok: 100_500, errors: 300 } } }, { startedAt: T0 - 3_600_000 }), 'router-a', 1)
  clock.advance(1_000)
  book.accept(report('r1', { api: { v1: { ok: 100_501, errors: 301 } } }, { startedAt: T0 - 3_600_000 }), 'router-a', 1)
  const v1 = book.signals('api', T0 - 60_000, clock.now()).versions.v1
  t.same([v1?.requests, v1?.errors], [12, 1])
  t.equal(book.list(1)[0]?.firstReportAt, T0 + 7_000, 'listed again from its return')
  t.end()
})

void t.test('a restarted router (new startedAt, or totals going down) counts its new totals in full', (t) => {
  const { clock, book } = setup()
  book.accept(report('r1', { api: { v1: { ok: 100 } } }, { startedAt: T0 - 10_000 }), 'router-a', 1)
  clock.advance(1_000)
  const view = book.accept(report('r1', { api: { v1: { ok: 5 } } }, { startedAt: T0 + 500 }), 'router-a', 1)
  t.same([view.startedAt, view.firstReportAt, view.lastReportAt], [T0 + 500, T0 + 1_000, T0 + 1_000], 'a restart is a new router')
  clock.advance(1_000)
  book.accept(report('r1', { api: { v1: { ok: 8 } } }, { startedAt: T0 + 500 }), 'router-a', 1)
  clock.advance(1_000)
  // Same startedAt, but a total went down: the counters were reset.
  book.accept(report('r1', { api: { v1: { ok: 2 } } }, { startedAt: T0 + 500 }), 'router-a', 1)
  const cases: [number, number, number][] = [
    [T0, T0 + 1_000, 5],
    [T0 + 1_000, T0 + 2_000, 3],
    [T0 + 2_000, T0 + 3_000, 2],
    [T0, T0 + 3_000, 10]
  ]
  for (const [from, to, requests] of cases) t.equal(book.signals('api', from, to).versions.v1?.requests, requests, `(${from - T0}, ${to - T0}]`)
  t.end()
})

void t.test('a router belongs to its first reporter while it is live', (t) => {
  const { clock, book } = setup({ routerTimeoutMs: 5_000 })
  book.accept(report('r1', { api: { v1: { ok: 10 } } }), 'router-a', 1)
  clock.advance(1_000)
  book.accept(report('r1', { api: { v1: { ok: 20 } } }), 'router-a', 1)
  clock.advance(1_000)
  t.throws(() => book.accept(report('r1', { api: { v1: { ok: 1_000 } } }, { appliedRevision: 9 }), 'router-b', 9), {
    code: 'FORBIDDEN',
    message: 'router r1 reports as router-a; a token may only report for its own routers'
  })
  t.same(
    book.list(9).map((router) => [router.reporter, router.appliedRevision, router.lastReportAt]),
    [['router-a', 1, T0 + 1_000]],
    'nothing recorded'
  )
  t.equal(book.signals('api', T0, clock.now()).versions.v1?.requests, 10)
  // The owner's silence frees the id: at exactly the timeout it is still live.
  clock.advance(4_000)
  t.equal(
    codeOf(() => book.accept(report('r1', {}), 'router-b', 1)),
    'FORBIDDEN'
  )
  clock.advance(1)
  t.equal(book.accept(report('r1', {}), 'router-b', 1).reporter, 'router-b')
  t.end()
})

void t.test('routers silent for longer than the timeout leave the list and every wait', (t) => {
  const { clock, book } = setup({ routerTimeoutMs: 5_000 })
  book.accept(report('old', {}, { appliedRevision: 1 }), 'router-a', 2)
  clock.advance(3_000)
  book.accept(report('new', {}, { appliedRevision: 2 }), 'router-a', 2)
  t.same(
    book.behind(2).map((router) => router.id),
    ['old']
  )
  clock.advance(2_000)
  t.same(
    book.list(2).map((router) => router.id),
    ['old', 'new'],
    'silent for exactly the timeout: still listed'
  )
  clock.advance(1)
  t.same(book.behind(2), [], 'the lagging router is gone, nothing waits for it')
  clock.advance(3_000)
  book.accept(report('third', {}), 'router-a', 2)
  clock.advance(2_001)
  t.same(
    book.list(2).map((router) => router.id),
    ['third'],
    'only the live one is left'
  )
  t.end()
})

void t.test('windows longer than maxWindowMs are refused; older deltas are forgotten', (t) => {
  const { clock, book } = setup({ maxWindowMs: 10_000 })
  book.accept(report('r1', { api: { v1: { ok: 0 }, v2: { ok: 0 } }, jobs: { v1: { routed: 0 } } }), 'router-a', 1)
  clock.advance(1_000)
  book.accept(report('r1', { api: { v1: { ok: 1 }, v2: { ok: 1 } }, jobs: { v1: { routed: 1 } } }), 'router-a', 1)
  t.same(book.servicesWithTraffic(), ['api', 'jobs'], 'services with traffic, sorted')
  clock.advance(9_000)
  t.throws(() => book.signals('api', T0, T0 + 10_001), { code: 'VALIDATION_FAILED', message: 'windows longer than 10 s are not kept' })
  const requests = (service: string, from: number): [string, number][] =>
    Object.entries(book.signals(service, from).versions).map(([version, figures]) => [version, figures.requests + figures.messagesRouted])
  t.same(
    requests('api', T0),
    [
      ['v1', 1],
      ['v2', 1]
    ],
    'a window may reach back exactly maxWindowMs'
  )
  clock.advance(1_000)
  book.accept(report('r1', { api: { v1: { ok: 3 }, v2: { ok: 1 }, v3: { ok: 5 } }, jobs: { v1: { routed: 1 } } }), 'router-a', 1)
  // The second S0+1 is now older than the longest window: v2 and the whole jobs service go.
  t.same(requests('api', T0 + 1_000), [
    ['v1', 2],
    ['v3', 5]
  ])
  t.same(requests('jobs', T0 + 1_000), [])
  t.same(book.servicesWithTraffic(), ['api'], 'a service whose traffic was forgotten is no longer listed')
  t.equal(S0 + 11, Math.floor(clock.now() / 1000))
  t.end()
})
