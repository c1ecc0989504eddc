import { ETCD_BINARY, etcdInstalled, startEtcdCluster, type BenchEtcd } from '../lib/etcd-cluster.js'
import { fixed } from '../lib/format.js'
import { progress } from '../lib/progress.js'
import { RegistryLoad } from '../lib/registry-load.js'
import { haHeartbeats } from './registry-ha-heartbeats.js'
import { haPropagation } from './registry-ha-propagation.js'
import { haRegistrations } from './registry-ha-registrations.js'
import type { BenchContext, ScenarioResult } from './scenario.js'

/**
 * The registry on etcd (issue 12) against the file store, in one run: weight propagation
 * to routers split across two replicas, heartbeats of 10,000 instances through two
 * replicas, and registrations/s with one and two replicas. A real 3-member etcd
 * (Debian's etcd-server) on 127.0.0.1; every process unpinned (three etcd members, up to
 * three registries, the routers and the load generator do not fit a core each on a small
 * machine, and the file store gets the same treatment).
 */
export async function registryHaScenario(context: BenchContext): Promise<ScenarioResult> {
  const name = 'registry-ha'
  if (!etcdInstalled()) {
    return { name, skipped: `etcd not found at ${ETCD_BINARY} (bench/setup installs the etcd-server package)`, notes: [], tables: [], data: {} }
  }
  let etcd: BenchEtcd | undefined
  let load: RegistryLoad | undefined
  try {
    progress(name, 'starting a 3-member etcd')
    etcd = await startEtcdCluster({ members: 3 })
    const cluster = etcd
    load = new RegistryLoad()
    const generator = load
    const ours = () => [...cluster.members.map((member) => member.child.pid), generator.child.pid]

    const propagation = await haPropagation(cluster, context.quick, ours)
    const heartbeats = await haHeartbeats(cluster, generator, context.quick, ours)
    const registrations = await haRegistrations(
      cluster,
      generator,
      { rounds: context.rounds, durationSeconds: context.durationSeconds, warmUpSeconds: context.quick ? 0.5 : 2 },
      ours
    )
    const otherLoad = [propagation.data.otherLoad, heartbeats.data.file.otherLoad, heartbeats.data.etcd.otherLoad, registrations.data.file.otherLoad]
    return {
      name,
      notes: [
        `etcd: ${ETCD_BINARY}, 3 members on 127.0.0.1 (default raft timing, data in a temporary directory on the same disk as the file store's journal); registries on etcd are real processes (switchyard registry --store etcd), each set-up under its own key prefix; routers follow with --registry A,B (or B,A)`,
        'propagation: as the propagation scenario measures it (PUT 200 -> each router admin /routes polled back to back until it shows the revision); changes alternate between the two set-ups, PUTs on etcd alternate between the replicas; the registry answers a write on etcd once the transaction is on a quorum and this replica has followed it from its etcd watch',
        "heartbeats: each latency runs from the heartbeat's scheduled time (open loop, undici pools of 16 keep-alive connections per replica in a load-generator process of its own); a warm-up per set-up first (5 s, quick 1 s); sent late: heartbeats the generator itself sent more than 5 ms after their time (it did not get a CPU: their latency includes that wait; p99 from send leaves it out); registry CPU is all replicas together, as a share of one core; etcd writes/s: MVCC revisions (the replicas pass the heartbeats they received to each other in one batch per second each)",
        'registrations: closed loop; changes per etcd write: registry revisions / etcd revisions in the round; failed etcd txns: raft proposals committed minus revisions (a commit whose head compare fails because the other replica wrote first)',
        `every process unpinned; other load (processes outside the benchmark, /proc/stat): median ${otherLoad.map((value) => `${fixed(value * 100, 0)}%`).join(', ')} of the machine in the propagation, heartbeat (file, etcd) and registration phases`
      ],
      tables: [propagation.table, heartbeats.table, registrations.table],
      data: { propagation: propagation.data, heartbeats: heartbeats.data, registrations: registrations.data }
    }
  } finally {
    await load?.stop()
    await etcd?.close()
  }
}
