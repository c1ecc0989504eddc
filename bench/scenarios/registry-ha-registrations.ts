import type { BenchEtcd } from '../lib/etcd-cluster.js'
import { fixed, integer, times } from '../lib/format.js'
import { probeForeignLoad } from '../lib/foreign-load.js'
import { treeCpuSeconds } from '../lib/proc-stats.js'
import { progress } from '../lib/progress.js'
import { startEtcdDeployment, startFileDeployment, waitReplicasFollowed, type RegistryDeployment } from '../lib/registry-deployments.js'
import type { RegistryLoad } from '../lib/registry-load.js'
import type { InstanceNaming, RegistryLoadSummary } from '../lib/registry-load-worker.js'
import { median, ratio, spread } from '../lib/stats.js'
import type { Table } from './scenario.js'

/**
 * Registrations/s: CLIENTS concurrent clients, each registering distinct instances one
 * after the other for a fixed time, against the file-store registry, one replica on etcd,
 * and two replicas on etcd (half the clients on each). Rounds rotate over the three
 * set-ups. On etcd a replica commits its queued registrations in batches, one transaction
 * at a time, each conditional on the registry's head revision: two replicas writing at
 * once make one of them fail its transaction, catch up and draft again. The failed
 * transactions are estimated from etcd's own counters (raft proposals committed minus
 * MVCC revisions: a transaction whose compare fails goes through raft but writes nothing).
 */
const CLIENTS = 64
const SERVICES = 100
/** the state grows with every round: leases far longer than the scenario, so that nothing expires meanwhile */
const LEASE_SECONDS = 3_600

interface Round {
  setup: string
  round: number
  load: RegistryLoadSummary
  registryCpuSeconds: number
  etcdCpuSeconds: number
  /** registry revisions the round added (changes: registrations, and the first one of each service) */
  registryChanges: number
  /** etcd MVCC revisions the round added (successful write transactions, heartbeat batches included) */
  etcdRevisions: number
  /** raft proposals committed beyond the revisions: failed transactions, mostly */
  etcdFailedTxns: number
  otherLoad: number
}

function failedOf(load: RegistryLoadSummary): number {
  return load.errors + Object.values(load.non2xx).reduce((a, b) => a + b, 0)
}

function aggregate(rounds: Round[]) {
  const registrations = rounds.reduce((sum, round) => sum + round.load.ok, 0)
  const perSecond = rounds.map((round) => round.load.okPerSecond)
  const changes = rounds.reduce((sum, round) => sum + round.registryChanges, 0)
  const revisions = rounds.reduce((sum, round) => sum + round.etcdRevisions, 0)
  const seconds = rounds.reduce((sum, round) => sum + round.load.elapsedSeconds, 0)
  return {
    rounds: rounds.length,
    registrationsPerSecond: median(perSecond),
    spread: spread(perSecond),
    p50: median(rounds.map((round) => round.load.latencyMs.p50)),
    p99: median(rounds.map((round) => round.load.latencyMs.p99)),
    failed: rounds.reduce((sum, round) => sum + failedOf(round.load), 0),
    registryCpuMsPer1k: registrations === 0 ? NaN : (rounds.reduce((sum, round) => sum + round.registryCpuSeconds, 0) / registrations) * 1_000_000,
    etcdCpuMsPer1k: registrations === 0 ? NaN : (rounds.reduce((sum, round) => sum + round.etcdCpuSeconds, 0) / registrations) * 1_000_000,
    changesPerEtcdWrite: revisions === 0 ? NaN : changes / revisions,
    failedTxnsPerSecond: seconds === 0 ? NaN : rounds.reduce((sum, round) => sum + round.etcdFailedTxns, 0) / seconds,
    otherLoad: median(rounds.map((round) => round.otherLoad))
  }
}

export type RegistrationAggregate = ReturnType<typeof aggregate>

async function proposalsCommitted(etcd: BenchEtcd): Promise<number> {
  return etcd.metric('etcd_server_proposals_committed_total')
}

export async function haRegistrations(etcd: BenchEtcd, load: RegistryLoad, options: { rounds: number; durationSeconds: number; warmUpSeconds: number }, allPids: () => number[]) {
  const name = 'registry-ha'
  const naming: InstanceNaming = { idPrefix: 'rg', servicePrefix: 'rg-', services: SERVICES }
  const deployments: RegistryDeployment[] = []
  try {
    deployments.push(await startFileDeployment('file store, 1 registry', { leaseSeconds: LEASE_SECONDS }))
    deployments.push(await startEtcdDeployment('etcd, 1 replica', etcd, '/bench-registrations-1', 1, { leaseSeconds: LEASE_SECONDS }))
    deployments.push(await startEtcdDeployment('etcd, 2 replicas', etcd, '/bench-registrations-2', 2, { leaseSeconds: LEASE_SECONDS }))
    const next = new Map<RegistryDeployment, number>(deployments.map((deployment) => [deployment, 0]))
    const runOne = (deployment: RegistryDeployment, durationSeconds: number) =>
      load.run({
        kind: 'register',
        ...naming,
        urls: deployment.replicas.map((replica) => replica.url),
        token: deployment.credentials.adminToken,
        clients: CLIENTS,
        from: next.get(deployment) ?? 0,
        durationSeconds
      })
    // Warm-up (not recorded): the JIT, the connections, and the first registration of every service.
    for (const deployment of deployments) {
      const warm = await runOne(deployment, options.warmUpSeconds)
      next.set(deployment, warm.next)
      await waitReplicasFollowed(deployment)
    }
    const rounds: Round[] = []
    for (let round = 1; round <= options.rounds; round++) {
      const shift = (round - 1) % deployments.length
      const order = [...deployments.slice(shift), ...deployments.slice(0, shift)]
      for (const deployment of order) {
        const onEtcd = deployment.store === 'etcd'
        const etcdPids = etcd.members.map((member) => member.child.pid)
        const revisionBefore = (await waitReplicasFollowed(deployment)).revision
        const etcdRevisionBefore = onEtcd ? await etcd.revision() : 0
        const proposalsBefore = onEtcd ? await proposalsCommitted(etcd) : 0
        const cpuBefore = deployment.pids().reduce((sum, pid) => sum + treeCpuSeconds(pid), 0)
        const etcdCpuBefore = etcdPids.reduce((sum, pid) => sum + treeCpuSeconds(pid), 0)
        const probe = probeForeignLoad([...allPids(), ...deployments.flatMap((one) => one.pids())])
        const summary = await runOne(deployment, options.durationSeconds)
        const otherLoad = probe.finish()
        const registryCpuSeconds = deployment.pids().reduce((sum, pid) => sum + treeCpuSeconds(pid), 0) - cpuBefore
        const etcdCpuSeconds = etcdPids.reduce((sum, pid) => sum + treeCpuSeconds(pid), 0) - etcdCpuBefore
        const etcdRevisions = onEtcd ? (await etcd.revision()) - etcdRevisionBefore : 0
        const etcdFailedTxns = onEtcd ? Math.max(0, (await proposalsCommitted(etcd)) - proposalsBefore - etcdRevisions) : 0
        const registryChanges = (await waitReplicasFollowed(deployment)).revision - revisionBefore
        next.set(deployment, summary.next)
        rounds.push({
          setup: deployment.label,
          round,
          load: summary,
          registryCpuSeconds,
          etcdCpuSeconds: onEtcd ? etcdCpuSeconds : NaN,
          registryChanges,
          etcdRevisions,
          etcdFailedTxns,
          otherLoad
        })
        progress(
          name,
          `registrations round ${round} ${deployment.label}: ${integer(summary.okPerSecond)}/s, p99 ${fixed(summary.latencyMs.p99)} ms, failed ${failedOf(summary)}${onEtcd ? `, ${fixed(registryChanges / Math.max(1, etcdRevisions), 1)} changes per etcd write, ~${integer(etcdFailedTxns)} failed txns` : ''}`
        )
      }
    }
    const figures = deployments.map((deployment) => ({ deployment, aggregate: aggregate(rounds.filter((round) => round.setup === deployment.label)) }))
    const [file, one, two] = figures.map((entry) => entry.aggregate) as [RegistrationAggregate, RegistrationAggregate, RegistrationAggregate]
    const table: Table = {
      title: `Registrations: ${CLIENTS} concurrent clients registering distinct instances, median of ${options.rounds} rotated rounds x ${options.durationSeconds} s`,
      columns: [
        'registry',
        'registrations/s',
        'spread',
        'p50 ms',
        'p99 ms',
        'failed',
        'registry CPU ms / 1k',
        'etcd CPU ms / 1k',
        'changes per etcd write',
        'failed etcd txns/s (est.)',
        'vs file',
        'vs etcd 1 replica'
      ],
      rows: figures.map(({ deployment, aggregate: f }) => {
        const onEtcd = deployment.store === 'etcd'
        return [
          `${deployment.label}${deployment.replicas.length > 1 ? ` (${CLIENTS / deployment.replicas.length} clients each)` : ''}`,
          integer(f.registrationsPerSecond),
          `${fixed(f.spread * 100, 0)}%`,
          fixed(f.p50),
          fixed(f.p99),
          integer(f.failed),
          fixed(f.registryCpuMsPer1k, 0),
          onEtcd ? fixed(f.etcdCpuMsPer1k, 0) : 'n/a',
          onEtcd ? fixed(f.changesPerEtcdWrite, 1) : 'n/a',
          onEtcd ? fixed(f.failedTxnsPerSecond, 1) : 'n/a',
          times(ratio(f.registrationsPerSecond, file.registrationsPerSecond)),
          onEtcd ? times(ratio(f.registrationsPerSecond, one.registrationsPerSecond)) : 'n/a'
        ]
      }),
      notes: [
        `2 replicas / 1 replica on etcd: ${times(ratio(two.registrationsPerSecond, one.registrationsPerSecond))} registrations/s; 1 replica on etcd / file store: ${times(ratio(one.registrationsPerSecond, file.registrationsPerSecond))}`
      ]
    }
    return { table, data: { clients: CLIENTS, services: SERVICES, ...options, file, etcdOneReplica: one, etcdTwoReplicas: two, rounds } }
  } finally {
    await Promise.all(deployments.map((deployment) => deployment.close()))
  }
}
