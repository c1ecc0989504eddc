import { bucketOf } from '../../core/buckets.js'
import { pickEndpoint, type BalancedEndpoint } from '../../core/instance-picker.js'
import type { InstanceRecord } from '../../core/registry-events.js'
import type { ServiceModel } from '../../core/registry-model.js'
import { buildServiceRoute, type ServiceRoute } from '../../core/route-table.js'
import { pickForced, pickRandom, pickSticky, pickWeighted } from '../../core/version-picker.js'
import { TOTAL_BASIS_POINTS } from '../../core/weights.js'
import { fixed, integer } from '../lib/format.js'
import { progress } from '../lib/progress.js'
import { median } from '../lib/stats.js'
import type { BenchContext, ScenarioResult } from './scenario.js'

/**
 * The pickers on their own, called directly in this process (no HTTP): nanoseconds per
 * version pick and per instance pick, and how far each version choice strays from the
 * configured split over 10^6 picks.
 */
type Endpoint = BalancedEndpoint & { id: number }
type Strategy = 'weighted (smooth round-robin)' | 'weighted (random)' | 'sticky (hash of a key)' | 'forced (by name)'
const STRATEGIES: readonly Strategy[] = ['weighted (smooth round-robin)', 'weighted (random)', 'sticky (hash of a key)', 'forced (by name)']
const VERSION_COUNTS = [2, 8, 64] as const
const INSTANCE_COUNTS = [3, 100, 1_000] as const
const SPLIT_PICKS = 1_000_000

/** Basis points: 90/10 for two versions; otherwise an even split, the remainder to the first. */
export function weightsFor(count: number): number[] {
  if (count === 2) return [9_000, 1_000]
  const each = Math.floor(TOTAL_BASIS_POINTS / count)
  return Array.from({ length: count }, (_, index) => each + (index === 0 ? TOTAL_BASIS_POINTS - each * count : 0))
}

function routeWith(versionCount: number, instancesPerVersion = 1): ServiceRoute<Endpoint> {
  const weights = weightsFor(versionCount)
  const model: ServiceModel = { name: 'api', weights: new Map(), instances: new Map() }
  for (let v = 0; v < versionCount; v++) {
    model.weights.set(`v${v + 1}`, weights[v] as number)
    for (let i = 0; i < instancesPerVersion; i++) {
      const instance: InstanceRecord = {
        id: `v${v + 1}-${i}`,
        service: 'api',
        version: `v${v + 1}`,
        host: '127.0.0.1',
        port: 10_000 + i,
        metadata: {},
        status: 'up',
        registeredAt: 0
      }
      model.instances.set(instance.id, instance)
    }
  }
  let next = 0
  return buildServiceRoute(model, () => ({ id: next++, inflight: 0, ejectedUntil: 0 }))
}

let sink = 0

/** ns per call of `pick`: median of `repetitions` timed loops of `iterations` calls. */
function nsPerCall(iterations: number, repetitions: number, pick: (index: number) => number): { ns: number; runs: number[] } {
  // Warm-up: let the JIT settle on the loop before timing it.
  for (let i = 0; i < Math.min(iterations, 200_000); i++) sink ^= pick(i)
  const runs: number[] = []
  for (let repetition = 0; repetition < repetitions; repetition++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < iterations; i++) sink ^= pick(i)
    runs.push(Number(process.hrtime.bigint() - start) / iterations)
  }
  return { ns: median(runs), runs }
}

function versionPicker(strategy: Strategy, route: ServiceRoute<Endpoint>, keys: readonly string[]): (index: number) => number {
  const names = route.versions.map((version) => version.name)
  const random = Math.random
  switch (strategy) {
    case 'weighted (smooth round-robin)':
      return () => pickWeighted(route)?.weight ?? 0
    case 'weighted (random)':
      return () => pickRandom(route, random)?.weight ?? 0
    case 'sticky (hash of a key)':
      return (index) => pickSticky(route, bucketOf(keys[index & 1023] as string))?.weight ?? 0
    case 'forced (by name)':
      return (index) => pickForced(route, names[index % names.length] as string)?.weight ?? 0
  }
}

/** Max |observed share - configured weight| in percentage points over `picks` picks. */
function splitError(strategy: Strategy, versionCount: number, picks: number): number {
  const route = routeWith(versionCount)
  const index = new Map(route.versions.map((version, position) => [version, position]))
  const counts = new Float64Array(versionCount)
  for (let i = 0; i < picks; i++) {
    const version =
      strategy === 'weighted (smooth round-robin)'
        ? pickWeighted(route)
        : strategy === 'weighted (random)'
          ? pickRandom(route, Math.random)
          : pickSticky(route, bucketOf(`user-${i}`))
    if (version) {
      const position = index.get(version) as number
      counts[position] = (counts[position] as number) + 1
    }
  }
  let worst = 0
  route.versions.forEach((version, position) => {
    const observed = ((counts[position] as number) / picks) * 100
    worst = Math.max(worst, Math.abs(observed - version.weight / 100))
  })
  return worst
}

export function pickerScenario(context: BenchContext): ScenarioResult {
  const name = 'picker'
  const iterations = context.quick ? 200_000 : 1_000_000
  const repetitions = context.quick ? 5 : 9
  const keys = Array.from({ length: 1024 }, (_, i) => `user-${(i * 7919) % 100_000}`)
  progress(name, `timing version and instance picks in this process (${repetitions} loops of ${integer(iterations)} picks each, median)`)

  const versionRows: { strategy: Strategy; versions: number; ns: number; runs: number[] }[] = []
  for (const versions of VERSION_COUNTS) {
    const route = routeWith(versions)
    for (const strategy of STRATEGIES) {
      const timed = nsPerCall(iterations, repetitions, versionPicker(strategy, route, keys))
      versionRows.push({ strategy, versions, ...timed })
      progress(name, `version pick, ${strategy}, ${versions} versions: ${fixed(timed.ns, 1)} ns`)
    }
  }

  const instanceRows: { instances: number; ns: number; runs: number[] }[] = []
  for (const instances of INSTANCE_COUNTS) {
    const endpoints: Endpoint[] = Array.from({ length: instances }, (_, id) => ({ id, inflight: id % 3, ejectedUntil: 0 }))
    const now = Date.now()
    const random = Math.random
    const timed = nsPerCall(iterations, repetitions, () => pickEndpoint(endpoints, now, random)?.id ?? 0)
    instanceRows.push({ instances, ...timed })
    progress(name, `instance pick (power of two choices), ${instances} instances: ${fixed(timed.ns, 1)} ns`)
  }

  progress(name, `split error over ${integer(SPLIT_PICKS)} picks`)
  const splitStrategies = STRATEGIES.filter((strategy) => strategy !== 'forced (by name)')
  const splitRows = VERSION_COUNTS.flatMap((versions) => splitStrategies.map((strategy) => ({ strategy, versions, maxDeviationPp: splitError(strategy, versions, SPLIT_PICKS) })))

  const notes = [
    'measured in the benchmark process itself (not pinned), calling core/version-picker.ts and core/instance-picker.ts directly; sticky includes hashing the key (bucketOf), forced is a lookup by name',
    `weights: 90/10 for 2 versions, an even split for 8 and 64; instance picks see in-flight counts 0..2 and no ejections`
  ]
  return {
    name,
    notes,
    tables: [
      {
        title: `Version pick, ns per pick (median of ${repetitions} loops x ${integer(iterations)})`,
        columns: ['strategy', ...VERSION_COUNTS.map((count) => `${count} versions`)],
        rows: STRATEGIES.map((strategy) => [
          strategy,
          ...VERSION_COUNTS.map((versions) => fixed(versionRows.find((row) => row.strategy === strategy && row.versions === versions)?.ns, 1))
        ])
      },
      {
        title: 'Instance pick (power of two choices on in-flight requests), ns per pick',
        columns: ['instances', ...INSTANCE_COUNTS.map((count) => integer(count))],
        rows: [['ns per pick', ...INSTANCE_COUNTS.map((instances) => fixed(instanceRows.find((row) => row.instances === instances)?.ns, 1))]]
      },
      {
        title: `Split error over ${integer(SPLIT_PICKS)} picks: max |observed - weight| in percentage points`,
        columns: ['strategy', ...VERSION_COUNTS.map((count) => `${count} versions`)],
        rows: splitStrategies.map((strategy) => [
          strategy,
          ...VERSION_COUNTS.map((versions) => fixed(splitRows.find((row) => row.strategy === strategy && row.versions === versions)?.maxDeviationPp, 4))
        ]),
        notes: ['sticky keys are user-0 .. user-999999: the error is that of the hash over those keys']
      }
    ],
    data: { iterations, repetitions, sink, versionPicks: versionRows, instancePicks: instanceRows, splitError: { picks: SPLIT_PICKS, rows: splitRows } }
  }
}
