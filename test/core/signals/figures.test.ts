import t from 'tap'
import type { VersionCounters } from '../../../core/signals/counters.js'
import { figuresOf, type VersionFigures } from '../../../core/signals/figures.js'
import { sparseCounters } from '../../helpers/signal-fixtures.js'

/** the HTTP half of the figures of a window without requests */
const NO_REQUESTS = {
  requests: 0,
  rps: 0,
  errors: 0,
  errorRatePercent: 0,
  p50Ms: undefined,
  p99Ms: undefined,
  statusClasses: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 }
}

void t.test('figuresOf: rates per second, error and reject rates in percent, p50/p99 from the histogram', (t) => {
  const cases: [string, VersionCounters, number, Omit<VersionFigures, 'latency'>][] = [
    [
      'HTTP traffic with 4% errors and a slow tail',
      sparseCounters([1, 90, 2, 3, 4], { 1: 96, 17: 4 }),
      10_000,
      {
        requests: 100,
        rps: 10,
        errors: 4,
        errorRatePercent: 4,
        p50Ms: 0.76,
        p99Ms: 687.5,
        statusClasses: { '1xx': 1, '2xx': 90, '3xx': 2, '4xx': 3, '5xx': 4 },
        messagesRouted: 0,
        mps: 0,
        messagesRejected: 0,
        rejectRatePercent: 0
      }
    ],
    [
      'messages only: no requests gives a 0% error rate and no latency',
      sparseCounters([0, 0, 0, 0, 0], {}, 30, 3),
      60_000,
      {
        ...NO_REQUESTS,
        messagesRouted: 30,
        mps: 0.5,
        messagesRejected: 3,
        rejectRatePercent: 10
      }
    ],
    [
      'more rejections than messages routed in the window (older messages) caps at 100%',
      sparseCounters([0, 0, 0, 0, 0], {}, 2, 5),
      60_000,
      {
        ...NO_REQUESTS,
        messagesRouted: 2,
        mps: 0.033,
        messagesRejected: 5,
        rejectRatePercent: 100
      }
    ],
    [
      'rates round to 3 decimals, percentages to 4',
      sparseCounters([0, 2, 0, 0, 1], { 2: 3 }, 3, 1),
      7_000,
      {
        requests: 3,
        rps: 0.429,
        errors: 1,
        errorRatePercent: 33.3333,
        p50Ms: 1.5,
        p99Ms: 1.99,
        statusClasses: { '1xx': 0, '2xx': 2, '3xx': 0, '4xx': 0, '5xx': 1 },
        messagesRouted: 3,
        mps: 0.429,
        messagesRejected: 1,
        rejectRatePercent: 33.3333
      }
    ],
    [
      'a window of 0 ms counts as 1 ms',
      sparseCounters([0, 5, 0, 0, 0], { 0: 5 }, 1, 0),
      0,
      {
        requests: 5,
        rps: 5000,
        errors: 0,
        errorRatePercent: 0,
        p50Ms: 0.25,
        p99Ms: 0.495,
        statusClasses: { '1xx': 0, '2xx': 5, '3xx': 0, '4xx': 0, '5xx': 0 },
        messagesRouted: 1,
        mps: 1000,
        messagesRejected: 0,
        rejectRatePercent: 0
      }
    ]
  ]
  for (const [name, input, windowMs, expected] of cases) {
    const figures = figuresOf(input, windowMs)
    t.strictSame(figures, { ...expected, latency: input.latency }, name)
    t.not(figures.latency, input.latency, `${name}: the histogram is a copy`)
  }
  t.end()
})
