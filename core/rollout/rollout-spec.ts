import { SwitchyardError } from '../errors.js'
import { compareVersions } from '../names.js'
import { percentToBasisPoints } from '../weights.js'

/** What an operator asks for when starting a rollout, with every default filled in. */
export interface RolloutAnalysis {
  /** a canary above this HTTP 5xx rate fails the step */
  maxErrorRatePercent: number
  /** a canary whose p99 is above this fails the step */
  maxP99Ms: number
  /** a canary whose p99 is more than this times the baseline's fails the step */
  maxLatencyRatio: number
  /** p99s below this are not compared by ratio: 2 ms vs 1 ms is noise, not a regression */
  latencyRatioFloorMs: number
  /** a queue canary above this reject rate fails the step */
  maxRejectRatePercent: number
  /**
   * A canary is also failed when its error (or reject) rate is worse than the baseline's
   * by more than this many percentage points with 99% confidence, even under the absolute
   * limit. 0.25 pp: 0.5% beside 0.4% passes, 0.9% beside 0.0% over thousands fails.
   */
  errorRateTolerancePercent: number
  /** requests (or messages) the canary must have had in a step before it is judged */
  minRequests: number
}

export interface RolloutSpec {
  canary: string
  baseline: string
  /** canary weights in percent, ascending, the last one usually 100 */
  steps: number[]
  intervalSeconds: number
  analysis: RolloutAnalysis
  /** failed steps before the rollout rolls back */
  failureLimit: number
  /** a step without enough data for this long pauses the rollout (insufficient-traffic) */
  progressDeadlineSeconds: number
  /** a URL that gets a JSON POST on every state change */
  notify?: string | undefined
}

export const DEFAULT_STEPS: readonly number[] = [1, 5, 25, 50, 100]

export const DEFAULT_ANALYSIS: Readonly<RolloutAnalysis> = {
  maxErrorRatePercent: 1,
  maxP99Ms: 500,
  maxLatencyRatio: 1.5,
  latencyRatioFloorMs: 10,
  maxRejectRatePercent: 1,
  errorRateTolerancePercent: 0.25,
  minRequests: 50
}

export const DEFAULT_ROLLOUT = {
  intervalSeconds: 60,
  failureLimit: 2,
  progressDeadlineSeconds: 600
} as const

/** A start request as the API takes it: everything but the canary optional. */
export interface RolloutRequest {
  canary: string
  baseline?: string | undefined
  steps?: number[] | undefined
  intervalSeconds?: number | undefined
  analysis?: Partial<RolloutAnalysis> | undefined
  failureLimit?: number | undefined
  progressDeadlineSeconds?: number | undefined
  notify?: string | undefined
}

/** What the registry knows of the service when a rollout starts. */
export interface ServiceFacts {
  /** percent per known version (0 for versions with instances but no weight) */
  weights: Readonly<Record<string, number>>
  /** versions with at least one instance that is up */
  upVersions: ReadonlySet<string>
  /** versions with any registered instance */
  registeredVersions: ReadonlySet<string>
}

/**
 * Checks a start request against the service and fills in the defaults: the baseline is
 * the version holding the most weight; the canary must have an instance that is up; no
 * third version may hold weight (a rollout moves traffic between two versions only, so
 * it never silently takes a third version's share).
 */
export function resolveRolloutSpec(request: RolloutRequest, facts: ServiceFacts): RolloutSpec {
  const { canary } = request
  if (!facts.registeredVersions.has(canary) && facts.weights[canary] === undefined) {
    throw new SwitchyardError('VERSION_NOT_REGISTERED', `version ${canary} has no registered instance; known versions: ${known(facts)}`)
  }
  if (!facts.upVersions.has(canary)) throw new SwitchyardError('VERSION_NOT_UP', `version ${canary} has no instance that is up; start one before rolling it out`)
  const baseline = request.baseline ?? heaviestOther(facts.weights, canary)
  if (baseline === undefined) throw new SwitchyardError('NO_BASELINE', `no other version of the service holds weight; name a baseline (known versions: ${known(facts)})`)
  if (baseline === canary) throw new SwitchyardError('VALIDATION_FAILED', 'the baseline must be another version than the canary')
  if (!facts.registeredVersions.has(baseline) && facts.weights[baseline] === undefined) {
    throw new SwitchyardError('VERSION_NOT_REGISTERED', `baseline version ${baseline} is not known; known versions: ${known(facts)}`)
  }
  const others = Object.entries(facts.weights).filter(([version, weight]) => weight > 0 && version !== canary && version !== baseline)
  if (others.length > 0) {
    throw new SwitchyardError(
      'OTHER_VERSIONS_WEIGHTED',
      `${others.map(([version, weight]) => `${version} holds ${weight}%`).join(', ')}; a rollout moves traffic between ${baseline} and ${canary} only: set the others to 0 first`
    )
  }
  const steps = request.steps ?? [...DEFAULT_STEPS]
  if (steps.length === 0 || steps.length > 20) throw new SwitchyardError('VALIDATION_FAILED', 'steps must list 1 to 20 canary weights')
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i] as number
    // Same rule as weights: step * 100 of a 2-decimal literal is not always whole (0.29 * 100 = 28.999999999999996)
    if (!Number.isFinite(step) || step <= 0 || step > 100 || percentToBasisPoints(step) / 100 !== step) {
      throw new SwitchyardError('VALIDATION_FAILED', `step ${step} is not a weight above 0 and at most 100 with at most 2 decimals`)
    }
    if (i > 0 && step <= (steps[i - 1] as number)) throw new SwitchyardError('VALIDATION_FAILED', 'steps must ascend')
  }
  const analysis = { ...DEFAULT_ANALYSIS, ...definedOnly(request.analysis ?? {}) }
  const spec: RolloutSpec = {
    canary,
    baseline,
    steps,
    intervalSeconds: request.intervalSeconds ?? DEFAULT_ROLLOUT.intervalSeconds,
    analysis,
    failureLimit: request.failureLimit ?? DEFAULT_ROLLOUT.failureLimit,
    progressDeadlineSeconds: request.progressDeadlineSeconds ?? DEFAULT_ROLLOUT.progressDeadlineSeconds,
    ...(request.notify === undefined ? {} : { notify: request.notify })
  }
  checkNumbers(spec)
  return spec
}

const NUMBER_RULES = {
  count: ['a whole number from 1', (value: number) => Number.isInteger(value) && value >= 1],
  positive: ['a number above 0', (value: number) => value > 0],
  limit: ['a number from 0', (value: number) => value >= 0]
} as const

/** minRequests 0 would pass a step on no data at all; a NaN interval or limit would decide at random. */
function checkNumbers(spec: RolloutSpec): void {
  const { analysis } = spec
  const checks: [string, number, keyof typeof NUMBER_RULES][] = [
    ['intervalSeconds', spec.intervalSeconds, 'positive'],
    ['progressDeadlineSeconds', spec.progressDeadlineSeconds, 'positive'],
    ['failureLimit', spec.failureLimit, 'count'],
    ['analysis.minRequests', analysis.minRequests, 'count'],
    ['analysis.maxLatencyRatio', analysis.maxLatencyRatio, 'positive'],
    ['analysis.maxErrorRatePercent', analysis.maxErrorRatePercent, 'limit'],
    ['analysis.maxP99Ms', analysis.maxP99Ms, 'limit'],
    ['analysis.latencyRatioFloorMs', analysis.latencyRatioFloorMs, 'limit'],
    ['analysis.maxRejectRatePercent', analysis.maxRejectRatePercent, 'limit'],
    ['analysis.errorRateTolerancePercent', analysis.errorRateTolerancePercent, 'limit']
  ]
  for (const [name, value, rule] of checks) {
    const [words, holds] = NUMBER_RULES[rule]
    if (!Number.isFinite(value) || !holds(value))
      throw new SwitchyardError('VALIDATION_FAILED', `${name} must be ${words}, got ${typeof value === 'number' ? value : JSON.stringify(value)}`)
  }
}

function heaviestOther(weights: Readonly<Record<string, number>>, canary: string): string | undefined {
  let best: string | undefined
  let bestWeight = 0
  for (const [version, weight] of Object.entries(weights)) {
    if (version !== canary && weight > bestWeight) {
      best = version
      bestWeight = weight
    }
  }
  return best
}

function known(facts: ServiceFacts): string {
  const versions = new Set([...Object.keys(facts.weights), ...facts.registeredVersions])
  return versions.size === 0 ? 'none' : [...versions].sort(compareVersions).join(', ')
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>
}
