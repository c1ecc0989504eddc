import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { spawnChild, type Child } from '../lib/children.js'
import { fixed, integer, times } from '../lib/format.js'
import { callJson, waitForHttp } from '../lib/http.js'
import { loadGeneratorPids, runLoad, startLoadGenerator } from '../lib/load-runner.js'
import type { LoadSummary } from '../lib/load-spec.js'
import { freePorts } from '../lib/ports.js'
import { probeForeignLoad } from '../lib/foreign-load.js'
import { procAvailable, treeCpuSeconds, treePeakRssMiB, treeRunqueueWaitSeconds } from '../lib/proc-stats.js'
import { progress } from '../lib/progress.js'
import { median, ratio, spread } from '../lib/stats.js'
import { registerInstance, setWeights, startRegistryProcess, type RegistryProcess } from '../lib/switchyard-processes.js'
import type { WeightedTarget } from '../peers/weighted-targets.js'
import { CONFIGURATIONS, type RunningConfiguration } from './proxy-configurations.js'
import type { BenchContext, ScenarioResult, Table } from './scenario.js'

/**
 * The proxy scenario: the same two-instance upstream (v1 at 90%, v2 at 10%) behind each
 * configuration, loaded in turns (A B C A B C ...) so that drift on a shared machine hits
 * every configuration alike. Three phases: saturation (closed loop, as fast as answers
 * come) for throughput and CPU per request; a fixed rate that every configuration can
 * sustain, for latency at equal load; and one connection sending one request at a time,
 * for the latency a hop adds to an unloaded request.
 */
export type Phase = 'saturation' | 'fixed-rate' | 'one-connection'

export interface ProxyRound {
  phase: Phase
  round: number
  configuration: string
  load: LoadSummary
  /** CPU seconds (user + system) of the proxy process tree during the round; null for direct */
  cpuSeconds: number | null
  cpuSecondsPer10k: number | null
  /** share of requests the v2 instance (10% by weight) received, in percent */
  canarySharePercent: number | null
  /** share of the machine's CPU used by processes other than the benchmark's during the round, 0..1 */
  foreignLoad: number
  /** share of the round the proxy's threads spent runnable but waiting for a CPU (null for direct) */
  proxyWaited: number | null
}

export interface ProxySummary {
  configuration: string
  label: string
  phase: Phase
  rounds: number
  rps: number
  rpsSpread: number
  p50: number
  p99: number
  p999: number
  errors: number
  cpuSecondsPer10k: number | null
  peakRssMiB: number | null
  canarySharePercent: number | null
  /** median share of the machine used by other processes during its rounds, 0..1 */
  foreignLoad: number
  /** median share of its rounds the proxy spent waiting for a CPU */
  proxyWaited: number | null
}

const SHARE_TARGET_PERCENT = 10

async function hitsOf(origin: string): Promise<number> {
  const answer = await callJson('GET', `${origin}/__hits`)
  return (answer.json as { hits: number }).hits
}

function summarize(rounds: ProxyRound[], configuration: RunningConfiguration, phase: Phase, peakRss: number | null): ProxySummary {
  const mine = rounds.filter((round) => round.configuration === configuration.name && round.phase === phase)
  const cpu = mine.map((round) => round.cpuSecondsPer10k).filter((value): value is number => value !== null)
  const share = mine.map((round) => round.canarySharePercent).filter((value): value is number => value !== null)
  return {
    configuration: configuration.name,
    label: configuration.label,
    phase,
    rounds: mine.length,
    rps: median(mine.map((round) => round.load.rps)),
    rpsSpread: spread(mine.map((round) => round.load.rps)),
    p50: median(mine.map((round) => round.load.latencyMs.p50)),
    p99: median(mine.map((round) => round.load.latencyMs.p99)),
    p999: median(mine.map((round) => round.load.latencyMs.p999)),
    errors: mine.reduce((sum, round) => sum + round.load.errors + round.load.non2xx, 0),
    cpuSecondsPer10k: cpu.length > 0 ? median(cpu) : null,
    peakRssMiB: peakRss,
    canarySharePercent: share.length > 0 ? median(share) : null,
    foreignLoad: median(mine.map((round) => round.foreignLoad)),
    proxyWaited: configuration.pid === undefined ? null : median(mine.map((round) => round.proxyWaited ?? NaN))
  }
}

export async function proxyScenario(context: BenchContext): Promise<ScenarioResult> {
  const notes: string[] = []
  const skipped: { configuration: string; reason: string }[] = []
  const name = 'proxy'
  if (!procAvailable()) notes.push('/proc is not readable here: CPU seconds and peak RSS are not reported')
  const { pinning } = context
  progress(name, pinning.description)
  notes.push(pinning.description)

  // --quick is a smoke run: no warm-up and one fixed-rate round (autocannon ends on whole seconds).
  const warmupSeconds = context.quick ? 0 : 2
  const fixedRounds = context.quick ? 1 : 3
  const fixedSeconds = context.quick ? 1 : 3
  const oneConnectionSeconds = context.quick ? 1 : 2
  const tempDir = await mkdtemp(join(tmpdir(), 'switchyard-bench-proxy-'))
  const upstreamScript = fileURLToPath(new URL('../servers/upstream-server.js', import.meta.url))
  const upstreams: Child[] = []
  let sink: Child | undefined
  const running: RunningConfiguration[] = []
  let registry: RegistryProcess | undefined
  try {
    // The upstream: two instances, two versions, each its own process.
    const [portA, portB] = (await freePorts(2)) as [number, number]
    const instances = [
      { id: 'api-v1-a', version: 'v1', port: portA, weight: 90 },
      { id: 'api-v2-b', version: 'v2', port: portB, weight: 10 }
    ]
    for (const instance of instances) {
      const child = spawnChild(`upstream ${instance.id}`, process.execPath, [upstreamScript, String(instance.port), instance.version, instance.id], { cpus: pinning.others })
      upstreams.push(child)
      await waitForHttp(`http://127.0.0.1:${instance.port}/__hits`, `upstream ${instance.id}`, child)
    }
    const targets: WeightedTarget[] = instances.map((instance) => ({ origin: `http://127.0.0.1:${instance.port}`, weight: instance.weight }))
    progress(name, `upstream: ${instances.map((instance) => `${instance.id} (${instance.version}, weight ${instance.weight}) on :${instance.port}`).join(', ')}`)

    startLoadGenerator(pinning.others)
    // The tracing configurations export to a stand-in collector on the load generator's core.
    const [sinkPort] = (await freePorts(1)) as [number]
    const otlpSink = `http://127.0.0.1:${sinkPort}`
    sink = spawnChild('OTLP sink', process.execPath, [fileURLToPath(new URL('../servers/otlp-sink.js', import.meta.url)), String(sinkPort)], { cpus: pinning.others })
    await waitForHttp(`${otlpSink}/__received`, 'the OTLP sink', sink)
    registry = await startRegistryProcess({ cpus: pinning.others })
    for (const instance of instances) await registerInstance(registry, 'api', { id: instance.id, version: instance.version, host: '127.0.0.1', port: instance.port })
    await setWeights(registry, 'api', { v1: 90, v2: 10 })

    for (const definition of CONFIGURATIONS) {
      if (context.configurations && !context.configurations.includes(definition.name)) continue
      const missing = definition.missing()
      if (missing) {
        progress(name, `skipped: ${definition.name}: ${missing}`)
        skipped.push({ configuration: definition.name, reason: missing })
        continue
      }
      progress(name, `starting ${definition.name}`)
      running.push(await definition.start({ targets, registry, pinning, tempDir, otlpSink }))
    }

    const rounds: ProxyRound[] = []
    const measure = async (
      phase: Phase,
      round: number,
      configuration: RunningConfiguration,
      seconds: number,
      rate: number | undefined,
      record: boolean,
      connections = context.connections
    ) => {
      const hitsBefore = await Promise.all(targets.map((target) => hitsOf(target.origin)))
      const probe = probeForeignLoad([
        ...running.map((entry) => entry.pid).filter((pid): pid is number => pid !== undefined),
        ...upstreams.map((child) => child.pid),
        ...(registry ? [registry.child.pid] : []),
        ...(sink ? [sink.pid] : []),
        ...loadGeneratorPids()
      ])
      const cpuBefore = configuration.pid === undefined ? 0 : treeCpuSeconds(configuration.pid)
      const waitBefore = configuration.pid === undefined ? 0 : treeRunqueueWaitSeconds(configuration.pid)
      const roundStart = performance.now()
      const load = await runLoad({ url: configuration.url, connections, durationSeconds: seconds, ...(rate ? { rate } : {}) }, pinning.others)
      const cpuAfter = configuration.pid === undefined ? 0 : treeCpuSeconds(configuration.pid)
      const foreignLoad = probe.finish()
      const proxyWaited = configuration.pid === undefined ? null : (treeRunqueueWaitSeconds(configuration.pid) - waitBefore) / ((performance.now() - roundStart) / 1000)
      const hitsAfter = await Promise.all(targets.map((target) => hitsOf(target.origin)))
      if (!record) return
      const served = hitsAfter.map((after, index) => after - (hitsBefore[index] as number))
      const total = served.reduce((sum, count) => sum + count, 0)
      const cpuSeconds = configuration.pid === undefined || !procAvailable() ? null : cpuAfter - cpuBefore
      rounds.push({
        phase,
        round,
        configuration: configuration.name,
        load,
        cpuSeconds,
        cpuSecondsPer10k: cpuSeconds === null || load.requests === 0 ? null : (cpuSeconds / load.requests) * 10_000,
        canarySharePercent: configuration.pid === undefined || total === 0 ? null : ((served[1] as number) / total) * 100,
        foreignLoad,
        proxyWaited
      })
      const last = rounds[rounds.length - 1] as ProxyRound
      progress(
        name,
        `${phase} round ${round} ${configuration.name}: ${integer(load.rps)} req/s, p99 ${fixed(load.latencyMs.p99)} ms, ` +
          `${load.errors + load.non2xx} errors${last.cpuSecondsPer10k === null ? '' : `, ${fixed(last.cpuSecondsPer10k)} CPU s/10k, proxy waited for a CPU ${fixed((proxyWaited ?? NaN) * 100, 0)}%`}, other load ${fixed(foreignLoad * 100, 0)}%`
      )
    }

    for (const configuration of warmupSeconds > 0 ? running : []) {
      progress(name, `warm-up ${configuration.name} (${warmupSeconds} s)`)
      await measure('saturation', 0, configuration, warmupSeconds, undefined, false)
    }
    for (let round = 1; round <= context.rounds; round++) {
      for (const configuration of running) await measure('saturation', round, configuration, context.durationSeconds, undefined, true)
    }

    // Equal load for every configuration: half of what the slowest proxy sustained.
    const proxied = running.filter((configuration) => configuration.pid !== undefined)
    const slowest = Math.min(...proxied.map((configuration) => median(rounds.filter((round) => round.configuration === configuration.name).map((round) => round.load.rps))))
    const rate = Math.max(100, Math.floor((Number.isFinite(slowest) ? slowest : 2000) / 2 / 100) * 100)
    progress(name, `fixed rate: ${rate} req/s for every configuration (half the slowest proxy's saturation throughput)`)
    // The paced sender's first run is cold (its code path, a new pool): warm it first, unrecorded.
    if (running[0]) await measure('fixed-rate', 0, running[0], 1, rate, false)
    for (let round = 1; round <= fixedRounds; round++) {
      for (const configuration of running) await measure('fixed-rate', round, configuration, fixedSeconds, rate, true)
    }

    // Unloaded: one keep-alive connection, one request at a time (after the loaded phases, so
    // every proxy is warm): the latency a hop adds when nothing queues.
    for (let round = 1; round <= fixedRounds; round++) {
      for (const configuration of running) await measure('one-connection', round, configuration, oneConnectionSeconds, undefined, true, 1)
    }

    const peakRss = new Map(running.map((configuration) => [configuration.name, configuration.pid === undefined || !procAvailable() ? null : treePeakRssMiB(configuration.pid)]))
    const summaries = running.flatMap((configuration) =>
      (['saturation', 'fixed-rate', 'one-connection'] as const).map((phase) => summarize(rounds, configuration, phase, peakRss.get(configuration.name) ?? null))
    )
    const tables = proxyTables(summaries, context, rate, fixedRounds, fixedSeconds, oneConnectionSeconds)
    const received = (await callJson('GET', `${otlpSink}/__received`)).json as { exports: number; bytes: number }
    if (running.some((configuration) => configuration.name.startsWith('switchyard-trace'))) {
      notes.push(
        `tracing: the traced configurations exported ${integer(received.exports)} OTLP/HTTP requests (${fixed(received.bytes / 2 ** 20, 1)} MiB) to a stand-in collector on 127.0.0.1 (bench/servers/otlp-sink.ts) on the load generator's core`
      )
    }
    for (const entry of skipped) notes.push(`skipped: ${entry.configuration}: ${entry.reason}`)
    const foreign = rounds.map((round) => round.foreignLoad)
    notes.push(
      `other load: processes outside the benchmark used a median ${fixed(median(foreign) * 100, 0)}% (max ${fixed(Math.max(...foreign.filter(Number.isFinite)) * 100, 0)}%) of the machine's CPU during the rounds (from /proc/stat; other work also fills whatever CPU the benchmark leaves idle); high values, and a high "waited", mean noisy figures`
    )
    notes.push(
      `errors: connection errors, timeouts and non-2xx answers over all rounds; v2 share: the share of requests the 10% instance received (target ${SHARE_TARGET_PERCENT}%), read from the upstreams' own counters`
    )
    return {
      name,
      notes,
      tables,
      data: {
        connections: context.connections,
        roundsPerConfiguration: context.rounds,
        secondsPerRound: context.durationSeconds,
        warmupSeconds,
        fixedRate: { requestsPerSecond: rate, rounds: fixedRounds, secondsPerRound: fixedSeconds },
        oneConnection: { rounds: fixedRounds, secondsPerRound: oneConnectionSeconds },
        otlpSinkReceived: received,
        pinning,
        configurations: running.map((configuration) => ({ name: configuration.name, label: configuration.label })),
        skipped,
        rounds,
        summaries
      }
    }
  } finally {
    for (const configuration of running) await configuration.stop().catch(() => {})
    await registry?.close().catch(() => {})
    await Promise.all(upstreams.map((child) => child.stop()))
    await sink?.stop()
    await rm(tempDir, { recursive: true, force: true })
  }
}

function proxyTables(summaries: ProxySummary[], context: BenchContext, rate: number, fixedRounds: number, fixedSeconds: number, oneConnectionSeconds: number): Table[] {
  const saturation = summaries.filter((summary) => summary.phase === 'saturation')
  const fixedRate = summaries.filter((summary) => summary.phase === 'fixed-rate')
  const oneConnection = summaries.filter((summary) => summary.phase === 'one-connection')
  const directAlone = oneConnection.find((summary) => summary.configuration === 'direct')
  const direct = saturation.find((summary) => summary.configuration === 'direct')
  const switchyard = saturation.find((summary) => summary.configuration === 'switchyard')
  const switchyardFixed = fixedRate.find((summary) => summary.configuration === 'switchyard')
  const tables: Table[] = [
    {
      title: `Proxy at saturation: ${context.connections} keep-alive connections, median of ${context.rounds} rounds x ${context.durationSeconds} s`,
      columns: ['configuration', 'req/s', 'spread', 'p50 ms', 'p99 ms', 'p99.9 ms', 'errors', 'CPU s/10k req', 'peak RSS MiB', 'v2 share %', 'waited', 'vs direct req/s'],
      rows: saturation.map((summary) => [
        summary.configuration,
        integer(summary.rps),
        `${fixed(summary.rpsSpread * 100, 0)}%`,
        fixed(summary.p50),
        fixed(summary.p99),
        fixed(summary.p999),
        integer(summary.errors),
        fixed(summary.cpuSecondsPer10k),
        fixed(summary.peakRssMiB, 0),
        fixed(summary.canarySharePercent, 1),
        summary.proxyWaited === null ? 'n/a' : `${fixed(summary.proxyWaited * 100, 0)}%`,
        times(ratio(summary.rps, direct?.rps ?? NaN))
      ]),
      notes: [
        "spread: (max - min) / median of the rounds' req/s; CPU: user + system seconds of the proxy process per 10,000 requests; peak RSS: VmHWM; waited: share of the round the proxy's main thread was runnable but waiting for a CPU (/proc/<pid>/schedstat): time other work on its core took from it"
      ]
    },
    {
      title: `Proxy at a fixed rate of ${rate} req/s (equal load for all), median of ${fixedRounds} rounds x ${fixedSeconds} s`,
      columns: ['configuration', 'p50 ms', 'p99 ms', 'p99.9 ms', 'errors', 'CPU s/10k req', 'v2 share %'],
      rows: fixedRate.map((summary) => [
        summary.configuration,
        fixed(summary.p50),
        fixed(summary.p99),
        fixed(summary.p999),
        integer(summary.errors),
        fixed(summary.cpuSecondsPer10k),
        fixed(summary.canarySharePercent, 1)
      ])
    },
    {
      title: `One connection, one request at a time (unloaded), median of ${fixedRounds} rounds x ${oneConnectionSeconds} s`,
      columns: ['configuration', 'req/s', 'p50 us', 'p99 us', 'added p50 us (over direct)', 'CPU s/10k req'],
      rows: oneConnection.map((summary) => [
        summary.configuration,
        integer(summary.rps),
        integer(summary.p50 * 1000),
        integer(summary.p99 * 1000),
        directAlone && summary !== directAlone ? integer((summary.p50 - directAlone.p50) * 1000) : 'n/a',
        fixed(summary.cpuSecondsPer10k)
      ]),
      notes: ['added p50: the median latency through the proxy minus the median latency of a direct call, in microseconds (target for switchyard: at most 100)']
    }
  ]
  const peers = saturation.filter((summary) => !summary.configuration.startsWith('switchyard'))
  if (switchyard && peers.length > 0) {
    tables.push({
      title: 'switchyard compared (ratio = switchyard / other, from the medians above; below 1 is better for CPU, RSS and latency, above 1 better for req/s)',
      columns: ['compared with', 'req/s', 'p99 (saturation)', 'p50 (fixed rate)', 'p99 (fixed rate)', 'CPU per request', 'peak RSS'],
      rows: peers.map((other) => {
        const otherFixed = fixedRate.find((summary) => summary.configuration === other.configuration)
        return [
          other.configuration,
          times(ratio(switchyard.rps, other.rps)),
          times(ratio(switchyard.p99, other.p99)),
          times(ratio(switchyardFixed?.p50 ?? NaN, otherFixed?.p50 ?? NaN)),
          times(ratio(switchyardFixed?.p99 ?? NaN, otherFixed?.p99 ?? NaN)),
          times(ratio(switchyard.cpuSecondsPer10k ?? NaN, other.cpuSecondsPer10k ?? NaN)),
          times(ratio(switchyard.peakRssMiB ?? NaN, other.peakRssMiB ?? NaN))
        ]
      }),
      notes: [
        'targets (read, never asserted): req/s at least 1.4x fastify-http-proxy and at least 0.35x haproxy; p99 at saturation at most 0.6x that of fastify-http-proxy; peak RSS at most 120 MB (114 MiB); node-undici-floor is a yardstick (the least a Node.js proxy can do), not a target'
      ]
    })
  }
  if (switchyard) {
    const traced = saturation.filter((summary) => summary.configuration.startsWith('switchyard-trace'))
    if (traced.length > 0) {
      tables.push({
        title: 'What tracing costs (ratio = traced / switchyard without tracing)',
        columns: ['configuration', 'req/s', 'p99 (saturation)', 'p50 (fixed rate)', 'p99 (fixed rate)', 'CPU per request', 'peak RSS'],
        rows: traced.map((summary) => {
          const tracedFixed = fixedRate.find((entry) => entry.configuration === summary.configuration)
          return [
            summary.configuration,
            times(ratio(summary.rps, switchyard.rps)),
            times(ratio(summary.p99, switchyard.p99)),
            times(ratio(tracedFixed?.p50 ?? NaN, switchyardFixed?.p50 ?? NaN)),
            times(ratio(tracedFixed?.p99 ?? NaN, switchyardFixed?.p99 ?? NaN)),
            times(ratio(summary.cpuSecondsPer10k ?? NaN, switchyard.cpuSecondsPer10k ?? NaN)),
            times(ratio(summary.peakRssMiB ?? NaN, switchyard.peakRssMiB ?? NaN))
          ]
        })
      })
    }
  }
  return tables
}
