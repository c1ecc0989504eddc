import { performance } from 'node:perf_hooks'
import { Client } from 'undici'
import { startApiUpstreams } from '../lib/api-upstreams.js'
import { spawnChild, type Child } from '../lib/children.js'
import { fixed, integer, times } from '../lib/format.js'
import { callJson, waitForHttp } from '../lib/http.js'
import { runLoad, startLoadGenerator } from '../lib/load-runner.js'
import type { LoadSummary } from '../lib/load-spec.js'
import { freePorts } from '../lib/ports.js'
import { cpuSecondsOf, procAvailable, treeCpuSeconds, treePeakRssMiB } from '../lib/proc-stats.js'
import { progress } from '../lib/progress.js'
import { median, ratio, spread } from '../lib/stats.js'
import { cliPath, registerInstance, setWeights, startRegistryProcess, TRACING_OFF, type RegistryProcess } from '../lib/switchyard-processes.js'
import type { BenchContext, ScenarioResult, Table } from './scenario.js'

/**
 * What `switchyard router --workers N` costs per request against the single process: the
 * same upstream (v1 90%, v2 10%) behind one router process, two workers with connections
 * handed out by the primary in turn (node's cluster round-robin, the default on Linux),
 * and two workers accepting from the shared socket themselves (NODE_CLUSTER_SCHED_POLICY=none),
 * loaded in turns at saturation. The router's whole process tree (primary and workers)
 * runs on the proxy's core(s), so every configuration has the same CPU and the figure to
 * read is requests per CPU-second; on a machine with more free cores, raw req/s would grow
 * with the workers instead.
 */
const CONNECTIONS = 64
const HALF_RATE = '1 process, half the rate'

interface Configuration {
  name: string
  label: string
  workers: number
  env: Record<string, string>
}

const CONFIGURATIONS: readonly Configuration[] = [
  { name: '1 process', label: 'router without --workers (the single process, as npm start runs it)', workers: 1, env: {} },
  { name: '2 workers', label: '--workers 2: the primary hands each connection to the workers in turn (cluster round-robin)', workers: 2, env: {} },
  {
    name: '2 workers, kernel',
    label: '--workers 2 with NODE_CLUSTER_SCHED_POLICY=none: the workers accept from the shared socket',
    workers: 2,
    env: { NODE_CLUSTER_SCHED_POLICY: 'none' }
  }
]

interface RunningRouter {
  configuration: Configuration
  child: Child
  url: string
  adminUrl: string
}

export interface WorkersRound {
  /** saturation: closed loop, as fast as answers come; fixed-rate: the same paced load for every configuration */
  phase: 'saturation' | 'fixed-rate'
  round: number
  configuration: string
  load: LoadSummary
  cpuSeconds: number | null
  /** the primary's own share of the tree's CPU (accepting and handing out connections, IPC) */
  primaryCpuShare: number | null
  cpuSecondsPer10k: number | null
  requestsPerCpuSecond: number | null
  /** share of the round's requests served by the busiest worker (0.5 is an even split of two) */
  busiestWorkerShare: number | null
  canarySharePercent: number | null
}

async function startRouter(configuration: Configuration, registry: RegistryProcess, cpus: string | undefined): Promise<RunningRouter> {
  const [port, adminPort] = (await freePorts(2)) as [number, number]
  const args = [cliPath, 'router', '--host', '127.0.0.1', '--port', String(port), '--admin-host', '127.0.0.1', '--admin-port', String(adminPort)]
  if (configuration.workers > 1) args.push('--workers', String(configuration.workers))
  args.push('--registry', registry.url, '--routes', '/api=api', '--log-level', 'warn')
  const child = spawnChild(`router (${configuration.name})`, process.execPath, args, {
    env: { SWITCHYARD_TOKEN: registry.routerToken, ...TRACING_OFF, ...configuration.env },
    cpus
  })
  const adminUrl = `http://127.0.0.1:${adminPort}`
  // /readyz answers 200 once every worker has a table.
  await waitForHttp(`${adminUrl}/readyz`, `the router (${configuration.name})`, child, 120_000)
  return { configuration, child, url: `http://127.0.0.1:${port}/api/hello`, adminUrl }
}

/** Requests each worker has served so far (from the primary's /workers); empty for a single process. */
async function workerRequests(router: RunningRouter): Promise<Map<number, number>> {
  if (router.configuration.workers === 1) return new Map()
  const answer = await callJson('GET', `${router.adminUrl}/workers`)
  const workers = (answer.json as { workers: { pid: number; requests: number }[] }).workers
  return new Map(workers.map((worker) => [worker.pid, worker.requests]))
}

async function hitsOf(port: number): Promise<number> {
  return ((await callJson('GET', `http://127.0.0.1:${port}/__hits`)).json as { hits: number }).hits
}

export async function workersScenario(context: BenchContext): Promise<ScenarioResult> {
  const name = 'workers'
  const notes: string[] = []
  const { pinning } = context
  if (!procAvailable()) return { name, skipped: '/proc is not readable here: CPU per request cannot be measured', notes, tables: [], data: {} }
  notes.push(pinning.enabled ? `${pinning.description}; the router's primary and workers all on core(s) ${pinning.proxy}` : pinning.description)
  const warmupSeconds = context.quick ? 0 : 2
  const children: Child[] = []
  const routers: RunningRouter[] = []
  let registry: RegistryProcess | undefined
  try {
    const [v1, v2] = await startApiUpstreams(pinning.others, children)
    startLoadGenerator(pinning.others)
    registry = await startRegistryProcess({ cpus: pinning.others })
    for (const upstream of [v1, v2]) await registerInstance(registry, 'api', { id: upstream.id, version: upstream.version, host: '127.0.0.1', port: upstream.port })
    await setWeights(registry, 'api', { v1: 90, v2: 10 })
    for (const configuration of CONFIGURATIONS) {
      progress(name, `starting ${configuration.name}`)
      routers.push(await startRouter(configuration, registry, pinning.proxy))
    }

    const rounds: WorkersRound[] = []
    const measure = async (router: RunningRouter, phase: WorkersRound['phase'], round: number, seconds: number, record: boolean, rate?: number, as = router.configuration.name) => {
      const hitsBefore = await Promise.all([hitsOf(v1.port), hitsOf(v2.port)])
      const workersBefore = await workerRequests(router)
      const cpuBefore = treeCpuSeconds(router.child.pid)
      const primaryBefore = cpuSecondsOf(router.child.pid)
      const started = performance.now()
      const load = await runLoad({ url: router.url, connections: context.connections, durationSeconds: seconds, ...(rate ? { rate } : {}) }, pinning.others)
      const cpuSeconds = treeCpuSeconds(router.child.pid) - cpuBefore
      const primarySeconds = cpuSecondsOf(router.child.pid) - primaryBefore
      const elapsed = (performance.now() - started) / 1000
      if (!record) return
      const hitsAfter = await Promise.all([hitsOf(v1.port), hitsOf(v2.port)])
      const served = hitsAfter.map((after, index) => after - (hitsBefore[index] as number))
      const total = (served[0] as number) + (served[1] as number)
      // Workers tell the primary their counts every second (the default report interval): wait for the round's last.
      if (router.configuration.workers > 1) await new Promise((resolve) => setTimeout(resolve, 1_200))
      const workersAfter = await workerRequests(router)
      const perWorker = [...workersAfter].map(([pid, requests]) => requests - (workersBefore.get(pid) ?? 0))
      const workerTotal = perWorker.reduce((sum, count) => sum + count, 0)
      rounds.push({
        phase,
        round,
        configuration: as,
        load,
        cpuSeconds,
        primaryCpuShare: router.configuration.workers > 1 && cpuSeconds > 0 ? primarySeconds / cpuSeconds : null,
        cpuSecondsPer10k: load.requests > 0 ? (cpuSeconds / load.requests) * 10_000 : null,
        requestsPerCpuSecond: cpuSeconds > 0 ? load.requests / cpuSeconds : null,
        busiestWorkerShare: workerTotal > 0 ? Math.max(...perWorker) / workerTotal : null,
        canarySharePercent: total > 0 ? ((served[1] as number) / total) * 100 : null
      })
      const last = rounds[rounds.length - 1] as WorkersRound
      progress(
        name,
        `${phase} round ${round} ${as}: ${integer(load.rps)} req/s, ${integer(last.requestsPerCpuSecond)} req per CPU-second ` +
          `(${fixed((cpuSeconds / elapsed) * 100, 0)}% of a core), p99 ${fixed(load.latencyMs.p99)} ms, ${load.errors + load.non2xx} errors` +
          (last.busiestWorkerShare === null ? '' : `, busiest worker ${fixed(last.busiestWorkerShare * 100, 0)}%`)
      )
    }
    for (const router of warmupSeconds > 0 ? routers : []) {
      progress(name, `warm-up ${router.configuration.name} (${warmupSeconds} s)`)
      await measure(router, 'saturation', 0, warmupSeconds, false)
    }
    for (let round = 1; round <= context.rounds; round++) for (const router of routers) await measure(router, 'saturation', round, context.durationSeconds, true)
    // CPU per request at equal load: half of what the slowest configuration sustained (on a
    // busy machine a steadier figure than saturation, where the load generator's share varies).
    const slowest = Math.min(...routers.map((router) => median(rounds.filter((round) => round.configuration === router.configuration.name).map((round) => round.load.rps))))
    const rate = Math.max(100, Math.floor((Number.isFinite(slowest) ? slowest : 2_000) / 2 / 100) * 100)
    const fixedRounds = context.quick ? 1 : 3
    const fixedSeconds = context.quick ? 1 : 3
    progress(name, `fixed rate: ${rate} req/s for every configuration`)
    // Each of two workers sees half the rate: the single process at that rate tells how much
    // of the workers' cost per request is only a process doing less per wake-up.
    const single = routers.find((router) => router.configuration.workers === 1)
    for (let round = 1; round <= fixedRounds; round++) {
      for (const router of routers) await measure(router, 'fixed-rate', round, fixedSeconds, true, rate)
      if (single) await measure(single, 'fixed-rate', round, fixedSeconds, true, Math.round(rate / 2), HALF_RATE)
    }

    // How new connections spread over the workers (a connection stays on its worker for its
    // life): CONNECTIONS clients connecting at once, and one after another on an idle router
    // (each keeping its connection open until all are in), one request each.
    const spreads = new Map<string, number[]>()
    for (let round = 1; round <= fixedRounds * 2; round++) {
      for (const router of routers.filter((each) => each.configuration.workers > 1)) {
        for (const mode of ['at once', 'one after another'] as const) {
          const before = await workerRequests(router)
          const clients = Array.from({ length: CONNECTIONS }, () => new Client(new URL(router.url).origin))
          const one = async (client: Client) => (await client.request({ method: 'GET', path: new URL(router.url).pathname })).body.dump()
          if (mode === 'at once') await Promise.all(clients.map(one))
          else for (const client of clients) await one(client)
          await Promise.all(clients.map((client) => client.close()))
          await new Promise((resolve) => setTimeout(resolve, 1_200))
          const after = await workerRequests(router)
          const perWorker = [...after].map(([pid, requests]) => requests - (before.get(pid) ?? 0))
          const share =
            Math.max(...perWorker) /
            Math.max(
              1,
              perWorker.reduce((sum, count) => sum + count, 0)
            )
          const key = `${router.configuration.name}, ${mode}`
          spreads.set(key, [...(spreads.get(key) ?? []), share])
          progress(name, `connection spread round ${round} ${key}: the busiest worker took ${fixed(share * 100, 0)}% of ${CONNECTIONS} connections`)
        }
      }
    }

    const summaries = routers.map((router) =>
      summarize(
        router,
        rounds.filter((round) => round.phase === 'saturation')
      )
    )
    const fixedRateRounds = rounds.filter((round) => round.phase === 'fixed-rate')
    const atRate = routers.map((router) => summarize(router, fixedRateRounds))
    if (single) atRate.push(summarize(single, fixedRateRounds, HALF_RATE))
    return {
      name,
      notes: [
        ...notes,
        'req per CPU-second: requests answered per second of CPU (user + system) used by the whole router (primary and workers, from /proc); the workers target is 2 workers within 10% of the single process (0.90x or more)',
        "busiest worker: the share of a round's requests the busier of the two workers served (from the primary's /workers; 50% is an even split)",
        'the 1-process row is the router as the proxy scenario runs it (the same process and code path): compare its figures there for regressions'
      ],
      tables: [workersTable(summaries, context), fixedRateTable(atRate, rate, fixedRounds, fixedSeconds), spreadTable(spreads)],
      data: {
        connections: context.connections,
        roundsPerConfiguration: context.rounds,
        secondsPerRound: context.durationSeconds,
        warmupSeconds,
        fixedRate: { requestsPerSecond: rate, rounds: fixedRounds, secondsPerRound: fixedSeconds },
        configurations: CONFIGURATIONS,
        rounds,
        summaries,
        fixedRateSummaries: atRate,
        connectionSpread: Object.fromEntries(spreads)
      }
    }
  } finally {
    for (const router of routers) await router.child.stop(10_000).catch(() => {})
    await registry?.close().catch(() => {})
    await Promise.all(children.map((child) => child.stop()))
  }
}

interface WorkersSummary {
  configuration: string
  label: string
  rps: number
  rpsSpread: number
  p99: number
  errors: number
  cpuSecondsPer10k: number
  requestsPerCpuSecond: number
  primaryCpuShare: number | null
  busiestWorkerShare: number | null
  canarySharePercent: number
  peakRssMiB: number
}

function summarize(router: RunningRouter, rounds: readonly WorkersRound[], name = router.configuration.name): WorkersSummary {
  const mine = rounds.filter((round) => round.configuration === name)
  const values = (pick: (round: WorkersRound) => number | null) => mine.map(pick).filter((value): value is number => value !== null)
  const primary = values((round) => round.primaryCpuShare)
  const busiest = values((round) => round.busiestWorkerShare)
  return {
    configuration: name,
    label: name === HALF_RATE ? 'the single process at half the rate: the load each of two workers sees' : router.configuration.label,
    rps: median(mine.map((round) => round.load.rps)),
    rpsSpread: spread(mine.map((round) => round.load.rps)),
    p99: median(mine.map((round) => round.load.latencyMs.p99)),
    errors: mine.reduce((sum, round) => sum + round.load.errors + round.load.non2xx, 0),
    cpuSecondsPer10k: median(values((round) => round.cpuSecondsPer10k)),
    requestsPerCpuSecond: median(values((round) => round.requestsPerCpuSecond)),
    primaryCpuShare: primary.length > 0 ? median(primary) : null,
    busiestWorkerShare: busiest.length > 0 ? median(busiest) : null,
    canarySharePercent: median(values((round) => round.canarySharePercent)),
    peakRssMiB: treePeakRssMiB(router.child.pid)
  }
}

const share = (value: number | null): string => (value === null ? 'n/a' : `${fixed(value * 100, 0)}%`)

/** CPU s/10k req, req per CPU-second, vs 1 process, primary CPU, busiest worker: the columns both tables share. */
function cpuCells(summary: WorkersSummary, single: WorkersSummary | undefined): string[] {
  return [
    fixed(summary.cpuSecondsPer10k),
    integer(summary.requestsPerCpuSecond),
    times(ratio(summary.requestsPerCpuSecond, single?.requestsPerCpuSecond ?? NaN)),
    share(summary.primaryCpuShare),
    share(summary.busiestWorkerShare)
  ]
}

function workersTable(summaries: readonly WorkersSummary[], context: BenchContext): Table {
  const single = summaries.find((summary) => summary.configuration === '1 process')
  return {
    title: `Router workers at saturation: ${context.connections} keep-alive connections, median of ${context.rounds} rounds x ${context.durationSeconds} s`,
    columns: [
      'configuration',
      'req/s',
      'spread',
      'p99 ms',
      'errors',
      'CPU s/10k req',
      'req per CPU-second',
      'vs 1 process',
      'primary CPU',
      'busiest worker',
      'v2 share %',
      'peak RSS MiB'
    ],
    rows: summaries.map((summary) => [
      summary.configuration,
      integer(summary.rps),
      `${fixed(summary.rpsSpread * 100, 0)}%`,
      fixed(summary.p99),
      integer(summary.errors),
      ...cpuCells(summary, single),
      fixed(summary.canarySharePercent, 1),
      fixed(summary.peakRssMiB, 0)
    ]),
    notes: ['peak RSS: VmHWM summed over the process tree (primary and workers)']
  }
}

function fixedRateTable(summaries: readonly WorkersSummary[], rate: number, rounds: number, seconds: number): Table {
  const single = summaries.find((summary) => summary.configuration === '1 process')
  return {
    title: `Router workers at a fixed rate of ${rate} req/s (equal load for all), median of ${rounds} rounds x ${seconds} s`,
    columns: ['configuration', 'p99 ms', 'errors', 'CPU s/10k req', 'req per CPU-second', 'vs 1 process', 'primary CPU', 'busiest worker'],
    rows: summaries.map((summary) => [summary.configuration, fixed(summary.p99), integer(summary.errors), ...cpuCells(summary, single)]),
    notes: [
      `${HALF_RATE}: the single process at ${Math.round(rate / 2)} req/s, what each of two workers sees; its ratio close to the workers' says their extra CPU per request is a process doing less per wake-up, not the workers' machinery`
    ]
  }
}

function spreadTable(spreads: ReadonlyMap<string, readonly number[]>): Table {
  return {
    title: `How ${CONNECTIONS} new connections spread over 2 workers (one request each, the connections opened at once or one after another)`,
    columns: ['configuration, connections', 'busiest worker, median', 'busiest worker, worst', 'rounds'],
    rows: [...spreads].map(([configuration, shares]) => [
      configuration,
      `${fixed(median([...shares]) * 100, 0)}%`,
      `${fixed(Math.max(...shares) * 100, 0)}%`,
      String(shares.length)
    ]),
    notes: ['50% is an even split; a keep-alive or HTTP/2 connection stays on the worker that took it, so this is how the load spreads too']
  }
}
