import t from 'tap'
import { defaultRetryBudget, RetryBudget } from '../../core/retry-budget.js'
import { FakeClock } from '../helpers/fake-clock.js'

/** Retries allowed in a row at one instant. */
function retriesAllowed(budget: RetryBudget, now: number): number {
  let allowed = 0
  while (budget.tryRetry(now)) allowed++
  return allowed
}

void t.test('the default budget: 20% of requests plus 5 retries a second over 10 seconds', (t) => {
  t.same(defaultRetryBudget, { ratio: 0.2, minPerSecond: 5, windowSeconds: 10 })
  t.equal(retriesAllowed(new RetryBudget(), 0), 50, 'a quiet service: the floor, 5/s x 10 s')

  const busy = new RetryBudget()
  for (let i = 0; i < 100; i++) busy.recordRequest(0)
  t.equal(retriesAllowed(busy, 0), 70, '100 requests add 20')

  const fractional = new RetryBudget()
  for (let i = 0; i < 7; i++) fractional.recordRequest(0)
  t.equal(retriesAllowed(fractional, 0), 52, '7 requests add 1.4: a retry is taken while fewer than 51.4 were')
  t.end()
})

void t.test('a sliding window of one-second slots (ratio 0.5, 1/s floor, 3 s window)', (t) => {
  const clock = new FakeClock(0)
  const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 1, windowSeconds: 3 })
  // [ms, actions ('R' a request, 'T' a retry), whether each retry was allowed]
  const steps: [number, string, boolean[]][] = [
    [0, 'TTTT', [true, true, true, false]], // the floor: 1/s x 3 s
    [0, 'RRTT', [true, false]], // two requests add one
    [2_999, 'T', [false]], // second 2: second 0 is still in the window
    [3_000, 'T', [true]], // second 3: second 0 slid out (its slot is reused)
    [3_000, 'TTT', [true, true, false]],
    [4_500, 'RRRRRRTTTT', [true, true, true, false]], // 6 requests add 3
    [6_999, 'T', [true]], // second 6: second 3 slid out, second 4 still in (3 retries, 6 requests)
    [6_999, 'TTT', [true, true, false]],
    [7_000, 'T', [false]], // second 7: second 4's requests slid out, and second 6's 3 retries fill the floor
    [8_999, 'T', [false]], // second 8: second 6 is still in the window
    [9_000, 'TTTT', [true, true, true, false]], // second 9: second 6 slid out
    [60_000, 'TTTT', [true, true, true, false]] // long after: every slot is stale
  ]
  for (const [at, actions, expected] of steps) {
    clock.nowMs = at
    const allowed: boolean[] = []
    for (const action of actions) {
      if (action === 'R') budget.recordRequest(clock.now())
      else allowed.push(budget.tryRetry(clock.now()))
    }
    t.same(allowed, expected, `at ${at} ms: ${actions}`)
  }
  t.end()
})
