import t from 'tap'
import {
  LATENCY_BOUNDS_MS,
  LATENCY_BUCKETS,
  STATUS_CLASSES,
  addCounters,
  cloneCounters,
  counterDelta,
  emptyCounters,
  isZero,
  latencyBucket,
  latencyQuantile,
  requestsOf,
  statusClassIndex,
  type VersionCounters
} from '../../../core/signals/counters.js'
import { sparseCounters } from '../../helpers/signal-fixtures.js'

void t.test('the histogram has 24 bounds and an overflow bucket; five status classes', (t) => {
  t.equal(LATENCY_BOUNDS_MS.length, 24)
  t.equal(LATENCY_BUCKETS, 25)
  t.equal(LATENCY_BOUNDS_MS[0], 0.5)
  t.equal(LATENCY_BOUNDS_MS[23], 10000)
  for (let i = 1; i < LATENCY_BOUNDS_MS.length; i++) t.ok((LATENCY_BOUNDS_MS[i] as number) > (LATENCY_BOUNDS_MS[i - 1] as number), `bound ${i} ascends`)
  t.same(STATUS_CLASSES, ['1xx', '2xx', '3xx', '4xx', '5xx'])
  t.end()
})

void t.test('emptyCounters is all zeros, and a fresh value each time', (t) => {
  const a = emptyCounters()
  t.same(a, { statusClasses: [0, 0, 0, 0, 0], latency: new Array<number>(25).fill(0), messagesRouted: 0, messagesRejected: 0 })
  a.statusClasses[1] = 5
  t.equal(emptyCounters().statusClasses[1], 0)
  t.end()
})

void t.test('latencyBucket: bounds are inclusive upper limits; above 10 s is the overflow bucket', (t) => {
  const cases: [number, number][] = [
    [-1, 0],
    [0, 0],
    [0.5, 0],
    [0.51, 1],
    [1, 1],
    [1.0001, 2],
    [2, 2],
    [3, 3],
    [4, 4],
    [5, 4],
    [7.5, 5],
    [8, 6],
    [10, 6],
    [12, 7],
    [20, 8],
    [25, 9],
    [50, 10],
    [100, 12],
    [101, 13],
    [499, 16],
    [500, 16],
    [501, 17],
    [1000, 18],
    [5000, 22],
    [9999, 23],
    [10000, 23],
    [10000.5, 24],
    [1e9, 24]
  ]
  for (const [ms, bucket] of cases) t.equal(latencyBucket(ms), bucket, `${ms} ms`)
  // every bound falls in its own bucket, just above it in the next
  for (let i = 0; i < LATENCY_BOUNDS_MS.length; i++) {
    const bound = LATENCY_BOUNDS_MS[i] as number
    t.equal(latencyBucket(bound), i, `bound ${bound}`)
    t.equal(latencyBucket(bound + 0.001), i + 1, `just above ${bound}`)
  }
  t.end()
})

void t.test('statusClassIndex: 100..599 map to 0..4, anything else to -1', (t) => {
  const cases: [number, number][] = [
    [0, -1],
    [99, -1],
    [100, 0],
    [101, 0],
    [199, 0],
    [200, 1],
    [204, 1],
    [304, 2],
    [404, 3],
    [499, 3],
    [500, 4],
    [503, 4],
    [599, 4],
    [600, -1],
    [999, -1],
    [-200, -1]
  ]
  for (const [status, index] of cases) t.equal(statusClassIndex(status), index, `status ${status}`)
  t.end()
})

void t.test('requestsOf sums the status classes only', (t) => {
  t.equal(requestsOf(emptyCounters()), 0)
  t.equal(requestsOf(sparseCounters([1, 2, 3, 4, 5], { 3: 100 }, 50, 7)), 15)
  t.end()
})

void t.test('addCounters adds element-wise into a new value; a shorter side counts as zeros', (t) => {
  const a = sparseCounters([1, 2, 3, 4, 5], { 0: 1, 24: 2 }, 10, 1)
  const b = sparseCounters([10, 20, 30, 40, 50], { 0: 3, 5: 4 }, 5, 2)
  const sum = addCounters(a, b)
  t.same(sum, sparseCounters([11, 22, 33, 44, 55], { 0: 4, 5: 4, 24: 2 }, 15, 3))
  t.not(sum.statusClasses, a.statusClasses)
  t.same(a, sparseCounters([1, 2, 3, 4, 5], { 0: 1, 24: 2 }, 10, 1), 'a is left alone')
  const short: VersionCounters = { statusClasses: [1], latency: [2], messagesRouted: 0, messagesRejected: 0 }
  t.same(addCounters(a, short), sparseCounters([2, 2, 3, 4, 5], { 0: 3, 24: 2 }, 10, 1))
  t.end()
})

void t.test('counterDelta: later minus earlier; a first reading or any total going down gives the later reading', (t) => {
  const earlier = sparseCounters([0, 100, 0, 5, 2], { 1: 100, 10: 7 }, 40, 4)
  const later = sparseCounters([1, 150, 0, 9, 3], { 1: 140, 10: 8, 24: 15 }, 60, 5)
  const cases: [string, VersionCounters, VersionCounters | undefined, VersionCounters][] = [
    ['no earlier reading', later, undefined, later],
    ['ordinary growth', later, earlier, sparseCounters([1, 50, 0, 4, 1], { 1: 40, 10: 1, 24: 15 }, 20, 1)],
    ['nothing happened', later, later, sparseCounters([0, 0, 0, 0, 0])],
    ['messages routed went down', sparseCounters([1, 150, 0, 9, 3], { 1: 140 }, 39, 5), earlier, sparseCounters([1, 150, 0, 9, 3], { 1: 140 }, 39, 5)],
    ['messages rejected went down', sparseCounters([1, 150, 0, 9, 3], { 1: 140, 10: 7 }, 60, 3), earlier, sparseCounters([1, 150, 0, 9, 3], { 1: 140, 10: 7 }, 60, 3)],
    ['a status class went down', sparseCounters([0, 150, 0, 4, 3], { 1: 140, 10: 7 }, 60, 5), earlier, sparseCounters([0, 150, 0, 4, 3], { 1: 140, 10: 7 }, 60, 5)],
    ['a latency bucket went down', sparseCounters([1, 150, 0, 9, 3], { 1: 99, 10: 50 }, 60, 5), earlier, sparseCounters([1, 150, 0, 9, 3], { 1: 99, 10: 50 }, 60, 5)],
    [
      'an earlier reading with fewer buckets counts the missing ones as zeros',
      later,
      { statusClasses: [0, 100], latency: [0, 100], messagesRouted: 40, messagesRejected: 4 },
      sparseCounters([1, 50, 0, 9, 3], { 1: 40, 10: 8, 24: 15 }, 20, 1)
    ]
  ]
  for (const [name, a, b, expected] of cases) {
    const delta = counterDelta(a, b)
    t.same(delta, expected, name)
    t.not(delta, a, `${name}: a new value`)
    t.not(delta.latency, a.latency, `${name}: a new histogram`)
  }
  t.end()
})

void t.test('isZero: no requests and no messages', (t) => {
  const cases: [VersionCounters, boolean][] = [
    [emptyCounters(), true],
    [sparseCounters([0, 0, 0, 0, 0], { 3: 1 }), true],
    [sparseCounters([0, 0, 0, 0, 1]), false],
    [sparseCounters([1, 0, 0, 0, 0]), false],
    [sparseCounters([0, 0, 0, 0, 0], {}, 1, 0), false],
    [sparseCounters([0, 0, 0, 0, 0], {}, 0, 1), false]
  ]
  for (const [value, zero] of cases) t.equal(isZero(value), zero, JSON.stringify(value))
  t.end()
})

void t.test('cloneCounters copies deeply', (t) => {
  const original = sparseCounters([1, 2, 3, 4, 5], { 2: 9 }, 3, 1)
  const copy = cloneCounters(original)
  t.same(copy, original)
  copy.statusClasses[0] = 100
  copy.latency[2] = 100
  copy.messagesRouted = 100
  t.same(original, sparseCounters([1, 2, 3, 4, 5], { 2: 9 }, 3, 1))
  t.end()
})

void t.test('latencyQuantile interpolates inside the bucket the rank falls in', (t) => {
  const histogram = (sparse: Record<number, number>): number[] => sparseCounters([0, 0, 0, 0, 0], sparse).latency
  const cases: [string, number[], number, number | undefined][] = [
    ['no observations', histogram({}), 0.5, undefined],
    ['an empty array', [], 0.99, undefined],
    ['all in the first bucket, median', histogram({ 0: 10 }), 0.5, 0.25],
    ['all in the first bucket, p99', histogram({ 0: 100 }), 0.99, 0.495],
    ['all in 0.5..1 ms, p50', histogram({ 1: 100 }), 0.5, 0.75],
    ['all in 0.5..1 ms, p99', histogram({ 1: 100 }), 0.99, 0.995],
    ['all in 150..200 ms, p99', histogram({ 14: 200 }), 0.99, 199.5],
    ['all in 500..750 ms, p99', histogram({ 17: 50 }), 0.99, 747.5],
    ['half fast, half 30..50 ms: p50 is the top of the fast bucket', histogram({ 1: 50, 10: 50 }), 0.5, 1],
    ['half fast, half 30..50 ms: p99', histogram({ 1: 50, 10: 50 }), 0.99, 49.6],
    ['empty buckets before the first observation are skipped at q = 0', histogram({ 4: 3 }), 0, 3],
    ['q = 1 is the top of the highest occupied bucket', histogram({ 1: 3, 6: 1 }), 1, 10],
    ['the overflow bucket answers its lower bound', histogram({ 24: 5 }), 0.99, 10000],
    ['a rank in the overflow bucket', histogram({ 1: 98, 24: 2 }), 0.99, 10000],
    ['a rank just below the overflow bucket', histogram({ 23: 99, 24: 1 }), 0.99, 10000],
    ['q above 1 falls through every bucket to the highest bound', histogram({ 1: 10 }), 1.5, 10000]
  ]
  for (const [name, latency, q, expected] of cases) {
    const value = latencyQuantile(latency, q)
    if (expected === undefined) t.equal(value, undefined, name)
    else t.ok(value !== undefined && Math.abs(value - expected) < 1e-9, `${name}: ${value} = ${expected}`)
  }
  t.end()
})
