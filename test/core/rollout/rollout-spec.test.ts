import t from 'tap'
import { SwitchyardError } from '../../../core/errors.js'
import { DEFAULT_ANALYSIS, DEFAULT_ROLLOUT, DEFAULT_STEPS, resolveRolloutSpec, type RolloutRequest, type ServiceFacts } from '../../../core/rollout/rollout-spec.js'

function facts(weights: Record<string, number>, up: string[], registered: string[] = up): ServiceFacts {
  return { weights, upVersions: new Set(up), registeredVersions: new Set(registered) }
}

function errorOf(request: RolloutRequest, service: ServiceFacts): [string, string] | undefined {
  try {
    resolveRolloutSpec(request, service)
    return undefined
  } catch (error) {
    return error instanceof SwitchyardError ? [error.code, error.message] : ['not a SwitchyardError', String(error)]
  }
}

const STABLE = facts({ 'v1.3': 100 }, ['v1.3', 'v1.4'])

/** the defaults, plus the judge's own two (latency floor, error-rate tolerance) */
const ANALYSIS_DEFAULTS = {
  maxErrorRatePercent: 1,
  maxP99Ms: 500,
  maxLatencyRatio: 1.5,
  latencyRatioFloorMs: 10,
  maxRejectRatePercent: 1,
  errorRateTolerancePercent: 0.25,
  minRequests: 50
}

void t.test('the defaults: steps 1,5,25,50,100 every 60 s, baseline the heaviest other version', (t) => {
  t.same(DEFAULT_STEPS, [1, 5, 25, 50, 100])
  t.same(DEFAULT_ROLLOUT, { intervalSeconds: 60, failureLimit: 2, progressDeadlineSeconds: 600 })
  t.same(DEFAULT_ANALYSIS, ANALYSIS_DEFAULTS)
  const spec = resolveRolloutSpec({ canary: 'v1.4' }, STABLE)
  t.strictSame(spec, {
    canary: 'v1.4',
    baseline: 'v1.3',
    steps: [1, 5, 25, 50, 100],
    intervalSeconds: 60,
    analysis: ANALYSIS_DEFAULTS,
    failureLimit: 2,
    progressDeadlineSeconds: 600
  })
  t.not(spec.steps, DEFAULT_STEPS, 'the steps are a copy of the defaults')
  t.not(spec.analysis, DEFAULT_ANALYSIS, 'so is the analysis')
  t.end()
})

void t.test('the baseline is the version holding the most weight, the canary aside', (t) => {
  const cases: [string, ServiceFacts, string, string][] = [
    ['the only other version', facts({ v1: 100, v2: 0 }, ['v1', 'v2']), 'v2', 'v1'],
    ['a canary already holding some weight', facts({ v1: 90, v2: 10 }, ['v1', 'v2']), 'v2', 'v1'],
    ['a canary holding most of it', facts({ v1: 40, v2: 60 }, ['v1', 'v2']), 'v2', 'v1'],
    ['an older version at 0% is not the baseline', facts({ v0: 0, v1: 100, v2: 0 }, ['v0', 'v1', 'v2']), 'v2', 'v1'],
    ['a baseline with weight but no instance left', facts({ v1: 100, v2: 0 }, ['v2']), 'v2', 'v1']
  ]
  for (const [name, service, canary, baseline] of cases) {
    const spec = resolveRolloutSpec({ canary }, service)
    t.same([spec.canary, spec.baseline], [canary, baseline], name)
  }
  t.end()
})

void t.test('every field can be given; an undefined analysis field keeps its default', (t) => {
  const spec = resolveRolloutSpec(
    {
      canary: 'v2',
      baseline: 'v1',
      steps: [0.29, 1.1, 2.3, 33.33, 99.99],
      intervalSeconds: 0.5,
      analysis: { maxErrorRatePercent: 0, maxP99Ms: undefined, minRequests: 10, maxRejectRatePercent: 5, errorRateTolerancePercent: 0 },
      failureLimit: 1,
      progressDeadlineSeconds: 30,
      notify: 'http://127.0.0.1:9/hook'
    },
    facts({ v1: 0, v2: 0 }, ['v1', 'v2'])
  )
  t.strictSame(spec, {
    canary: 'v2',
    baseline: 'v1',
    steps: [0.29, 1.1, 2.3, 33.33, 99.99],
    intervalSeconds: 0.5,
    analysis: { maxErrorRatePercent: 0, maxP99Ms: 500, maxLatencyRatio: 1.5, latencyRatioFloorMs: 10, maxRejectRatePercent: 5, errorRateTolerancePercent: 0, minRequests: 10 },
    failureLimit: 1,
    progressDeadlineSeconds: 30,
    notify: 'http://127.0.0.1:9/hook'
  })
  t.end()
})

void t.test('refuses a rollout the service cannot take, with a code and what to do', (t) => {
  const cases: [string, RolloutRequest, ServiceFacts, [string, string]][] = [
    [
      'an unknown canary',
      { canary: 'v9' },
      facts({ 'v1.10': 100, 'v1.9': 0 }, ['v1.10'], ['v1.10', 'v1.9']),
      ['VERSION_NOT_REGISTERED', 'version v9 has no registered instance; known versions: v1.9, v1.10']
    ],
    ['a service with no version at all', { canary: 'v1' }, facts({}, []), ['VERSION_NOT_REGISTERED', 'version v1 has no registered instance; known versions: none']],
    [
      'a canary known by its weight only',
      { canary: 'v2' },
      facts({ v1: 100, v2: 0 }, ['v1']),
      ['VERSION_NOT_UP', 'version v2 has no instance that is up; start one before rolling it out']
    ],
    [
      'a canary whose instances are all down',
      { canary: 'v2' },
      facts({ v1: 100 }, ['v1'], ['v1', 'v2']),
      ['VERSION_NOT_UP', 'version v2 has no instance that is up; start one before rolling it out']
    ],
    [
      'a canary that holds all the weight',
      { canary: 'v2' },
      facts({ v1: 0, v2: 100 }, ['v1', 'v2']),
      ['NO_BASELINE', 'no other version of the service holds weight; name a baseline (known versions: v1, v2)']
    ],
    ['no weights yet', { canary: 'v2' }, facts({}, ['v2']), ['NO_BASELINE', 'no other version of the service holds weight; name a baseline (known versions: v2)']],
    [
      'the canary as its own baseline',
      { canary: 'v2', baseline: 'v2' },
      facts({ v1: 100 }, ['v1', 'v2']),
      ['VALIDATION_FAILED', 'the baseline must be another version than the canary']
    ],
    [
      'an unknown baseline',
      { canary: 'v2', baseline: 'v7' },
      facts({ v1: 100 }, ['v1', 'v2']),
      ['VERSION_NOT_REGISTERED', 'baseline version v7 is not known; known versions: v1, v2']
    ],
    [
      'a third version holding weight',
      { canary: 'v2' },
      facts({ v1: 50, v2: 0, v3: 30, v4: 20 }, ['v1', 'v2', 'v3', 'v4']),
      ['OTHER_VERSIONS_WEIGHTED', 'v3 holds 30%, v4 holds 20%; a rollout moves traffic between v1 and v2 only: set the others to 0 first']
    ],
    [
      'a named baseline beside the version holding the weight',
      { canary: 'v2', baseline: 'v0' },
      facts({ v0: 0, v1: 100 }, ['v0', 'v1', 'v2']),
      ['OTHER_VERSIONS_WEIGHTED', 'v1 holds 100%; a rollout moves traffic between v0 and v2 only: set the others to 0 first']
    ]
  ]
  for (const [name, request, service, expected] of cases) t.same(errorOf(request, service), expected, name)
  t.end()
})

void t.test('steps are 1 to 20 ascending weights above 0, at most 100, with at most 2 decimals', (t) => {
  const weight = (step: unknown): [string, string] => ['VALIDATION_FAILED', `step ${String(step)} is not a weight above 0 and at most 100 with at most 2 decimals`]
  const cases: [unknown[], [string, string] | undefined][] = [
    [[], ['VALIDATION_FAILED', 'steps must list 1 to 20 canary weights']],
    [Array.from({ length: 21 }, (_, i) => i + 1), ['VALIDATION_FAILED', 'steps must list 1 to 20 canary weights']],
    [Array.from({ length: 20 }, (_, i) => (i + 1) * 5), undefined],
    [[100], undefined],
    [[0.01, 50], undefined],
    [[0], weight(0)],
    [[-1, 50], weight(-1)],
    [[1, 100.01], weight(100.01)],
    [[Number.NaN], weight(Number.NaN)],
    [[1, Infinity], weight(Infinity)],
    [['5'], weight('5')],
    [[1.005], weight(1.005)],
    [[33.333], weight(33.333)],
    [
      [5, 5],
      ['VALIDATION_FAILED', 'steps must ascend']
    ],
    [
      [5, 25, 1],
      ['VALIDATION_FAILED', 'steps must ascend']
    ]
  ]
  for (const [steps, expected] of cases) t.same(errorOf({ canary: 'v1.4', steps: steps as number[] }, STABLE), expected, JSON.stringify(steps))
  t.end()
})

void t.test('durations, counts and limits must be numbers in range: minRequests 0 would pass on no data', (t) => {
  const cases: [Partial<RolloutRequest>, string | undefined][] = [
    [{ intervalSeconds: 0 }, 'intervalSeconds must be a number above 0, got 0'],
    [{ intervalSeconds: -60 }, 'intervalSeconds must be a number above 0, got -60'],
    [{ intervalSeconds: Number.NaN }, 'intervalSeconds must be a number above 0, got NaN'],
    [{ intervalSeconds: Infinity }, 'intervalSeconds must be a number above 0, got Infinity'],
    [{ intervalSeconds: '60' as unknown as number }, 'intervalSeconds must be a number above 0, got "60"'],
    [{ progressDeadlineSeconds: 0 }, 'progressDeadlineSeconds must be a number above 0, got 0'],
    [{ failureLimit: 0 }, 'failureLimit must be a whole number from 1, got 0'],
    [{ failureLimit: 1.5 }, 'failureLimit must be a whole number from 1, got 1.5'],
    [{ failureLimit: 1 }, undefined],
    [{ analysis: { minRequests: 0 } }, 'analysis.minRequests must be a whole number from 1, got 0'],
    [{ analysis: { minRequests: 2.5 } }, 'analysis.minRequests must be a whole number from 1, got 2.5'],
    [{ analysis: { minRequests: 1 } }, undefined],
    [{ analysis: { maxLatencyRatio: 0 } }, 'analysis.maxLatencyRatio must be a number above 0, got 0'],
    [{ analysis: { maxErrorRatePercent: -1 } }, 'analysis.maxErrorRatePercent must be a number from 0, got -1'],
    [{ analysis: { maxP99Ms: Number.NaN } }, 'analysis.maxP99Ms must be a number from 0, got NaN'],
    [{ analysis: { latencyRatioFloorMs: -0.5 } }, 'analysis.latencyRatioFloorMs must be a number from 0, got -0.5'],
    [{ analysis: { maxRejectRatePercent: -2 } }, 'analysis.maxRejectRatePercent must be a number from 0, got -2'],
    [{ analysis: { errorRateTolerancePercent: -0.25 } }, 'analysis.errorRateTolerancePercent must be a number from 0, got -0.25'],
    [{ analysis: { maxErrorRatePercent: 0, maxP99Ms: 0, latencyRatioFloorMs: 0, maxRejectRatePercent: 0, errorRateTolerancePercent: 0 } }, undefined]
  ]
  for (const [fields, message] of cases) {
    t.same(errorOf({ canary: 'v1.4', ...fields }, STABLE), message === undefined ? undefined : ['VALIDATION_FAILED', message], JSON.stringify(fields))
  }
  t.end()
})
