import t from 'tap'
import { defaultOutlierSettings, newOutlierState, recordFailure, recordSuccess, type OutlierSettings, type OutlierState } from '../../core/outlier-detection.js'
import { FakeClock } from '../helpers/fake-clock.js'

const settings: OutlierSettings = { consecutiveFailures: 3, baseEjectionMs: 1_000, maxEjectionMs: 3_000, maxEjectionPercent: 50 }

/** A step: move the clock to `at` (ms after the start), record outcomes, expect the results and the state after. */
type Step = [at: number, outcomes: string, results: (boolean | undefined)[], after: Partial<OutlierState>]

void t.test('defaults and a fresh state', (t) => {
  t.same(defaultOutlierSettings, { consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 50 })
  t.same(newOutlierState(), { consecutiveFailures: 0, ejectedUntil: 0, ejections: 0, lastEjectionEnd: 0 })
  t.end()
})

void t.test('consecutive failures eject for base x 2^(n-1), capped; long healthy spells forgive one ejection each', (t) => {
  const clock = new FakeClock(0)
  const state = newOutlierState()
  // Four endpoints of one version, the others healthy: up to two may be out at once.
  const siblings = [state, newOutlierState(), newOutlierState(), newOutlierState()]
  // 'F' a failure (result: ejected or not), 'S' a success (no result)
  const steps: Step[] = [
    [0, 'FF', [false, false], { consecutiveFailures: 2, ejections: 0 }],
    [0, 'F', [true], { consecutiveFailures: 0, ejections: 1, ejectedUntil: 1_000, lastEjectionEnd: 1_000 }],
    [500, 'FFF', [false, false, false], { consecutiveFailures: 3, ejectedUntil: 1_000 }], // already out: no second ejection
    [1_000, 'F', [true], { consecutiveFailures: 0, ejections: 2, ejectedUntil: 3_000, lastEjectionEnd: 3_000 }], // back at 1000: 2 x base
    [3_000, 'S', [undefined], { ejections: 2, lastEjectionEnd: 3_000 }], // healthy for 0 ms: nothing forgiven
    [3_000, 'FFF', [false, false, true], { ejections: 3, ejectedUntil: 6_000, lastEjectionEnd: 6_000 }], // 4 x base, capped at 3000
    [6_000, 'FS', [false, undefined], { consecutiveFailures: 0, ejections: 3 }], // a success ends the streak
    [8_000, 'S', [undefined], { ejections: 3, lastEjectionEnd: 6_000 }], // healthy 2000 ms: not more than 2 x base
    [8_001, 'S', [undefined], { ejections: 2, lastEjectionEnd: 8_001 }], // 2001 ms: one forgiven
    [10_001, 'S', [undefined], { ejections: 2 }],
    [10_002, 'S', [undefined], { ejections: 1, lastEjectionEnd: 10_002 }],
    [12_003, 'S', [undefined], { ejections: 0, lastEjectionEnd: 12_003 }],
    [99_999, 'S', [undefined], { ejections: 0, lastEjectionEnd: 12_003 }], // nothing left to forgive
    [99_999, 'FFF', [false, false, true], { ejections: 1, ejectedUntil: 100_999 }] // back to base
  ]
  for (const [at, outcomes, results, after] of steps) {
    clock.nowMs = at
    const got = [...outcomes].map((outcome) => (outcome === 'F' ? recordFailure(state, siblings, clock.now(), settings) : recordSuccess(state, clock.now(), settings)))
    t.same(got, results, `at ${at}: ${outcomes}`)
    t.match(state, after, `at ${at}: state after ${outcomes}`)
  }
  t.end()
})

void t.test('never more than maxEjectionPercent of a version out at once', (t) => {
  const now = 0
  const cases: [string, number, number, number, boolean][] = [
    // [what, endpoints, already ejected, max %, ejected now]
    ['4 endpoints, 1 out, 50%: a second may go', 4, 1, 50, true],
    ['4 endpoints, 2 out, 50%: a third may not', 4, 2, 50, false],
    ['a lone endpoint at 50%: never', 1, 0, 50, false],
    ['a lone endpoint at 100%: yes', 1, 0, 100, true],
    ['3 endpoints at 50%: one (floor of 1.5)', 3, 0, 50, true],
    ['3 endpoints, 1 out, 50%: no second', 3, 1, 50, false],
    ['10 endpoints, 0%: never', 10, 0, 0, false]
  ]
  for (const [what, count, out, maxEjectionPercent, expected] of cases) {
    const siblings = Array.from({ length: count }, (_, i) => ({ ...newOutlierState(), ejectedUntil: i > 0 && i <= out ? now + 1 : 0 }))
    const state = siblings[0] as OutlierState
    const limits = { ...settings, maxEjectionPercent }
    recordFailure(state, siblings, now, limits)
    recordFailure(state, siblings, now, limits)
    t.equal(recordFailure(state, siblings, now, limits), expected, what)
    t.equal(state.consecutiveFailures, expected ? 0 : 3, `${what}: the streak is kept when the limit holds it back`)
  }
  t.end()
})
