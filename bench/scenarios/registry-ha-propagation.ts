import { performance } from 'node:perf_hooks'
import { request } from 'undici'
import type { BenchEtcd } from '../lib/etcd-cluster.js'
import { fixed, integer, times } from '../lib/format.js'
import { probeForeignLoad } from '../lib/foreign-load.js'
import { progress } from '../lib/progress.js'
import { startEtcdDeployment, startFileDeployment, waitReplicasFollowed, type RegistryDeployment } from '../lib/registry-deployments.js'
import { quantile, ratio } from '../lib/stats.js'
import { registerInstance, setWeights, startRouterProcess, type RegistryProcess, type RouterProcess } from '../lib/switchyard-processes.js'
import type { Table } from './scenario.js'

/**
 * Weight propagation as the propagation scenario measures it (a PUT's 200, then each
 * router's admin /routes polled back to back until it shows the PUT's revision), for
 * routers following one file-store registry and for routers split across two replicas
 * of a registry on etcd: half list replica A first, half B. The PUTs on etcd alternate
 * between A and B, and the changes alternate between the two set-ups, so drift on the
 * machine hits both alike.
 */
const PER_CHANGE_DEADLINE_MS = 5_000
const PAUSE_BETWEEN_CHANGES_MS = 10
const WARM_UP_CHANGES = 5
/** routers started at once: twenty Node.js start-ups together on two cores outlast the readiness wait */
const START_BATCH = 5

interface ChangeSample {
  /** replica index the PUT went to */
  putReplica: number
  revision: number
  putMs: number
  /** per router, ms from the PUT's 200 until its /routes showed the revision (NaN: not within the deadline) */
  routerMs: number[]
  allMs: number
}

interface Setup {
  deployment: RegistryDeployment
  routers: RouterProcess[]
  /** per router: the replica index it lists first */
  firstReplica: number[]
  samples: ChangeSample[]
}

async function routesRevision(adminUrl: string): Promise<number> {
  const response = await request(`${adminUrl}/routes`, { headersTimeout: 2_000, bodyTimeout: 2_000 })
  return ((await response.body.json()) as { revision: number }).revision
}

async function waitApplied(router: RouterProcess, revision: number, since: number): Promise<number> {
  const deadline = since + PER_CHANGE_DEADLINE_MS
  for (;;) {
    if ((await routesRevision(router.adminUrl)) >= revision) return performance.now() - since
    if (performance.now() > deadline) return NaN
  }
}

async function oneChange(setup: Setup, change: number): Promise<ChangeSample> {
  const putReplica = change % setup.deployment.replicas.length
  const canary = 1 + (change % 20)
  const putStart = performance.now()
  const revision = await setWeights(setup.deployment.replicas[putReplica] as RegistryProcess, 'api', { v1: 100 - canary, v2: canary })
  const answered = performance.now()
  const routerMs = await Promise.all(setup.routers.map((router) => waitApplied(router, revision, answered)))
  const allMs = routerMs.some((value) => Number.isNaN(value)) ? NaN : Math.max(...routerMs)
  return { putReplica, revision, putMs: answered - putStart, routerMs, allMs }
}

async function startRouters(setup: Setup, count: number): Promise<void> {
  const urls = setup.deployment.replicas.map((replica) => replica.url)
  for (let first = 0; first < count; first += START_BATCH) {
    const batch = Array.from({ length: Math.min(START_BATCH, count - first) }, (_, offset) => {
      const index = first + offset
      // the first half lists replica A first, the second half B (with two replicas)
      const lead = Math.floor((index * urls.length) / count)
      setup.firstReplica.push(lead)
      const ordered = [...urls.slice(lead), ...urls.slice(0, lead)]
      return startRouterProcess({ registryUrl: ordered.join(','), token: setup.deployment.credentials.routerToken })
    })
    setup.routers.push(...(await Promise.all(batch)))
  }
}

function summarize(setup: Setup) {
  const all = setup.samples.map((sample) => sample.allMs)
  const each = setup.samples.flatMap((sample) => sample.routerMs)
  const puts = setup.samples.map((sample) => sample.putMs)
  // with two replicas: routers following the replica that took the PUT, and the others
  const sameReplica = setup.samples.flatMap((sample) => sample.routerMs.filter((_, router) => setup.firstReplica[router] === sample.putReplica))
  const otherReplica = setup.samples.flatMap((sample) => sample.routerMs.filter((_, router) => setup.firstReplica[router] !== sample.putReplica))
  return {
    label: setup.deployment.label,
    replicas: setup.deployment.replicas.length,
    routers: setup.routers.length,
    routersPerReplica: setup.deployment.replicas.map((_, replica) => setup.firstReplica.filter((first) => first === replica).length),
    changes: setup.samples.length,
    missed: all.filter((value) => Number.isNaN(value)).length,
    allRoutersMs: { p50: quantile(all, 0.5), p99: quantile(all, 0.99), max: quantile(all, 1) },
    eachRouterMs: { p50: quantile(each, 0.5), p99: quantile(each, 0.99) },
    sameReplicaMs: { p50: quantile(sameReplica, 0.5), p99: quantile(sameReplica, 0.99) },
    otherReplicaMs: { p50: quantile(otherReplica, 0.5), p99: quantile(otherReplica, 0.99) },
    putMs: { p50: quantile(puts, 0.5), p99: quantile(puts, 0.99) }
  }
}

export type PropagationSummary = ReturnType<typeof summarize>

export async function haPropagation(etcd: BenchEtcd, quick: boolean, allPids: () => number[]) {
  const name = 'registry-ha'
  const routerCount = quick ? 4 : 10
  const changes = quick ? 20 : 100
  const setups: Setup[] = []
  try {
    // Long leases: the api instances are never called and never heartbeat; only the table matters.
    const file = await startFileDeployment('file store, 1 registry', { leaseSeconds: 3_600 })
    setups.push({ deployment: file, routers: [], firstReplica: [], samples: [] })
    const ha = await startEtcdDeployment('etcd, 2 replicas', etcd, '/bench-propagation', 2, { leaseSeconds: 3_600 })
    setups.push({ deployment: ha, routers: [], firstReplica: [], samples: [] })
    for (const setup of setups) {
      const registry = setup.deployment.replicas[0] as RegistryProcess
      await registerInstance(registry, 'api', { id: 'api-1', version: 'v1', host: '127.0.0.1', port: 9 })
      await registerInstance(registry, 'api', { id: 'api-2', version: 'v2', host: '127.0.0.1', port: 9 })
      await waitReplicasFollowed(setup.deployment)
      progress(name, `propagation: starting ${routerCount} router processes on the ${setup.deployment.label}`)
      await startRouters(setup, routerCount)
    }
    for (let change = 0; change < WARM_UP_CHANGES; change++) for (const setup of setups) await oneChange(setup, change)
    const probe = probeForeignLoad([...allPids(), ...setups.flatMap((setup) => [...setup.deployment.pids(), ...setup.routers.map((router) => router.child.pid)])])
    for (let change = 0; change < changes; change++) {
      for (const setup of setups) {
        setup.samples.push(await oneChange(setup, change))
        await new Promise((resolve) => setTimeout(resolve, PAUSE_BETWEEN_CHANGES_MS))
      }
      if ((change + 1) % 25 === 0 || change + 1 === changes) progress(name, `propagation: ${change + 1}/${changes} changes on each set-up`)
    }
    const otherLoad = probe.finish()
    const [fileSummary, haSummary] = setups.map(summarize) as [PropagationSummary, PropagationSummary]
    progress(name, `propagation p99: file ${fixed(fileSummary.allRoutersMs.p99)} ms, etcd ${fixed(haSummary.allRoutersMs.p99)} ms`)
    const table: Table = {
      title: `Weight propagation: PUT 200 -> all ${routerCount} routers applied it (${changes} changes per set-up, interleaved)`,
      columns: [
        'registry',
        'routers',
        'all applied p50 ms',
        'all applied p99 ms',
        'max ms',
        'each router p99 ms',
        "router on the PUT's replica p99 ms",
        'router on the other replica p99 ms',
        'PUT p50 ms',
        'PUT p99 ms',
        'missed'
      ],
      rows: [fileSummary, haSummary].map((summary) => [
        summary.label,
        summary.replicas > 1 ? `${integer(summary.routers)} (${summary.routersPerReplica.join(' + ')})` : integer(summary.routers),
        fixed(summary.allRoutersMs.p50),
        fixed(summary.allRoutersMs.p99),
        fixed(summary.allRoutersMs.max),
        fixed(summary.eachRouterMs.p99),
        summary.replicas > 1 ? fixed(summary.sameReplicaMs.p99) : 'n/a',
        summary.replicas > 1 ? fixed(summary.otherReplicaMs.p99) : 'n/a',
        fixed(summary.putMs.p50),
        fixed(summary.putMs.p99),
        integer(summary.missed)
      ]),
      notes: [
        `etcd / file: ${times(ratio(haSummary.allRoutersMs.p99, fileSummary.allRoutersMs.p99))} all-applied p99, ${times(ratio(haSummary.allRoutersMs.p50, fileSummary.allRoutersMs.p50))} p50, ${times(ratio(haSummary.putMs.p50, fileSummary.putMs.p50))} PUT p50; target (read, never asserted): etcd all-applied p99 under 100 ms`
      ]
    }
    return {
      table,
      data: {
        routers: routerCount,
        changes,
        warmUpChanges: WARM_UP_CHANGES,
        otherLoad,
        file: fileSummary,
        etcd: haSummary,
        samples: { file: setups[0]?.samples, etcd: setups[1]?.samples }
      }
    }
  } finally {
    await Promise.all(setups.flatMap((setup) => setup.routers.map((router) => router.child.stop())))
    await Promise.all(setups.map((setup) => setup.deployment.close()))
  }
}
