import t from 'tap'
import { SwitchyardError } from '../../../core/errors.js'
import {
  ACTIVE_PHASES,
  commandRollout,
  decisionWindow,
  isActive,
  restartWindow,
  startRollout,
  tickRollout,
  weightsChangedElsewhere,
  type RolloutCommand,
  type RolloutState,
  type Transition
} from '../../../core/rollout/rollout-machine.js'
import { resolveRolloutSpec, type RolloutRequest, type RolloutSpec } from '../../../core/rollout/rollout-spec.js'
import type { VersionFigures } from '../../../core/signals/figures.js'
import { FakeClock } from '../../helpers/fake-clock.js'
import { figuresFor, type Traffic } from '../../helpers/signal-fixtures.js'

/** A command that changes the rollout (commandRollout answers undefined when it is in effect already). */
function command(state: RolloutState, name: RolloutCommand, actor: string, now: number): Transition {
  const transition = commandRollout(state, name, actor, now)
  if (!transition) throw new Error(`${name} changed nothing`)
  return transition
}

const T0 = Date.UTC(2026, 0, 1)

function specOf(request: Partial<RolloutRequest> = {}): RolloutSpec {
  return resolveRolloutSpec({ canary: 'v1.4', ...request }, { weights: { 'v1.3': 100 }, upVersions: new Set(['v1.3', 'v1.4']), registeredVersions: new Set(['v1.3', 'v1.4']) })
}

type Signals = { canary: VersionFigures; baseline: VersionFigures }
const signals = (canary: Traffic, baseline: Traffic): Signals => ({ canary: figuresFor(canary), baseline: figuresFor(baseline) })
const GOOD = signals({ ok: 1_000 }, { ok: 9_000 })
const BAD = signals({ ok: 190, errors: 10 }, { ok: 3_800 })
const THIN = signals({ ok: 10 }, { ok: 990 })

/**
 * Plays the registry around the pure machine: it writes the weights a transition asks
 * for (a new revision each time) and, while the rollout is active, makes every router
 * apply that revision before the window starts.
 */
class Run {
  readonly clock = new FakeClock(T0)
  state: RolloutState
  revision = 10
  readonly events: string[] = []
  readonly writes: Record<string, number>[] = []

  constructor(spec: RolloutSpec) {
    const started = startRollout('api', spec, 'alice', this.clock.now())
    this.state = started.state
    this.take(started)
  }

  take(transition: Transition | undefined): Transition | undefined {
    if (!transition) return undefined
    this.events.push(transition.event)
    this.state = transition.state
    if (transition.weights) {
      this.writes.push(transition.weights)
      this.revision++
      if (isActive(transition.state)) this.state = { ...transition.state, awaitingRevision: this.revision }
    }
    return transition
  }

  tick(routersBehind: number, input?: Signals): Transition | undefined {
    return this.take(tickRollout(this.state, { now: this.clock.now(), routersBehind, signals: input }))
  }

  /** routers catch up, one interval passes, the step is judged */
  step(input: Signals): Transition | undefined {
    if (this.state.awaitingRevision !== null) this.tick(0)
    this.clock.advance(this.state.spec.intervalSeconds * 1000)
    return this.tick(0, input)
  }
}

void t.test('startRollout asks for the first step and waits for nothing yet', (t) => {
  const spec = specOf()
  const started = startRollout('api', spec, 'alice', T0)
  t.strictSame(started, {
    state: {
      service: 'api',
      spec,
      phase: 'progressing',
      reason: 'started by alice: step 1 of 5, v1.4 at 1%',
      stepIndex: 0,
      canaryWeight: 1,
      failures: 0,
      awaitingRevision: null,
      windowStartedAt: null,
      stepStartedAt: T0,
      startedAt: T0,
      startedBy: 'alice',
      updatedAt: T0,
      history: [],
      lastCheck: null
    },
    weights: { 'v1.3': 99, 'v1.4': 1 },
    event: 'started'
  })
  t.equal(isActive(started.state), true)
  t.same([...ACTIVE_PHASES], ['progressing', 'paused'])
  t.equal(tickRollout(started.state, { now: T0 + 3_600_000, routersBehind: 0, signals: GOOD }), undefined, 'no window until the weights are written and applied')
  t.end()
})

void t.test('a good canary walks every step to promoted, each transition asking for its weights', (t) => {
  const run = new Run(specOf())
  const phases: [number, number, number | undefined][] = []
  for (let i = 0; i < 5; i++) {
    t.equal(run.tick(2), undefined, `step ${i + 1}: routers behind, the window does not start`)
    t.equal(run.state.windowStartedAt, null)
    run.clock.advance(1_000)
    t.equal(run.tick(0)?.event, 'window-started')
    t.same([run.state.awaitingRevision, run.state.windowStartedAt], [null, run.clock.now()])
    run.clock.advance(59_999)
    t.equal(run.tick(0, GOOD), undefined, 'one interval is not over yet')
    run.clock.advance(1)
    t.equal(run.tick(0), undefined, 'no signals, no decision')
    const transition = run.tick(0, GOOD)
    phases.push([run.state.stepIndex, run.state.canaryWeight, transition?.weights?.['v1.4']])
  }
  t.same(run.writes, [
    { 'v1.3': 99, 'v1.4': 1 },
    { 'v1.3': 95, 'v1.4': 5 },
    { 'v1.3': 75, 'v1.4': 25 },
    { 'v1.3': 50, 'v1.4': 50 },
    { 'v1.3': 0, 'v1.4': 100 }
  ])
  t.same(phases, [
    [1, 5, 5],
    [2, 25, 25],
    [3, 50, 50],
    [4, 100, 100],
    [4, 100, undefined]
  ])
  t.same(run.events, [
    'started',
    'window-started',
    'step-passed',
    'window-started',
    'step-passed',
    'window-started',
    'step-passed',
    'window-started',
    'step-passed',
    'window-started',
    'promoted'
  ])
  const { state } = run
  t.same([state.phase, state.canaryWeight, state.failures, state.awaitingRevision, state.windowStartedAt, state.lastCheck], ['promoted', 100, 0, null, null, null])
  t.equal(state.reason, 'promoted: step 5 (100%) passed, all checks passed on 1000 requests')
  t.equal(isActive(state), false)
  t.same(
    state.history.map((record) => [record.stepIndex, record.weight, record.verdict, record.windowStartedAt - T0, record.at - T0]),
    [
      [0, 1, 'passed', 1_000, 61_000],
      [1, 5, 'passed', 62_000, 122_000],
      [2, 25, 'passed', 123_000, 183_000],
      [3, 50, 'passed', 184_000, 244_000],
      [4, 100, 'passed', 245_000, 305_000]
    ]
  )
  t.strictSame(state.history[0], {
    stepIndex: 0,
    weight: 1,
    verdict: 'passed',
    reason: 'all checks passed on 1000 requests',
    canary: { requests: 1000, errorRatePercent: 0, p99Ms: 0.995, messagesRouted: 0, rejectRatePercent: 0 },
    baseline: { requests: 9000, errorRatePercent: 0, p99Ms: 0.995, messagesRouted: 0, rejectRatePercent: 0 },
    windowStartedAt: T0 + 1_000,
    at: T0 + 61_000
  })
  t.end()
})

void t.test('a step passing names the next one; a last step below 100 promotes to 100', (t) => {
  const run = new Run(specOf({ steps: [0.29, 33.33] }))
  const passed = run.step(GOOD)
  t.same(passed?.weights, { 'v1.3': 66.67, 'v1.4': 33.33 })
  t.equal(passed?.state.reason, 'step 1 (0.29%) passed (all checks passed on 1000 requests); step 2 of 2: v1.4 at 33.33%')
  t.same([passed?.state.stepStartedAt, passed?.state.windowStartedAt, passed?.state.awaitingRevision], [T0 + 60_000, null, null])
  const promoted = run.step(GOOD)
  t.same(promoted?.weights, { 'v1.3': 0, 'v1.4': 100 })
  t.same([promoted?.event, promoted?.state.phase, promoted?.state.canaryWeight], ['promoted', 'promoted', 100])
  t.same(run.writes, [
    { 'v1.3': 99.71, 'v1.4': 0.29 },
    { 'v1.3': 66.67, 'v1.4': 33.33 },
    { 'v1.3': 0, 'v1.4': 100 }
  ])
  t.end()
})

void t.test('failureLimit failed steps roll back: canary weight 0, baseline 100', (t) => {
  const run = new Run(specOf())
  const first = run.step(BAD)
  t.equal(first?.event, 'step-failed')
  t.equal(first?.weights, undefined, 'a failed step keeps its weights')
  t.same([run.state.phase, run.state.stepIndex, run.state.canaryWeight, run.state.failures], ['progressing', 0, 1, 1])
  t.same([run.state.windowStartedAt, run.state.stepStartedAt, run.state.awaitingRevision], [T0 + 60_000, T0 + 60_000, null], 'the same step again on a fresh window')
  t.equal(run.state.reason, 'step 1 (1%) failed (1 of 2): error rate 5% > 1% (10 of 200)')
  const second = run.step(BAD)
  t.strictSame(second?.weights, { 'v1.3': 100, 'v1.4': 0 })
  t.same([second?.event, run.state.phase, run.state.canaryWeight, run.state.failures, run.state.awaitingRevision], ['rolled-back', 'rolled-back', 0, 2, null])
  t.equal(run.state.reason, 'rolled back after 2 failed step(s): step 1 (1%): error rate 5% > 1% (10 of 200)')
  t.same(
    run.state.history.map((record) => [record.stepIndex, record.verdict, record.reason, record.windowStartedAt - T0, record.at - T0]),
    [
      [0, 'failed', 'error rate 5% > 1% (10 of 200)', 0, 60_000],
      [0, 'failed', 'error rate 5% > 1% (10 of 200)', 60_000, 120_000]
    ]
  )
  t.equal(run.tick(0, GOOD), undefined, 'a finished rollout does not tick')
  t.end()
})

void t.test('failures count over the whole rollout; failureLimit 1 rolls back on the first', (t) => {
  const run = new Run(specOf())
  run.step(BAD)
  run.step(GOOD)
  t.same([run.state.stepIndex, run.state.failures], [1, 1])
  run.step(signals({ ok: 9_910, errors: 90 }, { ok: 10_000 }))
  t.equal(run.state.phase, 'rolled-back')
  t.equal(run.state.reason, 'rolled back after 2 failed step(s): step 2 (5%): error rate 0.9% vs baseline 0%: worse by more than 0.25 pp at 99% confidence')
  t.same(run.writes, [
    { 'v1.3': 99, 'v1.4': 1 },
    { 'v1.3': 95, 'v1.4': 5 },
    { 'v1.3': 100, 'v1.4': 0 }
  ])
  const strict = new Run(specOf({ failureLimit: 1 }))
  t.equal(strict.step(BAD)?.event, 'rolled-back')
  t.equal(strict.state.reason, 'rolled back after 1 failed step(s): step 1 (1%): error rate 5% > 1% (10 of 200)')
  t.end()
})

void t.test('too little data extends the step, looked at again each interval, then pauses insufficient-traffic at the deadline', (t) => {
  const run = new Run(specOf())
  run.clock.advance(1_000)
  run.tick(0)
  const windowStart = run.state.windowStartedAt
  t.equal(windowStart, T0 + 1_000)
  run.clock.advance(60_000)
  const extended = run.tick(0, THIN)
  t.equal(extended?.event, 'step-extended')
  t.equal(extended?.weights, undefined)
  t.strictSame(run.state.lastCheck, { at: T0 + 61_000, reason: 'insufficient data: the canary had 10 requests and 0 messages, 50 needed' })
  t.same([run.state.phase, run.state.windowStartedAt, run.state.history.length, run.state.failures], ['progressing', windowStart, 0, 0], 'not judged: the window grows')
  run.clock.advance(30_000)
  t.equal(run.tick(0, THIN), undefined, 'half an interval later: not looked at')
  t.same(decisionWindow(run.state, run.clock.now()), undefined)
  run.clock.advance(30_000)
  t.same(decisionWindow(run.state, run.clock.now()), { from: T0 + 1_000, to: T0 + 121_000 }, 'one interval after the last look: the whole grown window')
  // looks at 121 s, 181 s, ... 541 s are extended; the look at 601 s is past the 600 s deadline
  for (let at = 121_000; at <= 541_000; at += 60_000) {
    run.clock.nowMs = T0 + at
    t.equal(run.tick(0, THIN)?.event, 'step-extended', `look at ${at / 1000} s`)
  }
  run.clock.nowMs = T0 + 601_000
  const paused = run.tick(0, THIN)
  t.equal(paused?.event, 'paused')
  t.equal(paused?.weights, undefined)
  t.same([run.state.phase, run.state.windowStartedAt, run.state.awaitingRevision, run.state.canaryWeight], ['paused', null, null, 1])
  t.equal(run.state.reason, 'insufficient-traffic: step 1 (1%) insufficient data: the canary had 10 requests and 0 messages, 50 needed within 600 s')
  t.ok(run.state.reason.startsWith('insufficient-traffic'))
  t.same(
    run.state.history.map((record) => [record.verdict, record.windowStartedAt - T0, record.at - T0, record.canary.requests]),
    [['inconclusive', 1_000, 601_000, 10]]
  )
  t.equal(run.tick(0, GOOD), undefined, 'a paused rollout does not tick')
  t.end()
})

void t.test('the progress deadline is reached at exactly progressDeadlineSeconds after the step started', (t) => {
  const state: RolloutState = { ...new Run(specOf()).state, awaitingRevision: null, windowStartedAt: T0 }
  const cases: [string, number, number, string | undefined][] = [
    ['last look 60 s before the deadline, a look at the deadline pauses', T0 + 540_000, T0 + 600_000, 'paused'],
    ['a look 1 ms before the deadline extends', T0 + 539_999, T0 + 599_999, 'step-extended'],
    ['no look before one interval after the last, even past the deadline', T0 + 540_001, T0 + 600_000, undefined]
  ]
  for (const [name, lastLook, now, event] of cases) {
    t.equal(tickRollout({ ...state, lastCheck: { at: lastLook, reason: 'thin' } }, { now, routersBehind: 0, signals: THIN })?.event, event, name)
  }
  t.end()
})

void t.test('an extended step is judged on its grown window once enough data came in', (t) => {
  const run = new Run(specOf())
  run.step(THIN)
  t.equal(run.state.lastCheck?.at, T0 + 60_000)
  run.clock.advance(60_000)
  const passed = run.tick(0, signals({ ok: 60 }, { ok: 5_940 }))
  t.equal(passed?.event, 'step-passed')
  t.same(
    run.state.history.map((record) => [record.verdict, record.windowStartedAt - T0, record.at - T0, record.canary.requests]),
    [['passed', 0, 120_000, 60]]
  )
  t.equal(run.state.lastCheck, null)
  t.end()
})

void t.test('routers behind: the window does not start; past the deadline the rollout pauses routers-lagging', (t) => {
  const run = new Run(specOf())
  t.equal(run.state.awaitingRevision, 11)
  for (const at of [0, 60_000, 599_999]) {
    run.clock.nowMs = T0 + at
    t.equal(run.tick(1, GOOD), undefined, `${at / 1000} s`)
  }
  t.same(decisionWindow(run.state, T0 + 3_600_000), undefined, 'no window to judge')
  run.clock.nowMs = T0 + 600_000
  const paused = run.tick(2)
  t.same([paused?.event, paused?.weights, run.state.phase, run.state.awaitingRevision], ['paused', undefined, 'paused', null])
  t.equal(run.state.reason, 'routers-lagging: 2 router(s) did not apply revision 11 within 600 s')
  const late = new Run(specOf())
  late.clock.nowMs = T0 + 700_000
  t.equal(late.tick(0)?.event, 'window-started', 'routers that caught up start the window even late')
  t.end()
})

void t.test('a manual weight change pauses a progressing rollout with the actor in the reason', (t) => {
  const run = new Run(specOf())
  run.step(GOOD)
  run.clock.advance(5_000)
  const paused = weightsChangedElsewhere(run.state, 'bob', run.clock.now())
  t.same(
    [paused?.event, paused?.weights, paused?.state.phase, paused?.state.reason, paused?.state.updatedAt],
    ['paused', undefined, 'paused', 'manual-change: weights changed by bob', T0 + 65_000]
  )
  t.same([paused?.state.stepIndex, paused?.state.canaryWeight, paused?.state.awaitingRevision, paused?.state.windowStartedAt], [1, 5, null, null])
  if (!paused) return t.end()
  t.equal(weightsChangedElsewhere(paused.state, 'carol', T0 + 70_000), undefined, 'already paused: nothing to do')
  t.equal(decisionWindow(paused.state, T0 + 3_600_000), undefined)
  t.end()
})

void t.test('commands: pause, resume, abort, promote', (t) => {
  const run = new Run(specOf())
  run.step(GOOD)
  run.tick(0)
  run.clock.advance(10_000)
  const now = run.clock.now()
  const progressing = run.state
  t.same([progressing.stepIndex, progressing.canaryWeight, progressing.windowStartedAt], [1, 5, T0 + 60_000])

  const paused = command(progressing, 'pause', 'alice', now)
  t.same([paused.event, paused.weights, paused.state.phase, paused.state.reason, paused.state.windowStartedAt], ['paused', undefined, 'paused', 'paused by alice', null])

  t.equal(commandRollout(paused.state, 'pause', 'dave', now + 500), undefined, 'pausing a paused rollout changes nothing: the first reason stays')
  t.equal(commandRollout(progressing, 'resume', 'dave', now + 500), undefined, "resuming a progressing rollout changes nothing: its step's clock runs on")

  const resumed = command(paused.state, 'resume', 'bob', now + 1_000)
  t.strictSame(resumed.weights, { 'v1.3': 95, 'v1.4': 5 }, 'the step writes its own weights again')
  t.same(
    [resumed.event, resumed.state.phase, resumed.state.reason, resumed.state.stepStartedAt, resumed.state.windowStartedAt, resumed.state.awaitingRevision, resumed.state.lastCheck],
    ['resumed', 'progressing', 'resumed by bob at step 2 (5%)', now + 1_000, null, null, null]
  )

  const cases: [RolloutCommand, RolloutState, string, string, number, Record<string, number>][] = [
    ['abort', progressing, 'aborted', 'aborted by carol', 0, { 'v1.3': 100, 'v1.4': 0 }],
    ['abort', paused.state, 'aborted', 'aborted by carol', 0, { 'v1.3': 100, 'v1.4': 0 }],
    ['promote', progressing, 'promoted', 'promoted by carol', 100, { 'v1.3': 0, 'v1.4': 100 }],
    ['promote', paused.state, 'promoted', 'promoted by carol', 100, { 'v1.3': 0, 'v1.4': 100 }]
  ]
  for (const [name, state, phase, reason, canaryWeight, weights] of cases) {
    const done = command(state, name, 'carol', now)
    t.same(
      [done.event, done.state.phase, done.state.reason, done.state.canaryWeight, done.weights, done.state.awaitingRevision, done.state.windowStartedAt, done.state.updatedAt],
      [phase, phase, reason, canaryWeight, weights, null, null, now],
      `${name} a ${state.phase} rollout`
    )
    t.equal(isActive(done.state), false)
  }
  t.end()
})

void t.test('commands on a finished rollout: ROLLOUT_NOT_ACTIVE', (t) => {
  const progressing = new Run(specOf()).state
  const finished: RolloutState[] = [command(progressing, 'abort', 'alice', T0).state, command(progressing, 'promote', 'alice', T0).state, { ...progressing, phase: 'rolled-back' }]
  for (const state of finished) {
    for (const command of ['pause', 'resume', 'abort', 'promote'] as const) {
      t.throws(
        () => commandRollout(state, command, 'bob', T0),
        new SwitchyardError('ROLLOUT_NOT_ACTIVE', `the rollout of api is ${state.phase}; start a new one`),
        `${command} when ${state.phase}`
      )
    }
    t.equal(tickRollout(state, { now: T0 + 3_600_000, routersBehind: 0, signals: GOOD }), undefined)
    t.equal(weightsChangedElsewhere(state, 'bob', T0), undefined)
    t.equal(restartWindow(state, 99, T0), state)
  }
  t.end()
})

void t.test('restartWindow: a progressing step waits for the routers again and collects a fresh window', (t) => {
  const run = new Run(specOf())
  run.step(GOOD)
  run.tick(0)
  run.clock.advance(30_000)
  const restarted = restartWindow(run.state, 42, T0 + 95_000)
  t.same(
    [restarted.phase, restarted.stepIndex, restarted.awaitingRevision, restarted.windowStartedAt, restarted.stepStartedAt, restarted.updatedAt],
    ['progressing', 1, 42, null, T0 + 95_000, T0 + 95_000]
  )
  t.equal(restarted.reason, 'step 1 (1%) passed (all checks passed on 1000 requests); step 2 of 5: v1.4 at 5% (registry restarted: step 2 window restarted)')
  t.equal(tickRollout(restarted, { now: T0 + 96_000, routersBehind: 1 }), undefined)
  t.same(tickRollout(restarted, { now: T0 + 97_000, routersBehind: 0 })?.state.windowStartedAt, T0 + 97_000)
  const paused = command(run.state, 'pause', 'alice', T0 + 95_000).state
  t.equal(restartWindow(paused, 42, T0 + 96_000), paused, 'a paused rollout stays as it was')
  t.end()
})

void t.test('decisionWindow: only a progressing rollout whose interval is over, one interval after its last look', (t) => {
  const base = { ...new Run(specOf({ intervalSeconds: 30 })).state, awaitingRevision: null, windowStartedAt: T0 }
  const cases: [string, RolloutState, number, { from: number; to: number } | undefined][] = [
    ['before the interval', base, T0 + 29_999, undefined],
    ['at the interval', base, T0 + 30_000, { from: T0, to: T0 + 30_000 }],
    ['after it', base, T0 + 45_000, { from: T0, to: T0 + 45_000 }],
    ['no window yet', { ...base, windowStartedAt: null }, T0 + 45_000, undefined],
    ['paused', { ...base, phase: 'paused' }, T0 + 45_000, undefined],
    ['looked at 29.999 s ago', { ...base, lastCheck: { at: T0 + 30_000, reason: 'thin' } }, T0 + 59_999, undefined],
    ['looked at one interval ago', { ...base, lastCheck: { at: T0 + 30_000, reason: 'thin' } }, T0 + 60_000, { from: T0, to: T0 + 60_000 }]
  ]
  for (const [name, state, now, expected] of cases) t.same(decisionWindow(state, now), expected, name)
  t.end()
})

void t.test('a queue consumer rejecting messages is rolled back; a good one promoted', (t) => {
  const bad = new Run(specOf())
  const rejecting = signals({ routed: 1_000, rejected: 300 }, { routed: 9_000 })
  t.equal(bad.step(rejecting)?.state.reason, 'step 1 (1%) failed (1 of 2): reject rate 30% > 1% (300 of 1000 messages)')
  t.equal(bad.step(rejecting)?.event, 'rolled-back')
  t.same([bad.state.phase, bad.writes.at(-1)], ['rolled-back', { 'v1.3': 100, 'v1.4': 0 }])
  t.equal(bad.state.reason, 'rolled back after 2 failed step(s): step 1 (1%): reject rate 30% > 1% (300 of 1000 messages)')

  const good = new Run(specOf({ steps: [10, 100] }))
  const fine = signals({ routed: 1_000, rejected: 4 }, { routed: 9_000, rejected: 30 })
  good.step(fine)
  good.step(fine)
  t.same([good.state.phase, good.state.reason], ['promoted', 'promoted: step 2 (100%) passed, all checks passed on 1000 messages'])
  t.same(good.state.history[0]?.canary, { requests: 0, errorRatePercent: 0, p99Ms: null, messagesRouted: 1_000, rejectRatePercent: 0.4 })
  t.end()
})

void t.test('a service with HTTP and queue traffic: both kinds are judged in the same rollout', (t) => {
  const run = new Run(specOf())
  run.step(signals({ ok: 500, routed: 500 }, { ok: 5_000, routed: 5_000 }))
  t.equal(run.state.history[0]?.reason, 'all checks passed on 500 requests and 500 messages')
  run.step(signals({ ok: 500, routed: 500, rejected: 100 }, { ok: 5_000, routed: 5_000 }))
  run.step(signals({ ok: 450, errors: 50, routed: 500 }, { ok: 5_000, routed: 5_000 }))
  t.same(
    run.state.history.map((record) => [record.stepIndex, record.verdict, record.reason]),
    [
      [0, 'passed', 'all checks passed on 500 requests and 500 messages'],
      [1, 'failed', 'reject rate 20% > 1% (100 of 500 messages)'],
      [1, 'failed', 'error rate 10% > 1% (50 of 500)']
    ]
  )
  t.same([run.state.phase, run.state.canaryWeight, run.writes.at(-1)], ['rolled-back', 0, { 'v1.3': 100, 'v1.4': 0 }])
  t.end()
})
