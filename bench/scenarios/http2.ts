import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { GREETER_SERVICE } from '../servers/greeter.js'
import { spawnChild, type Child } from '../lib/children.js'
import { fixed, integer, times } from '../lib/format.js'
import { waitForHttp, waitUntil } from '../lib/http.js'
import { freePorts } from '../lib/ports.js'
import { procAvailable, treeCpuSeconds } from '../lib/proc-stats.js'
import { progress } from '../lib/progress.js'
import { median, ratio, spread } from '../lib/stats.js'
import { registerInstance, startRegistryProcess, startRouterProcess, type RegistryProcess, type RouterProcess } from '../lib/switchyard-processes.js'
import type { BenchContext, ScenarioResult, Table } from './scenario.js'

/**
 * HTTP/2 through the router against the same upstream called directly, in one run,
 * taking turns round by round (direct, router, direct, router...):
 * - `h2`: h2load (Debian's nghttp2-client) over h2c prior knowledge, to an h2c upstream
 *   (the router's service speaks h2c) and to the proxy benchmark's HTTP/1.1 upstream
 *   (the router translates);
 * - `grpc`: unary calls/s of a grpc-js client (bench/servers/grpc-load.ts) to the Greeter
 *   of test/fixtures/greeter.proto on grpc-js, through a gRPC route.
 * The router has a core of its own where pinning allows; the load generator and the
 * upstream share the other. CPU is the router's, per 10,000 requests.
 */
const run = promisify(execFile)
const H2_CLIENTS = 16
const H2_STREAMS = 8
const GRPC_CONCURRENCY = 32

const script = (name: string) => fileURLToPath(new URL(`../servers/${name}.js`, import.meta.url))

interface Target {
  name: string
  label: string
  url: string
  /** the router under test, for its CPU; undefined when the load goes straight to the upstream */
  router: Child | undefined
}

export interface Http2Round {
  configuration: string
  round: number
  requestsPerSecond: number
  failed: number
  routerCpuSecondsPer10k: number | null
}

interface Summary {
  configuration: string
  label: string
  requestsPerSecond: number
  spread: number
  vsDirect: number
  failed: number
  routerCpuSecondsPer10k: number | null
}

async function h2loadVersion(): Promise<string | undefined> {
  try {
    return (await run('h2load', ['--version'])).stdout.trim().split('\n')[0]
  } catch {
    return undefined
  }
}

/** One h2load round: requests/s and failures from its summary lines. */
async function h2loadRound(url: string, seconds: number, cpus: string | undefined): Promise<{ requestsPerSecond: number; requests: number; failed: number }> {
  const args = ['-c', String(H2_CLIENTS), '-m', String(H2_STREAMS), '-t', '1', '-D', String(seconds), url]
  const [file, argv] = cpus !== undefined ? ['taskset', ['-c', cpus, 'h2load', ...args]] : ['h2load', args]
  const { stdout } = await run(file, argv, { timeout: (seconds + 30) * 1000 })
  const finished = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(stdout)
  const requests = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout)
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout)
  if (!finished || !requests || !status) throw new Error(`unexpected h2load output:\n${stdout.slice(-2000)}`)
  const failed = Number(requests[2]) + Number(requests[3]) + Number(requests[4]) + Number(status[4]) + Number(status[3])
  return { requestsPerSecond: Number(finished[1]), requests: Number(requests[1]), failed }
}

/** One round of grpc-load: calls/s and errors. */
async function grpcRound(address: string, seconds: number, cpus: string | undefined): Promise<{ requestsPerSecond: number; requests: number; failed: number }> {
  const load = spawnChild('grpc load', process.execPath, [script('grpc-load'), address, String(seconds), String(GRPC_CONCURRENCY)], { cpus, captureStdout: true })
  const code = await load.exited
  if (code !== 0) throw new Error(`grpc-load exited ${code}: ${load.output().slice(-2000)}`)
  const result = JSON.parse(load.stdout().trim().split('\n').pop() ?? '{}') as { calls: number; errors: number; seconds: number }
  return { requestsPerSecond: result.calls / result.seconds, requests: result.calls, failed: result.errors }
}

/** Interleaved rounds over the targets, then medians and ratios against the first (direct). */
async function roundsOf(
  name: string,
  context: BenchContext,
  targets: readonly Target[],
  round: (target: Target) => Promise<{ requestsPerSecond: number; requests: number; failed: number }>
): Promise<{ rounds: Http2Round[]; summaries: Summary[] }> {
  const rounds: Http2Round[] = []
  for (let index = 1; index <= context.rounds; index++) {
    for (const target of targets) {
      const cpuBefore = target.router && procAvailable() ? treeCpuSeconds(target.router.pid) : undefined
      const result = await round(target)
      const cpu = cpuBefore !== undefined && target.router ? treeCpuSeconds(target.router.pid) - cpuBefore : undefined
      const perTenK = cpu !== undefined && result.requests > 0 ? (cpu / result.requests) * 10_000 : null
      rounds.push({ configuration: target.name, round: index, requestsPerSecond: result.requestsPerSecond, failed: result.failed, routerCpuSecondsPer10k: perTenK })
      progress(
        name,
        `round ${index} ${target.name}: ${integer(result.requestsPerSecond)} req/s, ${result.failed} failed${perTenK === null ? '' : `, router ${fixed(perTenK)} CPU s/10k`}`
      )
    }
  }
  const direct = median(rounds.filter((each) => each.configuration === targets[0]?.name).map((each) => each.requestsPerSecond))
  const summaries = targets.map((target) => {
    const own = rounds.filter((each) => each.configuration === target.name)
    const perSecond = own.map((each) => each.requestsPerSecond)
    const cpu = own.map((each) => each.routerCpuSecondsPer10k).filter((value): value is number => value !== null)
    return {
      configuration: target.name,
      label: target.label,
      requestsPerSecond: median(perSecond),
      spread: spread(perSecond),
      vsDirect: ratio(median(perSecond), direct),
      failed: own.reduce((sum, each) => sum + each.failed, 0),
      routerCpuSecondsPer10k: cpu.length > 0 ? median(cpu) : null
    }
  })
  return { rounds, summaries }
}

function summaryTable(title: string, unit: string, summaries: readonly Summary[]): Table {
  return {
    title,
    columns: ['configuration', unit, 'spread', 'failed', 'router CPU s/10k', 'vs direct'],
    rows: summaries.map((summary) => [
      summary.label,
      integer(summary.requestsPerSecond),
      `${Math.round(summary.spread * 100)}%`,
      String(summary.failed),
      summary.routerCpuSecondsPer10k === null ? 'n/a' : fixed(summary.routerCpuSecondsPer10k),
      summary.configuration === 'direct' ? 'n/a' : times(summary.vsDirect)
    ])
  }
}

/** A registry, an instance of `service` at `port`, and a router whose config file says how to speak to it. */
async function routedTo(
  context: BenchContext,
  service: string,
  instances: readonly { id: string; port: number }[],
  config: Record<string, unknown>,
  routes: string
): Promise<{ registry: RegistryProcess; router: RouterProcess; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-bench-h2-'))
  const configFile = join(dir, 'router.json')
  await writeFile(configFile, JSON.stringify(config))
  // Instances send no heartbeats here: a lease longer than the run keeps them.
  const registry = await startRegistryProcess({ cpus: context.pinning.others, leaseSeconds: 3_600 })
  for (const instance of instances) await registerInstance(registry, service, { id: instance.id, version: 'v1', host: '127.0.0.1', port: instance.port })
  const router = await startRouterProcess({ registryUrl: registry.url, token: registry.routerToken, cpus: context.pinning.proxy, config: configFile, routes })
  return {
    registry,
    router,
    async close() {
      await router.child.stop()
      await registry.close()
      await rm(dir, { recursive: true, force: true })
    }
  }
}

const skippedResult = (name: string, reason: string): ScenarioResult => {
  progress(name, `skipped: ${reason}`)
  return { name, skipped: reason, notes: [`skipped: ${reason}`], tables: [], data: { skipped: reason } }
}

export async function h2Scenario(context: BenchContext): Promise<ScenarioResult> {
  const name = 'h2'
  const version = await h2loadVersion()
  if (!version) return skippedResult(name, 'h2load not found (Debian/Ubuntu: nghttp2-client; bench/setup installs it)')
  const [h2Port, h1Port] = await freePorts(2)
  const others = context.pinning.others
  const h2Upstream = spawnChild('h2c upstream', process.execPath, [script('h2c-upstream-server'), String(h2Port), 'v1', 'api-h2'], { cpus: others })
  const h1Upstream = spawnChild('http1 upstream', process.execPath, [script('upstream-server'), String(h1Port), 'v1', 'web-h1'], { cpus: others })
  const children: Child[] = [h2Upstream, h1Upstream]
  const meshes: { close(): Promise<void> }[] = []
  try {
    await waitUntil(() => (h2Upstream.output().includes('listening') ? true : undefined), 'the h2c upstream', 10_000)
    await waitForHttp(`http://127.0.0.1:${h1Port}/__hits`, 'the HTTP/1.1 upstream', h1Upstream)
    const h2c = await routedTo(context, 'api', [{ id: 'api-h2', port: h2Port as number }], { services: { api: { protocol: 'h2c' } } }, '/api=api')
    meshes.push(h2c)
    const toH1 = await routedTo(context, 'api', [{ id: 'web-h1', port: h1Port as number }], {}, '/api=api')
    meshes.push(toH1)
    const targets: Target[] = [
      { name: 'direct', label: 'direct (h2load -> h2c upstream)', url: `http://127.0.0.1:${h2Port}/api/hello`, router: undefined },
      { name: 'switchyard-h2c', label: 'switchyard, h2c upstream', url: `${h2c.router.proxyUrl}/api/hello`, router: h2c.router.child },
      { name: 'switchyard-http1', label: 'switchyard, HTTP/1.1 upstream', url: `${toH1.router.proxyUrl}/api/hello`, router: toH1.router.child }
    ]
    progress(name, `${version}: ${H2_CLIENTS} connections x ${H2_STREAMS} streams, ${context.rounds} rounds x ${context.durationSeconds} s per configuration`)
    const { rounds, summaries } = await roundsOf(name, context, targets, (target) => h2loadRound(target.url, context.durationSeconds, others))
    const notes = [
      `${version}, one thread, ${H2_CLIENTS} connections x ${H2_STREAMS} concurrent streams (h2c prior knowledge); ${context.pinning.description}`,
      'direct: h2load to the h2c upstream itself; the router speaks h2c (services.api.protocol) or HTTP/1.1 to its instance'
    ]
    return {
      name,
      notes,
      tables: [{ ...summaryTable(`HTTP/2 (h2load), median of ${context.rounds} rounds x ${context.durationSeconds} s`, 'req/s', summaries), notes }],
      data: { h2load: version, clients: H2_CLIENTS, streams: H2_STREAMS, rounds, summaries }
    }
  } finally {
    for (const mesh of meshes) await mesh.close()
    for (const child of children) await child.stop()
  }
}

export async function grpcScenario(context: BenchContext): Promise<ScenarioResult> {
  const name = 'grpc'
  const [port] = await freePorts(1)
  const others = context.pinning.others
  const greeter = spawnChild('greeter', process.execPath, [script('greeter-server'), String(port), 'v1'], { cpus: others })
  let mesh: { router: RouterProcess; close(): Promise<void> } | undefined
  try {
    await waitUntil(
      () => {
        if (greeter.process.exitCode !== null) throw new Error(`the greeter exited: ${greeter.output().slice(-2000)}`)
        return greeter.output().includes('listening') ? true : undefined
      },
      'the greeter',
      20_000
    )
    mesh = await routedTo(context, 'greeter', [{ id: 'greeter-1', port: port as number }], { services: { greeter: { protocol: 'grpc' } } }, `/${GREETER_SERVICE}=greeter`)
    const routerAddress = new URL(mesh.router.proxyUrl).host
    const targets: Target[] = [
      { name: 'direct', label: 'direct (grpc-js -> grpc-js)', url: `127.0.0.1:${port}`, router: undefined },
      { name: 'switchyard', label: 'switchyard (gRPC route)', url: routerAddress, router: mesh.router.child }
    ]
    progress(name, `unary calls, ${GRPC_CONCURRENCY} in flight on one channel, ${context.rounds} rounds x ${context.durationSeconds} s per configuration`)
    const { rounds, summaries } = await roundsOf(name, context, targets, (target) => grpcRound(target.url, context.durationSeconds, others))
    const notes = [
      `@grpc/grpc-js client (bench/servers/grpc-load.ts): unary Greeter.Hello, ${GRPC_CONCURRENCY} calls in flight on one channel; server: grpc-js; ${context.pinning.description}`,
      'the client and the server share a core: both are costlier per call than the router, so the ratio is a floor of what the router costs'
    ]
    return {
      name,
      notes,
      tables: [{ ...summaryTable(`gRPC unary calls, median of ${context.rounds} rounds x ${context.durationSeconds} s`, 'calls/s', summaries), notes }],
      data: { concurrency: GRPC_CONCURRENCY, rounds, summaries }
    }
  } finally {
    await mesh?.close()
    await greeter.stop()
  }
}
