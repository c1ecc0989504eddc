import t from 'tap'
import { SmoothWeightedRoundRobin } from '../../core/smooth-weighted-round-robin.js'

function picks(weights: readonly number[], count: number): number[] {
  const roundRobin = new SmoothWeightedRoundRobin(weights)
  return Array.from({ length: count }, () => roundRobin.next())
}

void t.test('exact pick sequences', (t) => {
  const cases: [string, number[], number[]][] = [
    // nginx's own example: { a: 5, b: 1, c: 1 } gives a a b a c a a, then repeats
    ['nginx 5:1:1', [5, 1, 1], [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]],
    ['even split alternates', [1, 1], [0, 1, 0, 1]],
    ['a tie goes to the earlier entry', [3, 1], [0, 0, 1, 0, 0, 0, 1, 0]],
    ['zero weights are never picked', [0, 3, 1], [1, 1, 2, 1, 1, 1, 2, 1]],
    ['zeros between weights', [2, 0, 0, 1], [0, 3, 0, 0, 3, 0]],
    ['1:2:3', [1, 2, 3], [2, 1, 0, 2, 1, 2, 2, 1, 0, 2, 1, 2]],
    ['a 10% canary takes every 10th pick, not 10 in a row', [9000, 1000], [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]],
    ['a single entry', [7], [0, 0, 0]]
  ]
  for (const [what, weights, expected] of cases) t.same(picks(weights, expected.length), expected, what)
  t.end()
})

void t.test('nothing to pick: -1', (t) => {
  t.same(picks([], 3), [-1, -1, -1], 'no entries')
  t.same(picks([0, 0], 3), [-1, -1, -1], 'every weight 0')
  t.end()
})

void t.test('over any run of `total` picks each entry is chosen exactly `weight` times', (t) => {
  const splits = [
    [9999, 1],
    [5000, 5000],
    [3333, 3333, 3334],
    [1, 0, 9999],
    [2500, 2500, 2500, 2500],
    [100, 900, 9000]
  ]
  for (const weights of splits) {
    const total = weights.reduce((sum, weight) => sum + weight, 0)
    const sequence = picks(weights, 3 * total)
    for (let run = 0; run < 3; run++) {
      const counts = weights.map(() => 0)
      for (const pick of sequence.slice(run * total, (run + 1) * total)) counts[pick] = (counts[pick] as number) + 1
      t.same(counts, weights, `${weights.join(':')}, run ${run + 1}`)
    }
  }
  t.end()
})

void t.test('a small share is spread evenly: a 1% entry comes once in every 100 picks', (t) => {
  const sequence = picks([99, 1], 1000)
  const positions = sequence.flatMap((pick, index) => (pick === 1 ? [index] : []))
  t.equal(positions.length, 10)
  t.same(
    positions.slice(1).map((position, i) => position - (positions[i] as number)),
    Array(9).fill(100),
    'exactly 100 picks apart'
  )
  t.end()
})
