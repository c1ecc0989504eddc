import { SwitchyardError } from '../errors.js'
import type { VersionFigures } from '../signals/figures.js'
import { judgeCanary, type JudgedFigures, type VerdictResult } from './canary-judge.js'
import type { RolloutSpec } from './rollout-spec.js'

export type RolloutPhase = 'progressing' | 'paused' | 'promoted' | 'rolled-back' | 'aborted'
export const ACTIVE_PHASES: ReadonlySet<RolloutPhase> = new Set(['progressing', 'paused'])

/** One decision on one step, kept for as long as the rollout is. */
export interface StepRecord {
  stepIndex: number
  weight: number
  verdict: VerdictResult
  reason: string
  canary: JudgedFigures
  baseline: JudgedFigures
  /** when the window judged began and ended (ms since the epoch) */
  windowStartedAt: number
  at: number
}

export interface RolloutState {
  service: string
  spec: RolloutSpec
  phase: RolloutPhase
  /** why the rollout is where it is, in words */
  reason: string
  stepIndex: number
  /** the canary's weight as last written by the rollout */
  canaryWeight: number
  failures: number
  /** the revision every live router must apply before the step's window starts */
  awaitingRevision: number | null
  /** the start of the window being collected, once every router applied the step */
  windowStartedAt: number | null
  stepStartedAt: number
  startedAt: number
  startedBy: string
  updatedAt: number
  history: StepRecord[]
  /** the latest look at a step that had too little data (the step was extended) */
  lastCheck: { at: number; reason: string } | null
}

/** A state change and what it needs done: weights to write (through the normal write path). */
export interface Transition {
  state: RolloutState
  /** percent per version; the registry writes them and sets awaitingRevision to their revision */
  weights?: Record<string, number>
  /** short name of what happened, for the audit log and the notify hook */
  event: string
}

export type RolloutCommand = 'pause' | 'resume' | 'abort' | 'promote'

function split(spec: RolloutSpec, canaryWeight: number): Record<string, number> {
  return { [spec.baseline]: Math.round((100 - canaryWeight) * 100) / 100, [spec.canary]: canaryWeight }
}

export function isActive(state: RolloutState): boolean {
  return ACTIVE_PHASES.has(state.phase)
}

export function startRollout(service: string, spec: RolloutSpec, actor: string, now: number): Transition {
  const weight = spec.steps[0] as number
  const state: RolloutState = {
    service,
    spec,
    phase: 'progressing',
    reason: `started by ${actor}: step 1 of ${spec.steps.length}, ${spec.canary} at ${weight}%`,
    stepIndex: 0,
    canaryWeight: weight,
    failures: 0,
    awaitingRevision: null,
    windowStartedAt: null,
    stepStartedAt: now,
    startedAt: now,
    startedBy: actor,
    updatedAt: now,
    history: [],
    lastCheck: null
  }
  return { state, weights: split(spec, weight), event: 'started' }
}

/**
 * When the current step is next judged (ms since the epoch): one interval after its window
 * started, and an extended step one interval after its last look, not on every tick (each
 * look is a journaled change, and a few more requests a second would not settle it sooner).
 * Null while nothing is being collected.
 */
export function nextDecisionAt(state: RolloutState): number | null {
  if (state.phase !== 'progressing' || state.windowStartedAt === null) return null
  const interval = state.spec.intervalSeconds * 1000
  return Math.max(state.windowStartedAt, state.lastCheck?.at ?? state.windowStartedAt) + interval
}

/** The window to judge now, if the current step's interval is over. */
export function decisionWindow(state: RolloutState, now: number): { from: number; to: number } | undefined {
  const due = nextDecisionAt(state)
  // a due time means a window is being collected (windowStartedAt is set)
  return due !== null && now >= due ? { from: state.windowStartedAt as number, to: now } : undefined
}

export interface TickInput {
  now: number
  /** how many live routers have not applied awaitingRevision yet */
  routersBehind: number
  /** the canary's and baseline's figures over decisionWindow(), when there is one */
  signals?: { canary: VersionFigures; baseline: VersionFigures } | undefined
}

/**
 * Moves a progressing rollout on: waits for every router to apply the step's weights,
 * collects one interval, then judges. Passing moves to the next step (or promotes after
 * the last); failing counts towards failureLimit, then rolls back; too little data
 * extends the step until the progress deadline, then pauses. Undefined: nothing changed.
 */
export function tickRollout(state: RolloutState, input: TickInput): Transition | undefined {
  if (state.phase !== 'progressing') return undefined
  const { now } = input
  const deadline = state.stepStartedAt + state.spec.progressDeadlineSeconds * 1000
  if (state.awaitingRevision !== null) {
    if (input.routersBehind === 0) return { state: { ...state, awaitingRevision: null, windowStartedAt: now, updatedAt: now }, event: 'window-started' }
    if (now >= deadline)
      return pause(state, now, `routers-lagging: ${input.routersBehind} router(s) did not apply revision ${state.awaitingRevision} within ${state.spec.progressDeadlineSeconds} s`)
    return undefined
  }
  const window = decisionWindow(state, now)
  if (!window || !input.signals) return undefined
  const verdict = judgeCanary(input.signals.canary, input.signals.baseline, state.spec.analysis)
  const record: StepRecord = {
    stepIndex: state.stepIndex,
    weight: state.canaryWeight,
    verdict: verdict.result,
    reason: verdict.reason,
    canary: verdict.canary,
    baseline: verdict.baseline,
    windowStartedAt: window.from,
    at: now
  }
  const stepName = `step ${state.stepIndex + 1} (${state.canaryWeight}%)`
  if (verdict.result === 'inconclusive') {
    if (now >= deadline) {
      return pause({ ...state, history: [...state.history, record] }, now, `insufficient-traffic: ${stepName} ${verdict.reason} within ${state.spec.progressDeadlineSeconds} s`)
    }
    // Extended, not passed: the window keeps growing until there is enough to judge.
    return { state: { ...state, lastCheck: { at: now, reason: verdict.reason }, updatedAt: now }, event: 'step-extended' }
  }
  const history = [...state.history, record]
  if (verdict.result === 'failed') {
    const failures = state.failures + 1
    if (failures >= state.spec.failureLimit) {
      return {
        state: finished({ ...state, history, failures }, 'rolled-back', now, `rolled back after ${failures} failed step(s): ${stepName}: ${verdict.reason}`, 0),
        weights: split(state.spec, 0),
        event: 'rolled-back'
      }
    }
    // The same step again, on a fresh window.
    return {
      state: {
        ...state,
        history,
        failures,
        windowStartedAt: now,
        stepStartedAt: now,
        lastCheck: null,
        updatedAt: now,
        reason: `${stepName} failed (${failures} of ${state.spec.failureLimit}): ${verdict.reason}`
      },
      event: 'step-failed'
    }
  }
  const next = state.stepIndex + 1
  if (next >= state.spec.steps.length) {
    const promoted = finished({ ...state, history }, 'promoted', now, `promoted: ${stepName} passed, ${verdict.reason}`, 100)
    return state.canaryWeight === 100 ? { state: promoted, event: 'promoted' } : { state: promoted, weights: split(state.spec, 100), event: 'promoted' }
  }
  const weight = state.spec.steps[next] as number
  return {
    state: {
      ...state,
      history,
      stepIndex: next,
      canaryWeight: weight,
      awaitingRevision: null,
      windowStartedAt: null,
      stepStartedAt: now,
      lastCheck: null,
      updatedAt: now,
      reason: `${stepName} passed (${verdict.reason}); step ${next + 1} of ${state.spec.steps.length}: ${state.spec.canary} at ${weight}%`
    },
    weights: split(state.spec, weight),
    event: 'step-passed'
  }
}

/**
 * An operator's command. Throws ROLLOUT_NOT_ACTIVE on a finished rollout. Undefined: the
 * command is in effect already (pause on a paused rollout keeps the first reason, which
 * says why it stopped; resume on a progressing one leaves its step's clock running), as
 * Argo Rollouts' pause and resume are idempotent.
 */
export function commandRollout(state: RolloutState, command: RolloutCommand, actor: string, now: number): Transition | undefined {
  if (!isActive(state)) throw new SwitchyardError('ROLLOUT_NOT_ACTIVE', `the rollout of ${state.service} is ${state.phase}; start a new one`)
  switch (command) {
    case 'pause':
      return state.phase === 'paused' ? undefined : pause(state, now, `paused by ${actor}`)
    case 'resume': {
      if (state.phase === 'progressing') return undefined
      // The step starts over with its own weights, whatever was set while paused.
      const weight = state.canaryWeight
      return {
        state: {
          ...state,
          phase: 'progressing',
          awaitingRevision: null,
          windowStartedAt: null,
          stepStartedAt: now,
          lastCheck: null,
          updatedAt: now,
          reason: `resumed by ${actor} at step ${state.stepIndex + 1} (${weight}%)`
        },
        weights: split(state.spec, weight),
        event: 'resumed'
      }
    }
    case 'abort':
      return { state: finished(state, 'aborted', now, `aborted by ${actor}`, 0), weights: split(state.spec, 0), event: 'aborted' }
    case 'promote':
      return { state: finished(state, 'promoted', now, `promoted by ${actor}`, 100), weights: split(state.spec, 100), event: 'promoted' }
  }
}

/** Someone else changed the service's weights: the rollout stops driving them. */
export function weightsChangedElsewhere(state: RolloutState, actor: string, now: number): Transition | undefined {
  if (state.phase !== 'progressing') return undefined
  return pause(state, now, `manual-change: weights changed by ${actor}`)
}

/**
 * After a registry restart the signals of the window in progress are gone (routers
 * report to memory): the current step starts its window again once every router that
 * reports has applied the registry's current revision.
 */
export function restartWindow(state: RolloutState, revision: number, now: number): RolloutState {
  if (state.phase !== 'progressing') return state
  return {
    ...state,
    awaitingRevision: revision,
    windowStartedAt: null,
    stepStartedAt: now,
    updatedAt: now,
    reason: `${state.reason} (registry restarted: step ${state.stepIndex + 1} window restarted)`
  }
}

function pause(state: RolloutState, now: number, reason: string): Transition {
  return { state: { ...state, phase: 'paused', awaitingRevision: null, windowStartedAt: null, updatedAt: now, reason }, event: 'paused' }
}

function finished(state: RolloutState, phase: RolloutPhase, now: number, reason: string, canaryWeight: number): RolloutState {
  return { ...state, phase, canaryWeight, awaitingRevision: null, windowStartedAt: null, lastCheck: null, updatedAt: now, reason }
}
