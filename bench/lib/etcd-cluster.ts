import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { spawnChild, type Child } from './children.js'
import { waitUntil } from './http.js'
import { freePorts } from './ports.js'

/**
 * A real etcd cluster for the benchmark: Debian's `etcd-server` (bench/setup installs it;
 * never downloaded), each member a child process on 127.0.0.1 with free client, peer and
 * metrics ports and a data dir under one temporary directory. The same approach as the
 * tests' test/helpers/etcd-cluster.ts, without its fault controls; members are children
 * of the benchmark, so they die with it (bench/lib/children.ts).
 */
export const ETCD_BINARY = process.env.SWITCHYARD_BENCH_ETCD ?? '/usr/bin/etcd'

export function etcdInstalled(): boolean {
  return existsSync(ETCD_BINARY)
}

export interface BenchEtcdMember {
  name: string
  clientUrl: string
  /** plain HTTP /health and /metrics */
  metricsUrl: string
  child: Child
}

export interface BenchEtcd {
  /** client URLs in member order */
  endpoints: string[]
  members: BenchEtcdMember[]
  /** the cluster's MVCC revision: one per successful write transaction */
  revision(): Promise<number>
  /** the largest value over the members of an unlabelled counter or gauge of /metrics (NaN when no member has it) */
  metric(name: string): Promise<number>
  close(): Promise<void>
}

async function healthy(metricsUrl: string): Promise<true | undefined> {
  try {
    const response = await request(`${metricsUrl}/health`, { headersTimeout: 2_000, bodyTimeout: 2_000 })
    const body = await response.body.text()
    return response.statusCode === 200 && (JSON.parse(body) as { health?: string }).health === 'true' ? true : undefined
  } catch {
    return undefined
  }
}

async function startOnce(count: number, cpus: string | undefined): Promise<BenchEtcd> {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-bench-etcd-'))
  const ports = await freePorts(count * 3)
  const peerUrl = (index: number) => `http://127.0.0.1:${ports[index * 3 + 1]}`
  const names = Array.from({ length: count }, (_, index) => `m${index}`)
  const initialCluster = names.map((name, index) => `${name}=${peerUrl(index)}`).join(',')
  const members: BenchEtcdMember[] = names.map((name, index) => {
    const clientUrl = `http://127.0.0.1:${ports[index * 3]}`
    const metricsUrl = `http://127.0.0.1:${ports[index * 3 + 2]}`
    const args = [
      `--name=${name}`,
      `--data-dir=${join(dir, name)}`,
      `--listen-client-urls=${clientUrl}`,
      `--advertise-client-urls=${clientUrl}`,
      `--listen-peer-urls=${peerUrl(index)}`,
      `--initial-advertise-peer-urls=${peerUrl(index)}`,
      `--listen-metrics-urls=${metricsUrl}`,
      `--initial-cluster=${initialCluster}`,
      '--initial-cluster-state=new',
      `--initial-cluster-token=${dir}`,
      // etcd's default raft timing: shorter elections on a busy shared machine only add spurious ones
      '--heartbeat-interval=100',
      '--election-timeout=1000',
      '--logger=zap',
      '--log-outputs=stderr',
      '--log-level=warn'
    ]
    return { name, clientUrl, metricsUrl, child: spawnChild(`etcd ${name}`, ETCD_BINARY, args, { cpus }) }
  })
  const close = async () => {
    await Promise.all(members.map((member) => member.child.stop(10_000)))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    await Promise.all(
      members.map((member) =>
        waitUntil(
          async () => {
            if (member.child.process.exitCode !== null) throw new Error(`etcd member ${member.name} exited:\n${member.child.output().slice(-2000)}`)
            return healthy(member.metricsUrl)
          },
          `etcd member ${member.name} to be healthy`,
          30_000,
          50
        )
      )
    )
  } catch (error) {
    await close()
    throw error
  }
  return {
    endpoints: members.map((member) => member.clientUrl),
    members,
    async revision() {
      const revisions = await Promise.all(
        members.map(async (member) => {
          // the v3 HTTP/JSON gateway: a range of one key still answers the store's revision
          const response = await request(`${member.clientUrl}/v3/kv/range`, {
            method: 'POST',
            body: JSON.stringify({ key: Buffer.from('/').toString('base64') }),
            headersTimeout: 5_000
          })
          const body = (await response.body.json()) as { header?: { revision?: string } }
          return Number(body.header?.revision ?? NaN)
        })
      )
      return Math.max(...revisions.filter((value) => Number.isFinite(value)))
    },
    async metric(name: string) {
      const values = await Promise.all(
        members.map(async (member) => {
          const response = await request(`${member.metricsUrl}/metrics`, { headersTimeout: 5_000 })
          const text = await response.body.text()
          const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `))
          return line ? Number(line.slice(name.length + 1)) : NaN
        })
      )
      const finite = values.filter((value) => Number.isFinite(value))
      return finite.length > 0 ? Math.max(...finite) : NaN
    },
    close
  }
}

/** A `members`-member etcd on 127.0.0.1, every member healthy; a port taken before etcd bound it is retried (3 starts at most). */
export async function startEtcdCluster(options: { members?: number; cpus?: string | undefined } = {}): Promise<BenchEtcd> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options.members ?? 1, options.cpus)
    } catch (error) {
      if (attempt >= 3 || !/address already in use/.test(String(error))) throw error
    }
  }
}
