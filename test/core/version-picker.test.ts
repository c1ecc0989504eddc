import t, { type Test } from 'tap'
import type { InstanceRecord } from '../../core/registry-events.js'
import type { ServiceModel } from '../../core/registry-model.js'
import { buildServiceRoute, type ServiceRoute, type VersionRoute } from '../../core/route-table.js'
import { pickForced, pickRandom, pickSticky, pickWeighted } from '../../core/version-picker.js'

/**
 * A route for service `api`: `weights` in percent, `up` the number of instances of each
 * version (instance ids are `<version>-<n>`).
 */
function route(weights: Record<string, number>, up: Record<string, number>): ServiceRoute<string> {
  const service: ServiceModel = { name: 'api', weights: new Map(Object.entries(weights).map(([version, percent]) => [version, percent * 100])), instances: new Map() }
  for (const [version, count] of Object.entries(up)) {
    for (let n = 0; n < count; n++) {
      const instance: InstanceRecord = { id: `${version}-${n}`, service: 'api', version, host: '127.0.0.1', port: 9000 + n, metadata: {}, status: 'up', registeredAt: 0 }
      service.instances.set(instance.id, instance)
    }
  }
  return buildServiceRoute(service, (instance) => instance.id)
}

/** Every route the tables below use: weights in percent, then instances per version. */
const specs = {
  /** 90/10, both with instances */
  healthy: [
    { v1: 90, v2: 10 },
    { v1: 2, v2: 1 }
  ],
  /** the 10% canary has no instance: its share goes to v1 */
  canaryDown: [{ v1: 90, v2: 10 }, { v1: 2 }],
  /** the middle version has no instance: its share goes to v1 and v3 by their weights */
  middleDown: [
    { v1: 50, v2: 30, v3: 20 },
    { v1: 1, v3: 1 }
  ],
  /** the only weighted version has no instance; v2 has one but no weight */
  nothingUp: [{ v1: 100 }, { v2: 1 }],
  /** instances but no weights at all */
  unweighted: [{}, { v1: 1 }],
  /** a service with nothing */
  empty: [{}, {}]
} satisfies Record<string, [Record<string, number>, Record<string, number>]>
type RouteName = keyof typeof specs

/** A fresh route (round-robin scores at 0). */
function routeOf(name: RouteName): ServiceRoute<string> {
  const [weights, up] = specs[name]
  return route(weights, up)
}

type OnFallback = (from: VersionRoute<string>) => void

/** One pick per case, on a fresh route: the version picked and every version it fell back from. */
function checkPicks<I>(
  t: Test,
  cases: readonly [RouteName, I, string | undefined, string[]][],
  pick: (route: ServiceRoute<string>, input: I, onFallback: OnFallback) => VersionRoute<string> | undefined
): void {
  for (const [name, input, picked, fellBackFrom] of cases) {
    const seen: string[] = []
    const found = pick(routeOf(name), input, (from) => seen.push(from.name))?.name
    t.same({ picked: found, fellBackFrom: seen }, { picked, fellBackFrom }, `${name}, ${String(input)}`)
  }
}

void t.test('pickForced: the named version at any weight, undefined for an unknown one', (t) => {
  const cases: [RouteName, string, string | undefined][] = [
    ['healthy', 'v2', 'v2'],
    ['healthy', 'v3', undefined],
    ['nothingUp', 'v2', 'v2'], // at 0%: forced still reaches it
    ['nothingUp', 'v1', 'v1'], // no instance: the caller answers that, not the picker
    ['empty', 'v1', undefined]
  ]
  for (const [name, version, expected] of cases) t.equal(pickForced(routeOf(name), version)?.name, expected, `${name}, ${version}`)
  t.end()
})

void t.test('pickSticky: a bucket lands in its version range, or is laid over the versions that can serve', (t) => {
  const cases: [RouteName, number, string | undefined, string[]][] = [
    // healthy: v1 owns [0, 9000), v2 owns [9000, 10000)
    ['healthy', 0, 'v1', []],
    ['healthy', 8999, 'v1', []],
    ['healthy', 9000, 'v2', []],
    ['healthy', 9999, 'v2', []],
    // canaryDown: v2's buckets go to v1, the only version left
    ['canaryDown', 100, 'v1', []],
    ['canaryDown', 9500, 'v1', ['v2']],
    // middleDown: v2 owns [5000, 8000); its buckets are rescaled over v1 [0, 5000) + v3 [5000, 7000)
    ['middleDown', 4999, 'v1', []],
    ['middleDown', 6000, 'v1', ['v2']], // point 4200
    ['middleDown', 7142, 'v1', ['v2']], // point 4999
    ['middleDown', 7143, 'v3', ['v2']], // point 5000
    ['middleDown', 7999, 'v3', ['v2']],
    ['middleDown', 8000, 'v3', []],
    // nothing can serve
    ['nothingUp', 1234, undefined, ['v1']],
    ['unweighted', 1234, undefined, []],
    ['empty', 0, undefined, []]
  ]
  checkPicks(t, cases, (route, bucket, onFallback) => pickSticky(route, bucket, onFallback))
  t.equal(pickSticky(routeOf('canaryDown'), 9500)?.name, 'v1', 'the listener is optional')
  t.end()
})

void t.test('pickWeighted: smooth round-robin, fallback picks spread over the versions that can serve', (t) => {
  const cases: [RouteName, (string | undefined)[], string[]][] = [
    ['healthy', ['v1', 'v1', 'v1', 'v1', 'v1', 'v2', 'v1', 'v1', 'v1', 'v1'], []],
    ['canaryDown', ['v1', 'v1', 'v1', 'v1', 'v1', 'v1', 'v1', 'v1', 'v1', 'v1'], ['v2']],
    // configured order v1 v2 v3 v1 v1 v2 v1 v3 v2 v1; the v2 picks go to v1, v3, v1 in turn
    ['middleDown', ['v1', 'v1', 'v3', 'v1', 'v1', 'v3', 'v1', 'v3', 'v1', 'v1'], ['v2', 'v2', 'v2']],
    ['nothingUp', [undefined, undefined], ['v1', 'v1']],
    ['unweighted', [undefined, undefined], []],
    ['empty', [undefined], []]
  ]
  for (const [name, expected, fellBackFrom] of cases) {
    const fresh = routeOf(name)
    const seen: string[] = []
    const sequence = expected.map(() => pickWeighted(fresh, (from) => seen.push(from.name))?.name)
    t.same({ sequence, fellBackFrom: seen }, { sequence: expected, fellBackFrom }, name)
  }
  t.equal(pickWeighted(routeOf('canaryDown'))?.name, 'v1', 'the listener is optional')
  t.end()
})

void t.test('pickRandom: the caller-supplied random number picks the bucket', (t) => {
  const cases: [RouteName, number, string | undefined, string[]][] = [
    ['healthy', 0, 'v1', []],
    ['healthy', 0.8995, 'v1', []],
    ['healthy', 0.9, 'v2', []],
    ['healthy', 0.99999, 'v2', []],
    ['canaryDown', 0.95, 'v1', ['v2']],
    ['middleDown', 0.75, 'v3', ['v2']],
    ['nothingUp', 0.5, undefined, ['v1']]
  ]
  checkPicks(t, cases, (route, random, onFallback) => pickRandom(route, () => random, onFallback))
  t.equal(pickRandom(routeOf('healthy'), () => 0.95)?.name, 'v2', 'the listener is optional')
  t.end()
})
