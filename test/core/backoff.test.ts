import t from 'tap'
import { failoverDelay, fullJitterDelay } from '../../core/backoff.js'

const policy = { initialMs: 100, maxMs: 2_000 }
const fixed = (value: number) => () => value

void t.test('fullJitterDelay: uniform below min(max, initial * 2^attempt), floored', (t) => {
  const cases: [attempt: number, random: number, delay: number][] = [
    [0, 0, 0],
    [0, 0.5, 50],
    [0, 0.999, 99],
    [1, 0.5, 100],
    [2, 0.5, 200],
    [3, 0.25, 200],
    [4, 0.5, 800],
    [5, 0.5, 1_000], // 3200 capped at 2000
    [5, 0.999, 1_998],
    [40, 0.5, 1_000],
    [2_000, 0.5, 1_000], // 2^2000 is Infinity: still the cap
    [-3, 0.5, 50] // a negative attempt counts as the first
  ]
  for (const [attempt, random, delay] of cases) t.equal(fullJitterDelay(attempt, policy, fixed(random)), delay, `attempt ${attempt}, random ${random}`)
  t.end()
})

void t.test('failoverDelay: no wait while a round has an endpoint left, then full jitter per round', (t) => {
  const cases: [failures: number, endpoints: number, delay: number][] = [
    // one endpoint: every failure ends a round, plain exponential backoff
    [1, 1, 50],
    [2, 1, 100],
    [3, 1, 200],
    // two endpoints: the second is tried at once, then the round's backoff
    [1, 2, 0],
    [2, 2, 50],
    [3, 2, 0],
    [4, 2, 100],
    [6, 2, 200],
    // three
    [1, 3, 0],
    [2, 3, 0],
    [3, 3, 50],
    [5, 3, 0],
    [6, 3, 100],
    [30, 3, 1_000]
  ]
  for (const [failures, endpoints, delay] of cases) t.equal(failoverDelay(failures, endpoints, policy, fixed(0.5)), delay, `${failures} failures over ${endpoints}`)
  t.end()
})

void t.test('failoverDelay draws randomness only when it waits', (t) => {
  let draws = 0
  const random = () => {
    draws++
    return 0.5
  }
  failoverDelay(1, 2, policy, random)
  t.equal(draws, 0)
  failoverDelay(2, 2, policy, random)
  t.equal(draws, 1)
  t.end()
})
