import t from 'tap'
import { judgeCanary, type VerdictResult } from '../../../core/rollout/canary-judge.js'
import { DEFAULT_ANALYSIS, type RolloutAnalysis } from '../../../core/rollout/rollout-spec.js'
import type { VersionFigures } from '../../../core/signals/figures.js'
import { figuresFor } from '../../helpers/signal-fixtures.js'

const judge = (canary: VersionFigures, baseline: VersionFigures, analysis: Partial<RolloutAnalysis> = {}): [VerdictResult, string] => {
  const verdict = judgeCanary(canary, baseline, { ...DEFAULT_ANALYSIS, ...analysis })
  return [verdict.result, verdict.reason]
}

const SIGNIFICANT = (kind: string, canary: string, baseline: string): string => `${kind} rate ${canary} vs baseline ${baseline}: worse by more than 0.25 pp at 99% confidence`

void t.test('a verdict keeps the figures it was made on', (t) => {
  const verdict = judgeCanary(figuresFor({ ok: 190, errors: 10, latencyMs: 5 }), figuresFor({ ok: 3800, routed: 40, rejected: 1 }), DEFAULT_ANALYSIS)
  t.strictSame(verdict, {
    result: 'failed',
    reason: 'error rate 5% > 1% (10 of 200)',
    canary: { requests: 200, errorRatePercent: 5, p99Ms: 4.98, messagesRouted: 0, rejectRatePercent: 0 },
    baseline: { requests: 3800, errorRatePercent: 0, p99Ms: 0.995, messagesRouted: 40, rejectRatePercent: 2.5 }
  })
  t.strictSame(judgeCanary(figuresFor({}), figuresFor({}), DEFAULT_ANALYSIS).canary, {
    requests: 0,
    errorRatePercent: 0,
    p99Ms: null,
    messagesRouted: 0,
    rejectRatePercent: 0
  })
  t.end()
})

void t.test('too little data is inconclusive, never passed', (t) => {
  const cases: [string, VersionFigures, VersionFigures, Partial<RolloutAnalysis>, [VerdictResult, string]][] = [
    ['nothing at all', figuresFor({}), figuresFor({ ok: 5000 }), {}, ['inconclusive', 'insufficient data: the canary had 0 requests and 0 messages, 50 needed']],
    [
      'one request short, even all good',
      figuresFor({ ok: 49 }),
      figuresFor({ ok: 5000 }),
      {},
      ['inconclusive', 'insufficient data: the canary had 49 requests and 0 messages, 50 needed']
    ],
    [
      'all failing, but too few',
      figuresFor({ errors: 49, routed: 49, rejected: 49 }),
      figuresFor({ ok: 5000 }),
      {},
      ['inconclusive', 'insufficient data: the canary had 49 requests and 49 messages, 50 needed']
    ],
    [
      'a higher minRequests',
      figuresFor({ ok: 150, routed: 10 }),
      figuresFor({ ok: 5000 }),
      { minRequests: 200 },
      ['inconclusive', 'insufficient data: the canary had 150 requests and 10 messages, 200 needed']
    ],
    ['exactly minRequests is judged', figuresFor({ ok: 50 }), figuresFor({ ok: 5000 }), {}, ['passed', 'all checks passed on 50 requests']]
  ]
  for (const [name, canary, baseline, analysis, expected] of cases) t.same(judge(canary, baseline, analysis), expected, name)
  t.end()
})

void t.test('HTTP errors: an absolute limit, and the same window compared with the baseline', (t) => {
  const cases: [string, VersionFigures, VersionFigures, Partial<RolloutAnalysis>, [VerdictResult, string]][] = [
    [
      '5% (10 of 200) beside 0% (0 of 3800) fails on the absolute limit',
      figuresFor({ ok: 190, errors: 10 }),
      figuresFor({ ok: 3800 }),
      {},
      ['failed', 'error rate 5% > 1% (10 of 200)']
    ],
    [
      '... and on the comparison when the limit is loose',
      figuresFor({ ok: 190, errors: 10 }),
      figuresFor({ ok: 3800 }),
      { maxErrorRatePercent: 10 },
      ['failed', SIGNIFICANT('error', '5%', '0%')]
    ],
    [
      '0.5% beside 0.4% over 50,000 each passes',
      figuresFor({ ok: 49_750, errors: 250 }),
      figuresFor({ ok: 49_800, errors: 200 }),
      {},
      ['passed', 'all checks passed on 50000 requests']
    ],
    ['0.5% beside 0.4% at small counts passes', figuresFor({ ok: 199, errors: 1 }), figuresFor({ ok: 249, errors: 1 }), {}, ['passed', 'all checks passed on 200 requests']],
    [
      '0.9% beside 0.0% over 10,000 each fails although under the 1% limit',
      figuresFor({ ok: 9_910, errors: 90 }),
      figuresFor({ ok: 10_000 }),
      {},
      ['failed', SIGNIFICANT('error', '0.9%', '0%')]
    ],
    [
      '0.9% with no baseline traffic: only the absolute limit applies',
      figuresFor({ ok: 9_910, errors: 90 }),
      figuresFor({ routed: 10 }),
      {},
      ['passed', 'all checks passed on 10000 requests']
    ],
    ['exactly at the limit passes the absolute check', figuresFor({ ok: 99, errors: 1 }), figuresFor({ ok: 99, errors: 1 }), {}, ['passed', 'all checks passed on 100 requests']],
    [
      'a tolerance of 0 pp is stricter',
      figuresFor({ ok: 9_960, errors: 40 }),
      figuresFor({ ok: 10_000 }),
      { errorRateTolerancePercent: 0 },
      ['failed', 'error rate 0.4% vs baseline 0%: worse by more than 0 pp at 99% confidence']
    ],
    ['... the default 0.25 pp lets it through', figuresFor({ ok: 9_960, errors: 40 }), figuresFor({ ok: 10_000 }), {}, ['passed', 'all checks passed on 10000 requests']]
  ]
  for (const [name, canary, baseline, analysis, expected] of cases) t.same(judge(canary, baseline, analysis), expected, name)
  t.end()
})

void t.test('HTTP latency: an absolute p99 limit, and a ratio to the baseline above a floor', (t) => {
  const cases: [string, VersionFigures, VersionFigures, Partial<RolloutAnalysis>, [VerdictResult, string]][] = [
    ['p99 above maxP99Ms', figuresFor({ ok: 100, latencyMs: 600 }), figuresFor({ ok: 100, latencyMs: 600 }), {}, ['failed', 'p99 747.5 ms > 500 ms']],
    [
      'p99 exactly at maxP99Ms',
      figuresFor({ ok: 100, latencyMs: 600 }),
      figuresFor({ ok: 100, latencyMs: 600 }),
      { maxP99Ms: 747.5 },
      ['passed', 'all checks passed on 100 requests']
    ],
    [
      'twice the baseline p99',
      figuresFor({ ok: 100, latencyMs: 200 }),
      figuresFor({ ok: 100, latencyMs: 100 }),
      {},
      ['failed', "p99 199.5 ms is 2x the baseline's 99.75 ms (limit 1.5x)"]
    ],
    [
      '1.5x exactly is allowed',
      figuresFor({ ok: 100, latencyMs: 15 }),
      figuresFor({ ok: 100, latencyMs: 10 }),
      { latencyRatioFloorMs: 1, maxLatencyRatio: 14.95 / 9.975 },
      ['passed', 'all checks passed on 100 requests']
    ],
    ['10x, but both under the 10 ms floor', figuresFor({ ok: 100, latencyMs: 8 }), figuresFor({ ok: 100, latencyMs: 1 }), {}, ['passed', 'all checks passed on 100 requests']],
    [
      'above the floor, the baseline counts as the floor',
      figuresFor({ ok: 100, latencyMs: 20 }),
      figuresFor({ ok: 100, latencyMs: 1 }),
      {},
      ['failed', "p99 19.95 ms is 1.99x the baseline's 0.995 ms (limit 1.5x)"]
    ],
    [
      'a baseline with too few requests is not compared',
      figuresFor({ ok: 100, latencyMs: 200 }),
      figuresFor({ ok: 49, latencyMs: 1 }),
      {},
      ['passed', 'all checks passed on 100 requests']
    ],
    [
      'a baseline without a p99 (another source) is not compared',
      figuresFor({ ok: 100, latencyMs: 200 }),
      { ...figuresFor({ ok: 100 }), p99Ms: undefined },
      {},
      ['passed', 'all checks passed on 100 requests']
    ],
    [
      'a canary without a p99 (another source) counts as 0 ms',
      { ...figuresFor({ ok: 100, latencyMs: 1000 }), p99Ms: undefined },
      figuresFor({ ok: 100 }),
      {},
      ['passed', 'all checks passed on 100 requests']
    ],
    [
      'every failed rule is named',
      figuresFor({ ok: 90, errors: 10, latencyMs: 600 }),
      figuresFor({ ok: 100 }),
      {},
      ['failed', 'error rate 10% > 1% (10 of 100); p99 747.5 ms > 500 ms']
    ],
    [
      'errors and latency ratio together',
      figuresFor({ ok: 9_910, errors: 90, latencyMs: 200 }),
      figuresFor({ ok: 10_000, latencyMs: 100 }),
      {},
      ['failed', `${SIGNIFICANT('error', '0.9%', '0%')}; p99 199.5 ms is 2x the baseline's 99.75 ms (limit 1.5x)`]
    ]
  ]
  for (const [name, canary, baseline, analysis, expected] of cases) t.same(judge(canary, baseline, analysis), expected, name)
  t.end()
})

void t.test('queue consumers: the reject rate from messagesRouted and messagesRejected', (t) => {
  const cases: [string, VersionFigures, VersionFigures, Partial<RolloutAnalysis>, [VerdictResult, string]][] = [
    ['5% rejected', figuresFor({ routed: 200, rejected: 10 }), figuresFor({ routed: 3800 }), {}, ['failed', 'reject rate 5% > 1% (10 of 200 messages)']],
    [
      '30% rejected (the walkthrough worker)',
      figuresFor({ routed: 1000, rejected: 300 }),
      figuresFor({ routed: 1000 }),
      {},
      ['failed', 'reject rate 30% > 1% (300 of 1000 messages)']
    ],
    [
      'more rejections than messages counts them all as rejected',
      figuresFor({ routed: 100, rejected: 150 }),
      figuresFor({ routed: 100 }),
      {},
      ['failed', 'reject rate 100% > 1% (100 of 100 messages)']
    ],
    [
      '0.9% beside 0.0% over 10,000 each fails although under the 1% limit',
      figuresFor({ routed: 10_000, rejected: 90 }),
      figuresFor({ routed: 10_000 }),
      {},
      ['failed', SIGNIFICANT('reject', '0.9%', '0%')]
    ],
    ['exactly at the limit', figuresFor({ routed: 1_000, rejected: 10 }), figuresFor({ routed: 1_000, rejected: 10 }), {}, ['passed', 'all checks passed on 1000 messages']],
    ['0.5% beside 0.4% passes', figuresFor({ routed: 10_000, rejected: 50 }), figuresFor({ routed: 10_000, rejected: 40 }), {}, ['passed', 'all checks passed on 10000 messages']],
    [
      'a baseline rejecting more than it was sent in the window',
      figuresFor({ routed: 1_000, rejected: 5 }),
      figuresFor({ routed: 100, rejected: 300 }),
      {},
      ['passed', 'all checks passed on 1000 messages']
    ],
    ['no baseline messages: only the absolute limit', figuresFor({ routed: 10_000, rejected: 90 }), figuresFor({ ok: 100 }), {}, ['passed', 'all checks passed on 10000 messages']],
    [
      'a looser maxRejectRatePercent',
      figuresFor({ routed: 200, rejected: 10 }),
      figuresFor({ routed: 200, rejected: 8 }),
      { maxRejectRatePercent: 10 },
      ['passed', 'all checks passed on 200 messages']
    ],
    [
      'HTTP errors do not count against a queue-only canary',
      figuresFor({ errors: 49, routed: 100 }),
      figuresFor({ routed: 100 }),
      {},
      ['passed', 'all checks passed on 100 messages']
    ]
  ]
  for (const [name, canary, baseline, analysis, expected] of cases) t.same(judge(canary, baseline, analysis), expected, name)
  t.end()
})

void t.test('a service with both kinds: each kind with enough data is judged', (t) => {
  const cases: [string, VersionFigures, VersionFigures, [VerdictResult, string]][] = [
    ['both good', figuresFor({ ok: 1_000, routed: 1_000 }), figuresFor({ ok: 1_000, routed: 1_000 }), ['passed', 'all checks passed on 1000 requests and 1000 messages']],
    [
      'both bad',
      figuresFor({ ok: 950, errors: 50, routed: 1_000, rejected: 50 }),
      figuresFor({ ok: 1_000, routed: 1_000 }),
      ['failed', 'error rate 5% > 1% (50 of 1000); reject rate 5% > 1% (50 of 1000 messages)']
    ],
    [
      'good requests, bad messages',
      figuresFor({ ok: 1_000, routed: 1_000, rejected: 300 }),
      figuresFor({ ok: 1_000, routed: 1_000 }),
      ['failed', 'reject rate 30% > 1% (300 of 1000 messages)']
    ],
    ['bad requests, good messages', figuresFor({ ok: 900, errors: 100, routed: 1_000 }), figuresFor({ ok: 1_000, routed: 1_000 }), ['failed', 'error rate 10% > 1% (100 of 1000)']],
    [
      'too few messages to judge them: the requests decide',
      figuresFor({ ok: 1_000, routed: 10, rejected: 10 }),
      figuresFor({ ok: 1_000, routed: 1_000 }),
      ['passed', 'all checks passed on 1000 requests']
    ],
    [
      'too few requests to judge them: the messages decide',
      figuresFor({ errors: 10, routed: 1_000 }),
      figuresFor({ ok: 1_000, routed: 1_000 }),
      ['passed', 'all checks passed on 1000 messages']
    ]
  ]
  for (const [name, canary, baseline, expected] of cases) t.same(judge(canary, baseline), expected, name)
  t.end()
})
