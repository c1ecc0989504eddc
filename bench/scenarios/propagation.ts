import { performance } from 'node:perf_hooks'
import { request } from 'undici'
import { fixed, integer } from '../lib/format.js'
import { progress } from '../lib/progress.js'
import { quantile } from '../lib/stats.js'
import { registerInstance, setWeights, startRegistryProcess, startRouterProcess, type RegistryProcess, type RouterProcess } from '../lib/switchyard-processes.js'
import type { BenchContext, ScenarioResult } from './scenario.js'

/**
 * Weight propagation: from a weight PUT answering 200 to every watching router having
 * applied it, seen from outside: each router's admin /routes polled in a tight loop
 * (one request in flight per router) until its revision reaches the PUT's.
 */
const PER_CHANGE_DEADLINE_MS = 5_000
const PAUSE_BETWEEN_CHANGES_MS = 10

interface ChangeSample {
  revision: number
  /** round trip of the PUT itself (journal write and fsync included) */
  putMs: number
  /** per router: ms from the PUT's answer until its /routes showed the revision (NaN: not within the deadline) */
  routerMs: number[]
  /** the slowest router */
  allMs: number
}

async function routesRevision(adminUrl: string): Promise<number> {
  const response = await request(`${adminUrl}/routes`, { headersTimeout: 2_000, bodyTimeout: 2_000 })
  const body = (await response.body.json()) as { revision: number }
  return body.revision
}

async function waitApplied(router: RouterProcess, revision: number, since: number): Promise<number> {
  const deadline = since + PER_CHANGE_DEADLINE_MS
  for (let polls = 0; polls < 100_000; polls++) {
    if ((await routesRevision(router.adminUrl)) >= revision) return performance.now() - since
    if (performance.now() > deadline) break
  }
  return NaN
}

async function measureChanges(registry: RegistryProcess, routers: RouterProcess[], changes: number, label: string): Promise<ChangeSample[]> {
  const samples: ChangeSample[] = []
  for (let change = 0; change < changes; change++) {
    const canary = 1 + (change % 20)
    const putStart = performance.now()
    const revision = await setWeights(registry, 'api', { v1: 100 - canary, v2: canary })
    const answered = performance.now()
    const routerMs = await Promise.all(routers.map((router) => waitApplied(router, revision, answered)))
    const allMs = routerMs.some((value) => Number.isNaN(value)) ? NaN : Math.max(...routerMs)
    samples.push({ revision, putMs: answered - putStart, routerMs, allMs })
    if ((change + 1) % 25 === 0 || change + 1 === changes) progress('propagation', `${label}: ${change + 1}/${changes} changes`)
    await new Promise((resolve) => setTimeout(resolve, PAUSE_BETWEEN_CHANGES_MS))
  }
  return samples
}

function summarize(routerCount: number, samples: ChangeSample[]) {
  const all = samples.map((sample) => sample.allMs)
  const each = samples.flatMap((sample) => sample.routerMs)
  return {
    routers: routerCount,
    changes: samples.length,
    missed: all.filter((value) => Number.isNaN(value)).length,
    allRoutersMs: { p50: quantile(all, 0.5), p99: quantile(all, 0.99), max: quantile(all, 1) },
    eachRouterMs: { p50: quantile(each, 0.5), p99: quantile(each, 0.99) },
    putMs: {
      p50: quantile(
        samples.map((sample) => sample.putMs),
        0.5
      ),
      p99: quantile(
        samples.map((sample) => sample.putMs),
        0.99
      )
    }
  }
}

export async function propagationScenario(context: BenchContext): Promise<ScenarioResult> {
  const name = 'propagation'
  const changes = context.quick ? 20 : 100
  const counts = [1, 10]
  const routers: RouterProcess[] = []
  let registry: RegistryProcess | undefined
  try {
    registry = await startRegistryProcess()
    // Instances that are never called: only the table matters here.
    await registerInstance(registry, 'api', { id: 'api-1', version: 'v1', host: '127.0.0.1', port: 9 })
    await registerInstance(registry, 'api', { id: 'api-2', version: 'v2', host: '127.0.0.1', port: 9 })
    const results: { summary: ReturnType<typeof summarize>; samples: ChangeSample[] }[] = []
    for (const count of counts) {
      progress(name, `starting router processes until ${count} watch the registry`)
      const started = await Promise.all(
        Array.from({ length: count - routers.length }, () =>
          startRouterProcess({ registryUrl: (registry as RegistryProcess).url, token: (registry as RegistryProcess).routerToken })
        )
      )
      routers.push(...started)
      const samples = await measureChanges(registry, routers, changes, `${count} router${count === 1 ? '' : 's'}`)
      const summary = summarize(count, samples)
      results.push({ summary, samples })
      progress(name, `${count} router(s): all applied p50 ${fixed(summary.allRoutersMs.p50)} ms, p99 ${fixed(summary.allRoutersMs.p99)} ms`)
    }
    return {
      name,
      notes: [
        'routers are real router processes (node dist/cli/main.js router), unpinned, all watching one registry process; the registry journals and fsyncs each change before answering and before publishing it',
        `time runs from the PUT's 200 to the first /routes answer that shows the new revision, each router polled back to back; ${changes} changes per row, ${PAUSE_BETWEEN_CHANGES_MS} ms apart`,
        'target (read, never asserted): p99 under 100 ms'
      ],
      tables: [
        {
          title: `Weight propagation: PUT 200 -> every watching router applied it (${changes} changes)`,
          columns: ['routers', 'all applied p50 ms', 'all applied p99 ms', 'max ms', 'each router p50 ms', 'each router p99 ms', 'PUT p50 ms', 'PUT p99 ms', 'missed'],
          rows: results.map(({ summary }) => [
            integer(summary.routers),
            fixed(summary.allRoutersMs.p50),
            fixed(summary.allRoutersMs.p99),
            fixed(summary.allRoutersMs.max),
            fixed(summary.eachRouterMs.p50),
            fixed(summary.eachRouterMs.p99),
            fixed(summary.putMs.p50),
            fixed(summary.putMs.p99),
            integer(summary.missed)
          ])
        }
      ],
      data: { changes, routersAre: 'router processes', deadlineMs: PER_CHANGE_DEADLINE_MS, results }
    }
  } finally {
    await Promise.all(routers.map((router) => router.child.stop()))
    await registry?.close().catch(() => {})
  }
}
