import type { BenchEtcd } from '../lib/etcd-cluster.js'
import { fixed, integer, times } from '../lib/format.js'
import { probeForeignLoad } from '../lib/foreign-load.js'
import { treeCpuSeconds } from '../lib/proc-stats.js'
import { progress } from '../lib/progress.js'
import { startEtcdDeployment, startFileDeployment, waitReplicasFollowed, type RegistryDeployment } from '../lib/registry-deployments.js'
import type { RegistryLoad } from '../lib/registry-load.js'
import type { InstanceNaming, RegistryLoadSummary } from '../lib/registry-load-worker.js'
import { median, ratio } from '../lib/stats.js'
import type { Table } from './scenario.js'

/**
 * Heartbeats at scale: INSTANCES instances, registered first, each heartbeating once per
 * period (1,000 heartbeats/s at 10,000 instances every 10 s), sent open loop and evenly
 * spaced by the registry load generator; on etcd every instance stays on one of the two
 * replicas (half each). Rounds alternate between the file-store registry and the etcd
 * pair, and each round continues the instances' turn where the previous one stopped.
 */
const RATE = 1_000
const INSTANCES_PER_SERVICE = 10
const CONNECTIONS_PER_REPLICA = 16
const REGISTER_CLIENTS = 64

interface Round {
  setup: string
  round: number
  load: RegistryLoadSummary
  seconds: number
  registryCpuSeconds: number
  replicaCpuSeconds: number[]
  etcdCpuSeconds: number
  etcdRevisions: number
  otherLoad: number
}

function aggregate(rounds: Round[]) {
  const heartbeats = rounds.reduce((sum, round) => sum + round.load.ok, 0)
  const registryCpu = rounds.reduce((sum, round) => sum + round.registryCpuSeconds, 0)
  const etcdCpu = rounds.reduce((sum, round) => sum + round.etcdCpuSeconds, 0)
  return {
    rounds: rounds.length,
    heartbeatsPerSecond: median(rounds.map((round) => round.load.okPerSecond)),
    p50: median(rounds.map((round) => round.load.latencyMs.p50)),
    p99: median(rounds.map((round) => round.load.latencyMs.p99)),
    p999: median(rounds.map((round) => round.load.latencyMs.p999)),
    p99FromSend: median(rounds.map((round) => round.load.fromSendMs.p99)),
    worstRoundP99: Math.max(...rounds.map((round) => round.load.latencyMs.p99)),
    max: Math.max(...rounds.map((round) => round.load.latencyMs.max)),
    failed: rounds.reduce((sum, round) => sum + round.load.errors + Object.values(round.load.non2xx).reduce((a, b) => a + b, 0), 0),
    /** share of heartbeats the generator itself sent more than 5 ms late (it did not get a CPU in time) */
    lateShare:
      rounds.reduce((sum, round) => sum + round.load.lateSends, 0) /
      Math.max(
        1,
        rounds.reduce((sum, round) => sum + round.load.sent, 0)
      ),
    /** share of one core, all replicas together */
    registryCpuPercent: median(rounds.map((round) => (round.registryCpuSeconds / round.seconds) * 100)),
    registryCpuMsPer1k: heartbeats === 0 ? NaN : (registryCpu / heartbeats) * 1_000_000,
    etcdCpuPercent: median(rounds.map((round) => (round.etcdCpuSeconds / round.seconds) * 100)),
    etcdCpuMsPer1k: heartbeats === 0 ? NaN : (etcdCpu / heartbeats) * 1_000_000,
    etcdWritesPerSecond: median(rounds.map((round) => round.etcdRevisions / round.seconds)),
    otherLoad: median(rounds.map((round) => round.otherLoad))
  }
}

export type HeartbeatAggregate = ReturnType<typeof aggregate>

export async function haHeartbeats(etcd: BenchEtcd, load: RegistryLoad, quick: boolean, allPids: () => number[]) {
  const name = 'registry-ha'
  const instances = quick ? 2_000 : 10_000
  const periodSeconds = instances / RATE
  const roundCount = quick ? 2 : 3
  const roundSeconds = quick ? 2 : 10
  const naming: InstanceNaming = { idPrefix: 'hb', servicePrefix: 'hb-', services: instances / INSTANCES_PER_SERVICE }
  const deployments: RegistryDeployment[] = []
  try {
    // Leases far longer than the gaps between one set-up's rounds (the other set-up's registrations
    // included, slow on a busy machine): nothing expires while the other set-up runs.
    const lease = { leaseSeconds: 600, renewSeconds: periodSeconds }
    const warmUpSeconds = quick ? 1 : 5
    deployments.push(await startFileDeployment('file store, 1 registry', lease))
    deployments.push(await startEtcdDeployment('etcd, 2 replicas', etcd, '/bench-heartbeats', 2, lease))
    const preload: Record<string, { perSecond: number; failed: number }> = {}
    for (const deployment of deployments) {
      progress(name, `heartbeats: registering ${integer(instances)} instances on the ${deployment.label} (${REGISTER_CLIENTS} clients)`)
      const registered = await load.run({
        kind: 'register',
        ...naming,
        urls: deployment.replicas.map((replica) => replica.url),
        token: deployment.credentials.adminToken,
        clients: REGISTER_CLIENTS,
        from: 0,
        count: instances
      })
      const failed = registered.errors + Object.values(registered.non2xx).reduce((a, b) => a + b, 0)
      if (failed > 0) throw new Error(`registering on the ${deployment.label}: ${failed} failed (${JSON.stringify(registered.non2xx)}, ${registered.errors} errors)`)
      preload[deployment.label] = { perSecond: registered.okPerSecond, failed }
      await waitReplicasFollowed(deployment, instances)
    }
    const turns = new Map<RegistryDeployment, number>(deployments.map((deployment) => [deployment, 0]))
    const heartbeatTask = (deployment: RegistryDeployment, durationSeconds: number) => ({
      kind: 'heartbeat' as const,
      ...naming,
      urls: deployment.replicas.map((replica) => replica.url),
      token: deployment.credentials.adminToken,
      instances,
      rate: RATE,
      durationSeconds,
      from: turns.get(deployment) ?? 0,
      connectionsPerUrl: CONNECTIONS_PER_REPLICA
    })
    // Warm-up (not recorded): the generator's connections and both sides' JIT.
    for (const deployment of deployments) turns.set(deployment, (await load.run(heartbeatTask(deployment, warmUpSeconds))).next)
    const rounds: Round[] = []
    for (let round = 1; round <= roundCount; round++) {
      const order = round % 2 === 1 ? deployments : [...deployments].reverse()
      for (const deployment of order) {
        const etcdPids = etcd.members.map((member) => member.child.pid)
        const replicaBefore = deployment.pids().map(treeCpuSeconds)
        const etcdBefore = etcdPids.reduce((sum, pid) => sum + treeCpuSeconds(pid), 0)
        const revisionBefore = await etcd.revision()
        const probe = probeForeignLoad([...allPids(), ...deployments.flatMap((one) => one.pids())])
        const summary = await load.run(heartbeatTask(deployment, roundSeconds))
        const otherLoad = probe.finish()
        const replicaCpuSeconds = deployment.pids().map((pid, index) => treeCpuSeconds(pid) - (replicaBefore[index] as number))
        const etcdCpuSeconds = etcdPids.reduce((sum, pid) => sum + treeCpuSeconds(pid), 0) - etcdBefore
        const etcdRevisions = (await etcd.revision()) - revisionBefore
        turns.set(deployment, summary.next)
        rounds.push({
          setup: deployment.label,
          round,
          load: summary,
          seconds: summary.elapsedSeconds,
          registryCpuSeconds: replicaCpuSeconds.reduce((a, b) => a + b, 0),
          replicaCpuSeconds,
          etcdCpuSeconds,
          etcdRevisions,
          otherLoad
        })
        progress(
          name,
          `heartbeats round ${round} ${deployment.label}: ${integer(summary.okPerSecond)}/s, p50 ${fixed(summary.latencyMs.p50)} ms, p99 ${fixed(summary.latencyMs.p99)} ms, failed ${summary.errors + Object.values(summary.non2xx).reduce((a, b) => a + b, 0)}, sent late ${fixed((summary.lateSends / Math.max(1, summary.sent)) * 100, 1)}%`
        )
      }
    }
    const file = aggregate(rounds.filter((round) => round.setup === deployments[0]?.label))
    const ha = aggregate(rounds.filter((round) => round.setup === deployments[1]?.label))
    const table: Table = {
      title: `Heartbeats: ${integer(instances)} instances every ${fixed(periodSeconds, 0)} s (${integer(RATE)}/s, open loop), median of ${roundCount} interleaved rounds x ${roundSeconds} s`,
      columns: [
        'registry',
        'heartbeats/s',
        'p50 ms',
        'p99 ms',
        'p99.9 ms',
        'max ms',
        'failed',
        'sent late',
        'p99 from send ms',
        'registry CPU % of a core',
        'registry CPU ms / 1k heartbeats',
        'etcd CPU % (3 members)',
        'etcd writes/s'
      ],
      rows: [
        [deployments[0]?.label ?? 'file', file],
        [deployments[1]?.label ?? 'etcd', ha]
      ].map(([label, figures]) => {
        const f = figures as HeartbeatAggregate
        const onEtcd = f === ha
        return [
          label as string,
          integer(f.heartbeatsPerSecond),
          fixed(f.p50),
          fixed(f.p99),
          fixed(f.p999),
          fixed(f.max),
          integer(f.failed),
          `${fixed(f.lateShare * 100, 1)}%`,
          fixed(f.p99FromSend),
          fixed(f.registryCpuPercent, 1),
          fixed(f.registryCpuMsPer1k, 0),
          onEtcd ? fixed(f.etcdCpuPercent, 1) : 'n/a',
          onEtcd ? fixed(f.etcdWritesPerSecond, 1) : 'n/a'
        ]
      }),
      notes: [
        `registered first with ${REGISTER_CLIENTS} clients: ${Object.entries(preload)
          .map(([label, figures]) => `${integer(figures.perSecond)}/s on the ${label}`)
          .join(', ')}`,
        `etcd / file: ${times(ratio(ha.p99, file.p99))} heartbeat p99, ${times(ratio(ha.p50, file.p50))} p50, ${times(ratio(ha.registryCpuMsPer1k, file.registryCpuMsPer1k))} registry CPU per heartbeat (both replicas together); target (read, never asserted): etcd p99 under 50 ms`
      ]
    }
    return {
      table,
      data: { instances, rate: RATE, periodSeconds, roundSeconds, warmUpSeconds, connectionsPerReplica: CONNECTIONS_PER_REPLICA, preload, file, etcd: ha, rounds }
    }
  } finally {
    await Promise.all(deployments.map((deployment) => deployment.close()))
  }
}
