import t from 'tap'
import type { InstanceRecord } from '../../core/registry-events.js'
import { buildServiceRoute, type ServiceRoute, type VersionRoute } from '../../core/route-table.js'
import { chooseVersion, choiceReason, type WeightedChoice } from '../../core/version-choice.js'

/**
 * A route of service `api` from weights in basis points and instance counts per version.
 * Endpoints are the instance ids, so a choice reads as plain strings.
 */
function routeOf(versions: Record<string, { weight: number; instances: number }>): ServiceRoute<string> {
  const weights = new Map<string, number>()
  const instances = new Map<string, InstanceRecord>()
  for (const [version, { weight, instances: count }] of Object.entries(versions)) {
    if (weight > 0) weights.set(version, weight)
    for (let index = 1; index <= count; index++) {
      const id = `${version}-${index}`
      instances.set(id, { id, service: 'api', version, host: '127.0.0.1', port: 1000 + index, metadata: {}, status: 'up', registeredAt: 0 })
    }
  }
  return buildServiceRoute({ name: 'api', weights, instances }, (instance) => instance.id)
}

/** Randomness that returns the given values in turn. */
function scripted(...values: number[]): () => number {
  let next = 0
  return () => {
    const value = values[next++]
    if (value === undefined) throw new Error('scripted randomness ran out')
    return value
  }
}

const noRandom = scripted()
const nameOf = (version: VersionRoute<string> | undefined) => version?.name

// Buckets of the sticky keys used below (pinned in test/core/buckets.test.ts's spirit: both
// routers must agree on them forever): user-1 5916, user-2 1105, user-19 9917.
const canary = () => routeOf({ v1: { weight: 9000, instances: 2 }, v2: { weight: 1000, instances: 1 }, v3: { weight: 0, instances: 1 } })
const halfDown = () => routeOf({ v1: { weight: 5000, instances: 1 }, v2: { weight: 5000, instances: 0 } })
const allDown = () => routeOf({ v1: { weight: 10000, instances: 0 }, v2: { weight: 0, instances: 1 } })

void t.test('one choice per request: forced, else sticky, else weighted', (t) => {
  const cases: {
    name: string
    route: () => ServiceRoute<string>
    forced?: string
    key?: string
    strategy?: WeightedChoice
    random?: number[]
    expected: string | undefined
    fallbacks?: string[]
  }[] = [
    { name: 'forced to a version at 0%', route: canary, forced: 'v3', key: 'user-19', expected: 'v3' },
    { name: 'forced wins over a sticky key', route: canary, forced: 'v1', key: 'user-19', expected: 'v1' },
    { name: 'forced to a version nobody knows', route: canary, forced: 'v9', expected: undefined },
    { name: 'forced to a version without instances: returned, the caller judges', route: halfDown, forced: 'v2', expected: 'v2' },
    { name: 'forced is case-sensitive', route: canary, forced: 'V1', expected: undefined },
    { name: 'sticky key in v1 range (bucket 5916)', route: canary, key: 'user-1', expected: 'v1' },
    { name: 'sticky key in v2 range (bucket 9917)', route: canary, key: 'user-19', expected: 'v2' },
    { name: 'sticky key ignores the random strategy', route: canary, key: 'user-19', strategy: 'random', expected: 'v2' },
    { name: 'sticky key of a version without instances falls back (5916 -> point 2958 of 5000)', route: halfDown, key: 'user-1', expected: 'v1', fallbacks: ['v2'] },
    { name: 'sticky key of a healthy version stays (bucket 1105)', route: halfDown, key: 'user-2', expected: 'v1' },
    { name: 'sticky key with nothing available', route: allDown, key: 'user-1', expected: undefined, fallbacks: ['v1'] },
    { name: 'an empty key is no key: weighted', route: canary, key: '', expected: 'v1' },
    { name: 'random 0 -> bucket 0', route: canary, strategy: 'random', random: [0], expected: 'v1' },
    { name: 'random 0.8999 -> bucket 8999, the last of v1', route: canary, strategy: 'random', random: [0.8999], expected: 'v1' },
    { name: 'random 0.9 -> bucket 9000, the first of v2', route: canary, strategy: 'random', random: [0.9], expected: 'v2' },
    { name: 'random 0.99999 -> bucket 9999', route: canary, strategy: 'random', random: [0.99999], expected: 'v2' },
    { name: 'random into a version without instances falls back', route: halfDown, strategy: 'random', random: [0.75], expected: 'v1', fallbacks: ['v2'] },
    { name: 'random with nothing available', route: allDown, strategy: 'random', random: [0.5], expected: undefined, fallbacks: ['v1'] },
    { name: 'first smooth round-robin pick', route: canary, expected: 'v1' },
    { name: 'smooth round-robin with nothing available', route: allDown, expected: undefined, fallbacks: ['v1'] }
  ]
  for (const { name, route, forced, key, strategy = 'smooth-round-robin', random = [], expected, fallbacks = [] } of cases) {
    const heard: string[] = []
    const version = chooseVersion(route(), forced, key, strategy, scripted(...random), (from) => heard.push(from.name))
    t.equal(nameOf(version), expected, name)
    t.same(heard, fallbacks, `${name}: fallbacks heard`)
  }
  t.end()
})

void t.test('smooth round-robin: the exact sequence, and the fallback inside it', (t) => {
  const route = canary()
  const picks = Array.from({ length: 20 }, () => nameOf(chooseVersion(route, undefined, undefined, 'smooth-round-robin', noRandom)))
  const round = ['v1', 'v1', 'v1', 'v1', 'v1', 'v2', 'v1', 'v1', 'v1', 'v1']
  t.same(picks, [...round, ...round], '9 to 1 in every run of 10, the canary in the middle')

  const half = halfDown()
  const heard: string[] = []
  const fallback = Array.from({ length: 4 }, () => nameOf(chooseVersion(half, undefined, undefined, 'smooth-round-robin', noRandom, (from) => heard.push(from.name))))
  t.same(fallback, ['v1', 'v1', 'v1', 'v1'], "v2's turns go to v1")
  t.same(heard, ['v2', 'v2'], 'each of them heard')
  t.end()
})

void t.test('the reason follows the same order', (t) => {
  const cases: [string | undefined, string | undefined, string][] = [
    ['v1', 'user-1', 'forced'],
    ['v1', undefined, 'forced'],
    [undefined, 'user-1', 'sticky'],
    [undefined, '', 'weighted'],
    [undefined, undefined, 'weighted']
  ]
  for (const [forced, key, expected] of cases) t.equal(choiceReason(forced, key), expected, `forced ${forced}, key ${JSON.stringify(key)}`)
  t.end()
})
