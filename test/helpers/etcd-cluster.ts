import { spawn, type ChildProcess } from 'node:child_process'
import { access, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { freePorts } from '../../bench/lib/ports.js'

/** Debian's `etcd-server` and `etcd-client` packages (.ci/run installs them when missing). */
export const ETCD_BINARY = process.env.SWITCHYARD_TEST_ETCD ?? '/usr/bin/etcd'
export const ETCDCTL_BINARY = process.env.SWITCHYARD_TEST_ETCDCTL ?? '/usr/bin/etcdctl'

export async function etcdInstalled(): Promise<boolean> {
  const found = (path: string) =>
    access(path).then(
      () => true,
      () => false
    )
  return (await found(ETCD_BINARY)) && (await found(ETCDCTL_BINARY))
}

/** Server TLS on the client URLs (peers stay plain: they only talk on 127.0.0.1). */
export interface EtcdServerTls {
  caFile: string
  certFile: string
  keyFile: string
  /** refuse clients without a certificate signed by caFile */
  clientCertAuth?: boolean
}

export interface EtcdClusterOptions {
  /** 1 or 3 usually; default 1 */
  members?: number
  /**
   * Raft timing. etcd's defaults (100/1000 ms) are kept: a shorter election timeout on a busy
   * 2-core machine (several agents, fsync on a shared disk) gives spurious elections that
   * make tests flaky, and a leader is still found in about a second.
   */
  heartbeatIntervalMs?: number
  electionTimeoutMs?: number
  tls?: EtcdServerTls
  /** seconds a simple auth token lives without use (etcd's default 300) */
  authTokenTtlSeconds?: number
  extraArgs?: string[]
}

export type EtcdMemberState = 'running' | 'paused' | 'stopped'

export interface EtcdMember {
  readonly name: string
  readonly clientUrl: string
  readonly peerUrl: string
  /** plain-HTTP /health and /metrics (--listen-metrics-urls), reachable whatever the client TLS */
  readonly metricsUrl: string
  readonly dataDir: string
  readonly state: EtcdMemberState
  pid(): number | undefined
  /** the last 256 KiB of the member's log */
  output(): string
  /** SIGKILL, resolves once the process is gone */
  kill(): Promise<void>
  /** SIGTERM (SIGKILL after 10 s), resolves once the process is gone */
  stop(): Promise<void>
  /** starts it again with the same data dir and ports; does not wait for health (a lone member of three never gets healthy) */
  start(): Promise<void>
  /** SIGSTOP: the process keeps its sockets and answers nothing, as a hung machine */
  pause(): void
  resume(): void
  /** polls /health until it says true (the member has a leader and a quorum read passes) */
  waitHealthy(timeoutMs?: number): Promise<void>
}

export interface EtcdStatus {
  endpoint: string
  memberId: string
  leaderId: string
  revision: number
  raftTerm: number
}

export interface EtcdCluster {
  /** client URLs, one per member, in member order */
  readonly endpoints: string[]
  readonly members: EtcdMember[]
  readonly tls: EtcdServerTls | undefined
  /** every running member healthy */
  waitHealthy(timeoutMs?: number): Promise<void>
  /** runs etcdctl against the running members (TLS and, after enableAuth, root's credentials added) */
  etcdctl(args: string[], options?: { endpoints?: string[]; user?: string }): Promise<string>
  /** `etcdctl endpoint status` of the running members that answer */
  status(): Promise<EtcdStatus[]>
  /** the member that leads now (polls through an election) */
  leader(timeoutMs?: number): Promise<EtcdMember>
  /** the cluster's current revision */
  revision(): Promise<number>
  /** compacts (physically) at `revision`, default the current one; resolves to the revision compacted at */
  compact(revision?: number): Promise<number>
  /** adds the user root with `password`, then `auth enable` (which grants it the role root); later etcdctl calls authenticate as root */
  enableAuth(password: string): Promise<void>
  close(): Promise<void>
}

const OUTPUT_LIMIT = 256 * 1024
const POLL_MS = 25

// A test that dies (timeout, uncaught error) must not leave etcd processes behind.
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

async function until<T>(what: string, timeoutMs: number, attempt: () => Promise<T | undefined>, detail: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await attempt()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail()}`)
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
}

async function healthy(metricsUrl: string): Promise<boolean> {
  try {
    const response = await request(`${metricsUrl}/health`, { headersTimeout: 2_000, bodyTimeout: 2_000 })
    const body = await response.body.text()
    return response.statusCode === 200 && (JSON.parse(body) as { health?: string }).health === 'true'
  } catch {
    return false
  }
}

class Member implements EtcdMember {
  state: EtcdMemberState = 'stopped'
  private child: ChildProcess | undefined
  private exited: Promise<void> = Promise.resolve()
  private log = ''

  constructor(
    readonly name: string,
    readonly clientUrl: string,
    readonly peerUrl: string,
    readonly metricsUrl: string,
    readonly dataDir: string,
    private readonly args: string[]
  ) {}

  pid() {
    return this.child?.pid
  }

  output() {
    return this.log
  }

  start(): Promise<void> {
    if (this.state !== 'stopped') return Promise.reject(new Error(`etcd member ${this.name} is ${this.state}`))
    const child = spawn(ETCD_BINARY, this.args, { stdio: ['ignore', 'pipe', 'pipe'] })
    const append = (chunk: Buffer) => {
      this.log += chunk.toString()
      if (this.log.length > OUTPUT_LIMIT) this.log = this.log.slice(-OUTPUT_LIMIT)
    }
    child.stdout.on('data', append)
    child.stderr.on('data', append)
    live.add(child)
    this.child = child
    this.state = 'running'
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        live.delete(child)
        if (this.child === child) this.state = 'stopped'
        resolve()
      })
    )
    return new Promise((resolve, reject) => {
      child.once('spawn', () => resolve())
      child.once('error', reject)
    })
  }

  async kill() {
    if (this.state === 'stopped' || !this.child) return
    this.child.kill('SIGKILL')
    await this.exited
  }

  async stop() {
    if (this.state === 'stopped' || !this.child) return
    if (this.state === 'paused') this.resume()
    this.child.kill('SIGTERM')
    const child = this.child
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await this.exited
    clearTimeout(killer)
  }

  pause() {
    if (this.state !== 'running' || !this.child) throw new Error(`etcd member ${this.name} is ${this.state}`)
    this.child.kill('SIGSTOP')
    this.state = 'paused'
  }

  resume() {
    if (this.state !== 'paused' || !this.child) throw new Error(`etcd member ${this.name} is ${this.state}`)
    this.child.kill('SIGCONT')
    this.state = 'running'
  }

  waitHealthy(timeoutMs = 30_000) {
    return until(
      `etcd member ${this.name} to be healthy`,
      timeoutMs,
      async () => {
        if (this.state === 'stopped') throw new Error(`etcd member ${this.name} exited:\n${this.log.slice(-4000)}`)
        return (await healthy(this.metricsUrl)) ? true : undefined
      },
      () => `:\n${this.log.slice(-4000)}`
    ).then(() => undefined)
  }
}

function runEtcdctl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(ETCDCTL_BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ETCDCTL_API: '3' } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.once('error', reject)
    child.once('close', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`etcdctl ${args.filter((arg) => !arg.startsWith('--user')).join(' ')} exited ${code}: ${stderr.trim()}`))
    )
  })
}

interface RawStatus {
  Endpoint: string
  Status: { header: { member_id: number | string; revision: number | string; raft_term: number | string }; leader: number | string }
}

async function startOnce(options: EtcdClusterOptions): Promise<EtcdCluster> {
  const count = options.members ?? 1
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-etcd-'))
  const ports = await freePorts(count * 3)
  const scheme = options.tls ? 'https' : 'http'
  const names = Array.from({ length: count }, (_, index) => `m${index}`)
  const peerUrl = (index: number) => `http://127.0.0.1:${ports[index * 3 + 1]}`
  const initialCluster = names.map((name, index) => `${name}=${peerUrl(index)}`).join(',')
  const members = names.map((name, index) => {
    const clientUrl = `${scheme}://127.0.0.1:${ports[index * 3]}`
    const metricsUrl = `http://127.0.0.1:${ports[index * 3 + 2]}`
    const dataDir = join(dir, name)
    const args = [
      `--name=${name}`,
      `--data-dir=${dataDir}`,
      `--listen-client-urls=${clientUrl}`,
      `--advertise-client-urls=${clientUrl}`,
      `--listen-peer-urls=${peerUrl(index)}`,
      `--initial-advertise-peer-urls=${peerUrl(index)}`,
      `--listen-metrics-urls=${metricsUrl}`,
      `--initial-cluster=${initialCluster}`,
      '--initial-cluster-state=new',
      `--initial-cluster-token=${dir}`,
      `--heartbeat-interval=${options.heartbeatIntervalMs ?? 100}`,
      `--election-timeout=${options.electionTimeoutMs ?? 1000}`,
      // a snapshot every 5,000 writes keeps a restarted member's WAL replay short
      '--snapshot-count=5000',
      // bcrypt at its cheapest: authenticating is a test's hot path, not an attack surface here
      '--bcrypt-cost=4',
      `--auth-token-ttl=${options.authTokenTtlSeconds ?? 300}`,
      '--logger=zap',
      '--log-outputs=stderr',
      '--log-level=warn',
      ...(options.tls
        ? [
            `--cert-file=${options.tls.certFile}`,
            `--key-file=${options.tls.keyFile}`,
            `--trusted-ca-file=${options.tls.caFile}`,
            ...(options.tls.clientCertAuth ? ['--client-cert-auth'] : [])
          ]
        : []),
      ...(options.extraArgs ?? [])
    ]
    return new Member(name, clientUrl, peerUrl(index), metricsUrl, dataDir, args)
  })

  let credentials: string | undefined
  const tlsArgs = options.tls ? [`--cacert=${options.tls.caFile}`, `--cert=${options.tls.certFile}`, `--key=${options.tls.keyFile}`] : []
  const running = () => members.filter((member) => member.state === 'running')
  const etcdctl = (args: string[], call: { endpoints?: string[]; user?: string } = {}) => {
    const endpoints = call.endpoints ?? running().map((member) => member.clientUrl)
    const user = call.user ?? credentials
    return runEtcdctl([`--endpoints=${endpoints.join(',')}`, '--dial-timeout=2s', '--command-timeout=5s', ...tlsArgs, ...(user ? [`--user=${user}`] : []), ...args])
  }
  const status = async (): Promise<EtcdStatus[]> => {
    // one etcdctl per member: a dead or paused member must not hide the others' status
    const all = await Promise.all(
      running().map((member) =>
        etcdctl(['endpoint', 'status', '-w', 'json'], { endpoints: [member.clientUrl] }).then(
          (out) => JSON.parse(out) as RawStatus[],
          () => []
        )
      )
    )
    return all.flat().map(({ Endpoint, Status }) => ({
      endpoint: Endpoint,
      memberId: String(Status.header.member_id),
      leaderId: String(Status.leader),
      revision: Number(Status.header.revision),
      raftTerm: Number(Status.header.raft_term)
    }))
  }
  const cluster: EtcdCluster = {
    endpoints: members.map((member) => member.clientUrl),
    members,
    tls: options.tls,
    async waitHealthy(timeoutMs = 30_000) {
      await Promise.all(running().map((member) => member.waitHealthy(timeoutMs)))
    },
    etcdctl,
    status,
    leader(timeoutMs = 15_000) {
      return until(`an etcd leader`, timeoutMs, async () => {
        const statuses = await status()
        const leader = statuses.find((one) => one.memberId === one.leaderId)
        return leader ? members.find((member) => member.clientUrl === leader.endpoint) : undefined
      })
    },
    async revision() {
      const statuses = await status()
      if (statuses.length === 0) throw new Error('no etcd member answered endpoint status')
      return Math.max(...statuses.map((one) => one.revision))
    },
    async compact(revision?: number) {
      const at = revision ?? (await cluster.revision())
      await etcdctl(['compact', String(at), '--physical'])
      return at
    },
    async enableAuth(password: string) {
      await etcdctl(['user', 'add', `root:${password}`])
      await etcdctl(['auth', 'enable'])
      credentials = `root:${password}`
    },
    async close() {
      await Promise.all(members.map((member) => member.kill()))
      await rm(dir, { recursive: true, force: true })
    }
  }

  await Promise.all(members.map((member) => member.start()))
  try {
    await cluster.waitHealthy()
  } catch (error) {
    await cluster.close()
    throw error
  }
  return cluster
}

/**
 * A real etcd cluster of `members` processes on 127.0.0.1, each with free client, peer and
 * metrics ports and a data dir in one temporary directory; resolves once every member is
 * healthy. Use `t.teardown(cluster.close)`. A port taken between choosing and binding it
 * (another test's) makes a member exit: the whole start is tried again, three times at most.
 */
export async function startEtcdCluster(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options)
    } catch (error) {
      if (attempt >= 3 || !/address already in use/.test(String(error))) throw error
    }
  }
}
