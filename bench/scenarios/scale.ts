import { performance } from 'node:perf_hooks'
import { request } from 'undici'
import { startApiUpstreams } from '../lib/api-upstreams.js'
import type { Child } from '../lib/children.js'
import { fixed, integer, times } from '../lib/format.js'
import { callJson, statusOf, waitForHttp, waitUntil } from '../lib/http.js'
import { runLoad } from '../lib/load-runner.js'
import type { LoadSummary } from '../lib/load-spec.js'
import { treeCpuSeconds, treePeakRssMiB, treeRssMiB } from '../lib/proc-stats.js'
import { progress } from '../lib/progress.js'
import { median, quantile, ratio } from '../lib/stats.js'
import { registerInstance, setWeights, startRegistryProcess, startRouterProcess, type RegistryProcess, type RouterProcess } from '../lib/switchyard-processes.js'
import type { BenchContext, ScenarioResult } from './scenario.js'

/**
 * A large table: a registry holding SERVICES x 3 versions x 10 instances (registered
 * through the HTTP API, 64 requests in flight), plus the real `api` service. How long a
 * router takes to apply the first snapshot and one change, its memory, and its
 * requests/s with that table loaded against a router whose table holds `api` alone.
 */
const VERSIONS = ['v1', 'v2', 'v3'] as const
const INSTANCES_PER_VERSION = 10
const CONCURRENCY = 64
const CHANGES = 10

async function inParallel<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) await work(items[next++] as T)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
}

/** Bytes of the registry's first watch event (the snapshot a router starts from). */
async function snapshotBytes(registry: RegistryProcess): Promise<number> {
  const controller = new AbortController()
  const response = await request(`${registry.url}/v1/watch`, { headers: { authorization: `Bearer ${registry.readerToken}` }, signal: controller.signal })
  let bytes = 0
  let tail = ''
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    bytes += chunk.length
    tail = (tail + chunk.toString('latin1')).slice(-4)
    // the first event ends at its first blank line
    if (tail.includes('\n\n') || bytes > 512 * 2 ** 20) break
  }
  controller.abort()
  return bytes
}

async function readyRevision(router: RouterProcess): Promise<number> {
  const answer = await callJson('GET', `${router.adminUrl}/readyz`)
  return answer.status === 200 ? (answer.json as { revision: number }).revision : -1
}

interface RouterStart {
  /** spawn -> admin listener up (Node start-up, config, listen) */
  adminUpMs: number
  /** admin up -> /readyz 200: connect, receive and parse the snapshot, build the table */
  firstSnapshotMs: number
  rssAfterReadyMiB: number
}

async function startTimedRouter(registry: RegistryProcess, cpus: string | undefined): Promise<{ router: RouterProcess; start: RouterStart }> {
  const spawned = performance.now()
  const router = await startRouterProcess({ registryUrl: registry.url, token: registry.routerToken, cpus, waitReady: false })
  const alive = () => {
    if (router.child.process.exitCode !== null) throw new Error(`the router exited (${router.child.process.exitCode}): ${router.child.output().slice(-2000)}`)
  }
  await waitUntil(async () => (alive(), (await statusOf(`${router.adminUrl}/healthz`)) === 200 ? true : undefined), 'router admin listener', 30_000, 2)
  const adminUp = performance.now()
  await waitUntil(async () => (alive(), (await statusOf(`${router.adminUrl}/readyz`)) === 200 ? true : undefined), 'router first snapshot', 120_000, 2)
  const ready = performance.now()
  await waitForHttp(`${router.proxyUrl}/api/hello`, 'router (first proxied request)', router.child)
  return { router, start: { adminUpMs: adminUp - spawned, firstSnapshotMs: ready - adminUp, rssAfterReadyMiB: treeRssMiB(router.child.pid) } }
}

export async function scaleScenario(context: BenchContext): Promise<ScenarioResult> {
  const name = 'scale'
  const services = context.quick ? 50 : 1_000
  const instanceCount = services * VERSIONS.length * INSTANCES_PER_VERSION
  const rounds = 3
  const seconds = context.quick ? 1 : 4
  const { pinning } = context
  const upstreams: Child[] = []
  const registries: RegistryProcess[] = []
  const routers: RouterProcess[] = []
  try {
    const [{ port: portA }, { port: portB }] = await startApiUpstreams(pinning.others, upstreams)
    const withApi = async (registry: RegistryProcess) => {
      await registerInstance(registry, 'api', { id: 'api-v1-a', version: 'v1', host: '127.0.0.1', port: portA })
      await registerInstance(registry, 'api', { id: 'api-v2-b', version: 'v2', host: '127.0.0.1', port: portB })
      await setWeights(registry, 'api', { v1: 90, v2: 10 })
    }
    // Leases long enough that nothing expires while the scenario runs (no heartbeats are sent).
    const small = await startRegistryProcess({ cpus: pinning.others, leaseSeconds: 3_600 })
    registries.push(small)
    await withApi(small)
    const big = await startRegistryProcess({ cpus: pinning.others, leaseSeconds: 3_600 })
    registries.push(big)
    await withApi(big)

    progress(
      name,
      `registering ${integer(services)} services x ${VERSIONS.length} versions x ${INSTANCES_PER_VERSION} instances = ${integer(instanceCount)} instances over HTTP (${CONCURRENCY} in flight)`
    )
    const serviceNames = Array.from({ length: services }, (_, index) => `svc-${String(index).padStart(4, '0')}`)
    const registrations = serviceNames.flatMap((service, serviceIndex) =>
      VERSIONS.flatMap((version) =>
        Array.from({ length: INSTANCES_PER_VERSION }, (_, instance) => ({
          service,
          id: `${service}-${version}-${instance}`,
          version,
          host: '127.0.0.1',
          // never called: only /api is routed, to the real instances
          port: 20_000 + ((serviceIndex * 30 + instance) % 40_000)
        }))
      )
    )
    // v1 of each service first, so that it is the version that starts with 100%.
    const registerStart = performance.now()
    const firstVersion = registrations.filter((registration) => registration.version === 'v1' && registration.id.endsWith('-0'))
    await inParallel(firstVersion, CONCURRENCY, (registration) => registerInstance(big, registration.service, registration))
    const first = new Set(firstVersion)
    const rest = registrations.filter((registration) => !first.has(registration))
    let done = firstVersion.length
    await inParallel(rest, CONCURRENCY, async (registration) => {
      await registerInstance(big, registration.service, registration)
      if (++done % 5_000 === 0) progress(name, `${integer(done)}/${integer(instanceCount)} registered`)
    })
    await inParallel(serviceNames, CONCURRENCY, async (service) => void (await setWeights(big, service, { v1: 80, v2: 15, v3: 5 })))
    const registerSeconds = (performance.now() - registerStart) / 1000
    progress(name, `registered ${integer(instanceCount)} instances and set ${integer(services)} splits in ${fixed(registerSeconds, 1)} s`)
    const bigSnapshotBytes = await snapshotBytes(big)
    const smallSnapshotBytes = await snapshotBytes(small)

    progress(name, 'starting the router on the large table, then one on the 1-service table')
    const bigRouter = await startTimedRouter(big, pinning.proxy)
    routers.push(bigRouter.router)
    const smallRouter = await startTimedRouter(small, pinning.proxy)
    routers.push(smallRouter.router)

    progress(name, `applying ${CHANGES} weight changes on the large table (polling /readyz for the revision)`)
    const changeMs: number[] = []
    for (let change = 0; change < CHANGES; change++) {
      const service = serviceNames[(change * 37) % serviceNames.length] as string
      const revision = await setWeights(big, service, change % 2 === 0 ? { v1: 70, v2: 20, v3: 10 } : { v1: 80, v2: 15, v3: 5 })
      const since = performance.now()
      await waitUntil(async () => ((await readyRevision(bigRouter.router)) >= revision ? true : undefined), `revision ${revision}`, 10_000, 0)
      changeMs.push(performance.now() - since)
    }
    const routesStart = performance.now()
    const routesAnswer = await request(`${bigRouter.router.adminUrl}/routes`)
    const routesBytes = (await routesAnswer.body.arrayBuffer()).byteLength
    const routesMs = performance.now() - routesStart

    const loads: { table: 'large' | 'small'; round: number; load: LoadSummary; cpuSecondsPer10k: number }[] = []
    const targets = [
      { table: 'large' as const, router: bigRouter.router },
      { table: 'small' as const, router: smallRouter.router }
    ]
    for (const target of targets)
      await runLoad({ url: `${target.router.proxyUrl}/api/hello`, connections: context.connections, durationSeconds: context.quick ? 1 : 2 }, pinning.others)
    for (let round = 1; round <= rounds; round++) {
      for (const target of targets) {
        const before = treeCpuSeconds(target.router.child.pid)
        const load = await runLoad({ url: `${target.router.proxyUrl}/api/hello`, connections: context.connections, durationSeconds: seconds }, pinning.others)
        const cpu = treeCpuSeconds(target.router.child.pid) - before
        loads.push({ table: target.table, round, load, cpuSecondsPer10k: load.requests === 0 ? NaN : (cpu / load.requests) * 10_000 })
        progress(name, `round ${round} ${target.table} table: ${integer(load.rps)} req/s, p99 ${fixed(load.latencyMs.p99)} ms`)
      }
    }
    const byTable = (table: 'large' | 'small') => {
      const mine = loads.filter((entry) => entry.table === table)
      return {
        rps: median(mine.map((entry) => entry.load.rps)),
        p99: median(mine.map((entry) => entry.load.latencyMs.p99)),
        cpuSecondsPer10k: median(mine.map((entry) => entry.cpuSecondsPer10k)),
        errors: mine.reduce((sum, entry) => sum + entry.load.errors + entry.load.non2xx, 0)
      }
    }
    const large = byTable('large')
    const one = byTable('small')
    const bigPeak = treePeakRssMiB(bigRouter.router.child.pid)
    const smallPeak = treePeakRssMiB(smallRouter.router.child.pid)
    const summary = {
      services,
      instances: instanceCount,
      registeredVia: `HTTP API, ${CONCURRENCY} requests in flight`,
      registerSeconds,
      registrationsPerSecond: (instanceCount + services) / registerSeconds,
      snapshotBytes: { large: bigSnapshotBytes, small: smallSnapshotBytes },
      routerStart: { large: bigRouter.start, small: smallRouter.start },
      changeApplyMs: { p50: median(changeMs), max: quantile(changeMs, 1), samples: changeMs },
      routesEndpoint: { bytes: routesBytes, ms: routesMs },
      peakRssMiB: { large: bigPeak, small: smallPeak },
      load: { large, small: one, rounds: loads }
    }
    return {
      name,
      notes: [
        `the large registry holds ${integer(services)} services x 3 versions x 10 instances (weights 80/15/5) plus the real api service, registered through the HTTP API with ${CONCURRENCY} requests in flight (${integer(summary.registrationsPerSecond)} writes/s, each journaled and fsynced)`,
        'routers are router processes pinned like the proxy under test; the first snapshot time runs from the admin listener answering to /readyz answering 200; a change is timed from its PUT 200 to /readyz showing its revision (/routes would serialise the whole table on every poll)',
        `GET /routes on the large table answers ${fixed(routesBytes / 2 ** 20, 1)} MiB in ${fixed(routesMs, 0)} ms`
      ],
      tables: [
        {
          title: `Scale: a router on ${integer(instanceCount)} instances (${integer(services)} services) vs one on the 1-service table`,
          columns: ['table', 'snapshot MiB', 'first snapshot ms', 'one change ms (p50 / max)', 'RSS after ready MiB', 'peak RSS MiB', 'req/s', 'p99 ms', 'CPU s/10k req', 'errors'],
          rows: [
            [
              `${integer(services)} services`,
              fixed(bigSnapshotBytes / 2 ** 20, 2),
              fixed(bigRouter.start.firstSnapshotMs, 0),
              `${fixed(summary.changeApplyMs.p50, 1)} / ${fixed(summary.changeApplyMs.max, 1)}`,
              fixed(bigRouter.start.rssAfterReadyMiB, 0),
              fixed(bigPeak, 0),
              integer(large.rps),
              fixed(large.p99),
              fixed(large.cpuSecondsPer10k),
              integer(large.errors)
            ],
            [
              '1 service',
              fixed(smallSnapshotBytes / 2 ** 20, 3),
              fixed(smallRouter.start.firstSnapshotMs, 0),
              'n/a',
              fixed(smallRouter.start.rssAfterReadyMiB, 0),
              fixed(smallPeak, 0),
              integer(one.rps),
              fixed(one.p99),
              fixed(one.cpuSecondsPer10k),
              integer(one.errors)
            ]
          ],
          notes: [
            `large vs 1-service: ${times(ratio(large.rps, one.rps))} req/s, ${times(ratio(bigPeak, smallPeak))} peak RSS (median of ${rounds} interleaved rounds x ${seconds} s)`
          ]
        }
      ],
      data: summary
    }
  } finally {
    await Promise.all(routers.map((router) => router.child.stop()))
    for (const registry of registries) await registry.close().catch(() => {})
    await Promise.all(upstreams.map((child) => child.stop()))
  }
}
