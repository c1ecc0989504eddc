import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { spawnChild, type Child } from '../lib/children.js'
import { probeForeignLoad } from '../lib/foreign-load.js'
import { fixed, integer, times } from '../lib/format.js'
import { callJson, waitForHttp, waitUntil } from '../lib/http.js'
import { collectGarbage, INSPECT_FLAG } from '../lib/inspector-gc.js'
import { freePorts } from '../lib/ports.js'
import { procAvailable, treeCpuSeconds, treePeakRssMiB, treeRssMiB, treeRunqueueWaitSeconds } from '../lib/proc-stats.js'
import { progress } from '../lib/progress.js'
import { median, ratio, spread } from '../lib/stats.js'
import { registerInstance, startRegistryProcess, startRouterProcess, type RegistryProcess } from '../lib/switchyard-processes.js'
import { WsLoadGenerator } from '../lib/ws-load.js'
import type { EchoSummary } from '../lib/ws-load-worker.js'
import type { BenchContext, ScenarioResult, Table } from './scenario.js'

/**
 * WebSocket (issue 13): messages/s echoed through the router against the same echo
 * upstream called directly and through @fastify/http-proxy with `websocket: true`, and
 * the memory an idle upgraded connection costs each proxy.
 *
 * - Echo: ECHO_CONNECTIONS connections, one message in flight on each (closed loop),
 *   64-byte and 16 KiB binary messages, rounds taking turns (direct, switchyard, fastify,
 *   direct...). The proxies run on core 0, the upstream, the registry and the load
 *   generator (its own process, raw sockets: bench/lib/ws-load-worker.ts) on the other core.
 * - Idle: a fresh process of each proxy, warmed, then IDLE_TARGET idle connections opened
 *   through it (fewer when the file-descriptor limit cannot hold them: each proxied
 *   connection takes two descriptors in the proxy); RSS and heap used before and with
 *   them open, divided by their number. These processes run with an inspector, through
 *   which a full GC is forced before reading (bench/lib/inspector-gc.ts), so that the
 *   handshakes' garbage does not count as what a connection holds.
 */
const ECHO_CONNECTIONS = 50
const MESSAGE_SIZES = [64, 16_384] as const
const IDLE_TARGET = 10_000
const IDLE_QUICK = 2_000
const OPEN_CONCURRENCY = 100
/** descriptors a proxy process needs besides its tunnels (stdio, epoll, listeners, the registry watch, the admin port...) */
const FD_RESERVE = 200
const TARGET_RATIO = 1.4
const TARGET_KB = 30

const require = createRequire(import.meta.url)
const script = (path: string) => fileURLToPath(new URL(`../${path}`, import.meta.url))

function packageVersion(name: string): string {
  try {
    return (require(`${name}/package.json`) as { version: string }).version
  } catch {
    return '?'
  }
}

/** Soft and hard RLIMIT_NOFILE of this process (its children inherit them; Node raises its soft limit to the hard one). */
function openFileLimits(): { soft: number; hard: number } {
  try {
    const match = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    const read = (value: string | undefined) => (value === undefined || value === 'unlimited' ? Infinity : Number(value))
    return { soft: read(match?.[1]), hard: read(match?.[2]) }
  } catch {
    return { soft: Infinity, hard: Infinity }
  }
}

interface Target {
  name: 'direct' | 'switchyard' | 'fastify-http-proxy'
  label: string
  url: string
  /** the proxy process; undefined for direct */
  pid: number | undefined
}

export interface WebSocketRound {
  configuration: string
  messageBytes: number
  round: number
  echo: EchoSummary
  /** CPU (user + system) of the proxy per message, in microseconds; null for direct */
  proxyCpuUsPerMessage: number | null
  /** the proxy's CPU over the round's wall time: 1 = its core was busy all the time */
  proxyBusy: number | null
  /** CPU of the upstream, the load generator and the registry over the round's wall time: they share one core */
  sharedCoreBusy: number
  /** share of the round the proxy's main thread was runnable but waiting for a CPU */
  proxyWaited: number | null
  foreignLoad: number
}

interface EchoRow {
  configuration: string
  messageBytes: number
  messagesPerSecond: number
  spread: number
  p50Us: number
  p99Us: number
  errors: number
  proxyCpuUsPerMessage: number | null
  proxyBusy: number | null
  sharedCoreBusy: number
  proxyWaited: number | null
}

export interface IdleMeasure {
  configuration: string
  asked: number
  opened: number
  failed: number
  firstError: string | undefined
  openSeconds: number
  /** after a forced full GC, before the connections */
  rssBeforeMiB: number
  heapUsedBeforeMiB: number
  /** with the connections open, before any forced GC (the handshakes' garbage included) */
  rssOpenMiB: number
  /** with the connections open, after a forced full GC */
  rssOpenGcMiB: number
  heapUsedOpenGcMiB: number
  /** once they are closed again, after a forced full GC: what was not given back */
  rssAfterCloseMiB: number
  heapUsedAfterCloseMiB: number
  peakRssMiB: number
  perConnectionRssKiB: number
  perConnectionRssGcKiB: number
  perConnectionHeapKiB: number
  /** what the echo upstream (a ws server) holds per connection, for scale (no GC forced there) */
  upstreamPerConnectionKiB: number
  closedEarly: number
}

interface RunningProxy {
  name: 'switchyard' | 'fastify-http-proxy'
  url: string
  child: Child
  /** heap used, bytes: the router's /metrics gauge, the peer's process.memoryUsage() */
  heapUsed(): Promise<number>
  stop(): Promise<void>
}

interface UpstreamStats {
  connections: number
  echoed: number
}

function bytesToMiB(bytes: number): number {
  return bytes / 2 ** 20
}

export async function websocketScenario(context: BenchContext): Promise<ScenarioResult> {
  const name = 'websocket'
  const { pinning } = context
  const notes: string[] = []
  const loadAverageAtStart = loadavg()
  progress(name, pinning.description)
  const limits = openFileLimits()
  const idleFit = Math.floor((limits.soft - FD_RESERVE) / 2)
  const idleCount = Math.min(context.quick ? IDLE_QUICK : IDLE_TARGET, idleFit)
  const warmupSeconds = context.quick ? 0.5 : 2
  const tempDir = await mkdtemp(join(tmpdir(), 'switchyard-bench-ws-'))
  const children: Child[] = []
  const proxies: RunningProxy[] = []
  let registry: RegistryProcess | undefined
  let load: WsLoadGenerator | undefined
  try {
    const [echoPort] = (await freePorts(1)) as [number]
    const upstreamOrigin = `http://127.0.0.1:${echoPort}`
    const upstream = spawnChild('ws echo upstream', process.execPath, [script('servers/ws-echo-server.js'), String(echoPort)], { cpus: pinning.others })
    children.push(upstream)
    await waitForHttp(`${upstreamOrigin}/__stats`, 'the ws echo upstream', upstream)
    const upstreamStats = async () => (await callJson('GET', `${upstreamOrigin}/__stats`)).json as UpstreamStats
    registry = await startRegistryProcess({ cpus: pinning.others, leaseSeconds: 3600 })
    await registerInstance(registry, 'api', { id: 'echo-1', version: 'v1', host: '127.0.0.1', port: echoPort })
    // Room for the idle measure's connections (the default limit is 10,000, handshakes included).
    const routerConfig = join(tempDir, 'router.json')
    await writeFile(routerConfig, JSON.stringify({ upgrades: { maxConnections: Math.max(20_000, idleCount * 2) } }))
    load = new WsLoadGenerator(pinning.others)
    const generator = load
    const helperPids = () => [upstream.pid, generator.child.pid, ...(registry ? [registry.child.pid] : [])]

    const startSwitchyard = async (inspect: boolean): Promise<RunningProxy> => {
      const router = await startRouterProcess({
        registryUrl: (registry as RegistryProcess).url,
        token: (registry as RegistryProcess).routerToken,
        cpus: pinning.proxy,
        config: routerConfig,
        nodeOptions: inspect ? [INSPECT_FLAG] : []
      })
      await waitForHttp(`${router.proxyUrl}/api/ready`, 'switchyard (first proxied request)', router.child)
      return {
        name: 'switchyard',
        url: `ws://127.0.0.1:${new URL(router.proxyUrl).port}/api/echo`,
        child: router.child,
        heapUsed: async () => {
          const text = (await callJson('GET', `${router.adminUrl}/metrics`)).text
          return Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1] ?? NaN)
        },
        stop: async () => void (await router.child.stop())
      }
    }
    const startFastify = async (inspect: boolean): Promise<RunningProxy> => {
      const [port] = (await freePorts(1)) as [number]
      const args = [...(inspect ? [INSPECT_FLAG] : []), script('peers/fastify-ws-proxy.js'), String(port), upstreamOrigin]
      const child = spawnChild('fastify-http-proxy (websocket)', process.execPath, args, { cpus: pinning.proxy })
      await waitForHttp(`http://127.0.0.1:${port}/api/ready`, '@fastify/http-proxy (first proxied request)', child)
      return {
        name: 'fastify-http-proxy',
        url: `ws://127.0.0.1:${port}/api/echo`,
        child,
        heapUsed: async () => ((await callJson('GET', `http://127.0.0.1:${port}/__heap`)).json as { heapUsed: number }).heapUsed,
        stop: async () => void (await child.stop())
      }
    }

    // Messages/s: both proxies up for the whole phase, taking turns with direct.
    const switchyard = await startSwitchyard(false)
    proxies.push(switchyard)
    const fastify = await startFastify(false)
    proxies.push(fastify)
    const targets: Target[] = [
      { name: 'direct', label: `no proxy: straight to the ws ${packageVersion('ws')} echo upstream`, url: `ws://127.0.0.1:${echoPort}/api/echo`, pid: undefined },
      { name: 'switchyard', label: 'switchyard router (byte tunnel after the 101, metrics on, tracing off)', url: switchyard.url, pid: switchyard.child.pid },
      {
        name: 'fastify-http-proxy',
        label: `@fastify/http-proxy ${packageVersion('@fastify/http-proxy')} websocket: true (ws ${packageVersion('ws')} server and client, messages re-sent)`,
        url: fastify.url,
        pid: fastify.child.pid
      }
    ]
    progress(
      name,
      `echo: ${ECHO_CONNECTIONS} connections, one message in flight each, ${MESSAGE_SIZES.join(' and ')} B, ${context.rounds} rounds x ${context.durationSeconds} s per configuration`
    )

    const rounds: WebSocketRound[] = []
    const measure = async (target: Target, messageBytes: number, round: number, seconds: number, record: boolean) => {
      const probe = probeForeignLoad([...helperPids(), ...proxies.map((proxy) => proxy.child.pid)])
      const helpersBefore = helperPids().reduce((sum, pid) => sum + treeCpuSeconds(pid), 0)
      const cpuBefore = target.pid === undefined ? 0 : treeCpuSeconds(target.pid)
      const waitBefore = target.pid === undefined ? 0 : treeRunqueueWaitSeconds(target.pid)
      const started = performance.now()
      const echo = await generator.echo({ url: target.url, connections: ECHO_CONNECTIONS, durationSeconds: seconds, messageBytes })
      const wall = (performance.now() - started) / 1000
      const cpu = target.pid === undefined || !procAvailable() ? null : treeCpuSeconds(target.pid) - cpuBefore
      const waited = target.pid === undefined ? null : (treeRunqueueWaitSeconds(target.pid) - waitBefore) / wall
      const sharedCoreBusy = (helperPids().reduce((sum, pid) => sum + treeCpuSeconds(pid), 0) - helpersBefore) / wall
      const foreignLoad = probe.finish()
      if (!record) return
      const entry: WebSocketRound = {
        configuration: target.name,
        messageBytes,
        round,
        echo,
        proxyCpuUsPerMessage: cpu === null || echo.messages === 0 ? null : (cpu / echo.messages) * 1e6,
        // The round's wall time includes opening and closing its connections: busy is a slight underestimate.
        proxyBusy: cpu === null ? null : cpu / wall,
        sharedCoreBusy,
        proxyWaited: waited,
        foreignLoad
      }
      rounds.push(entry)
      progress(
        name,
        `${messageBytes} B round ${round} ${target.name}: ${integer(echo.messagesPerSecond)} msg/s, p99 ${integer(echo.latencyMs.p99 * 1000)} us, ${echo.errors} errors` +
          `${entry.proxyCpuUsPerMessage === null ? '' : `, proxy ${fixed(entry.proxyCpuUsPerMessage, 1)} CPU us/msg, busy ${fixed((entry.proxyBusy ?? NaN) * 100, 0)}%, waited ${fixed((waited ?? NaN) * 100, 0)}%`}` +
          `, shared core ${fixed(sharedCoreBusy * 100, 0)}%, other load ${fixed(foreignLoad * 100, 0)}%`
      )
      if (echo.errors > 0) progress(name, `  first error: ${echo.firstError ?? '?'}`)
    }

    if (warmupSeconds > 0) {
      for (const target of targets) {
        progress(name, `warm-up ${target.name} (${warmupSeconds} s)`)
        await measure(target, MESSAGE_SIZES[0], 0, warmupSeconds, false)
      }
    }
    for (const messageBytes of MESSAGE_SIZES) {
      for (let round = 1; round <= context.rounds; round++) {
        for (const target of targets) await measure(target, messageBytes, round, context.durationSeconds, true)
      }
    }
    const echoRows = MESSAGE_SIZES.flatMap((messageBytes) => targets.map((target) => summarizeEcho(rounds, target.name, messageBytes)))
    for (const proxy of proxies.splice(0)) await proxy.stop()

    // Memory per idle connection: a fresh process of each proxy, one at a time.
    progress(
      name,
      `idle: ${integer(idleCount)} connections per proxy (open files: soft ${limits.soft}, hard ${limits.hard}; a proxied connection takes 2 descriptors in the proxy)`
    )
    const idle: IdleMeasure[] = []
    for (const start of [startSwitchyard, startFastify]) {
      const proxy = await start(true)
      proxies.push(proxy)
      idle.push(await measureIdle(name, proxy, generator, upstreamStats, idleCount, upstream.pid, context.quick))
      proxies.splice(proxies.indexOf(proxy), 1)
      await proxy.stop()
    }

    const loadAverageAtEnd = loadavg()
    const tables = websocketTables(echoRows, rounds, idle, context, idleCount)
    const foreign = rounds.map((round) => round.foreignLoad)
    notes.push(
      pinning.description,
      `load generator: its own process on the shared core (bench/lib/ws-load-worker.ts): raw sockets, one pre-masked binary frame per connection, the first echo on each connection checked byte for byte; upstream: ws ${packageVersion('ws')} echo server (bench/servers/ws-echo-server.ts), permessage-deflate off`,
      `load average ${loadAverageAtStart.map((value) => value.toFixed(2)).join(' ')} at the start of the scenario, ${loadAverageAtEnd.map((value) => value.toFixed(2)).join(' ')} at its end (2 cores shared with other work: every figure is noisy, the ratios less so)`,
      `other load: processes outside the benchmark used a median ${fixed(median(foreign) * 100, 0)}% (max ${fixed(Math.max(...foreign.filter(Number.isFinite)) * 100, 0)}%) of the machine's CPU during the echo rounds (/proc/stat)`
    )
    if (idleCount < IDLE_TARGET) {
      notes.push(
        context.quick
          ? `idle: ${integer(idleCount)} connections in a --quick run (${integer(IDLE_TARGET)} in a full run when the file-descriptor limit allows)`
          : `idle: ${integer(idleCount)} connections, not ${integer(IDLE_TARGET)}: the open-file limit here is ${limits.soft} (hard ${limits.hard}) and each proxied connection takes 2 descriptors in the proxy`
      )
    }
    return {
      name,
      notes,
      tables,
      data: {
        echoConnections: ECHO_CONNECTIONS,
        messageSizes: MESSAGE_SIZES,
        roundsPerConfiguration: context.rounds,
        secondsPerRound: context.durationSeconds,
        warmupSeconds,
        loadAverageAtStart,
        loadAverageAtEnd,
        openFileLimits: limits,
        pinning,
        configurations: targets.map((target) => ({ name: target.name, label: target.label })),
        rounds,
        echo: echoRows,
        idle
      }
    }
  } finally {
    for (const proxy of proxies) await proxy.stop().catch(() => {})
    await load?.stop()
    await registry?.close().catch(() => {})
    for (const child of children) await child.stop()
    await rm(tempDir, { recursive: true, force: true })
  }
}

function summarizeEcho(rounds: readonly WebSocketRound[], configuration: string, messageBytes: number): EchoRow {
  const mine = rounds.filter((round) => round.configuration === configuration && round.messageBytes === messageBytes)
  const nullableMedian = (values: (number | null)[]) => {
    const present = values.filter((value): value is number => value !== null)
    return present.length > 0 ? median(present) : null
  }
  const rates = mine.map((round) => round.echo.messagesPerSecond)
  return {
    configuration,
    messageBytes,
    messagesPerSecond: median(rates),
    spread: spread(rates),
    p50Us: median(mine.map((round) => round.echo.latencyMs.p50 * 1000)),
    p99Us: median(mine.map((round) => round.echo.latencyMs.p99 * 1000)),
    errors: mine.reduce((sum, round) => sum + round.echo.errors, 0),
    proxyCpuUsPerMessage: nullableMedian(mine.map((round) => round.proxyCpuUsPerMessage)),
    proxyBusy: nullableMedian(mine.map((round) => round.proxyBusy)),
    sharedCoreBusy: median(mine.map((round) => round.sharedCoreBusy)),
    proxyWaited: nullableMedian(mine.map((round) => round.proxyWaited))
  }
}

async function measureIdle(
  name: string,
  proxy: RunningProxy,
  load: WsLoadGenerator,
  upstreamStats: () => Promise<UpstreamStats>,
  count: number,
  upstreamPid: number,
  quick: boolean
): Promise<IdleMeasure> {
  const connectionsAtUpstream = (expected: number, what: string) =>
    waitUntil(async () => ((await upstreamStats()).connections === expected ? true : undefined), `${what} (${expected} connections at the upstream)`, 60_000, 100)
  // Warm: the echo and handshake paths run (and are compiled) before the baseline.
  await load.echo({ url: proxy.url, connections: ECHO_CONNECTIONS, durationSeconds: quick ? 0.5 : 1, messageBytes: 64 })
  await load.open(proxy.url, 500, OPEN_CONCURRENCY)
  await load.close()
  await connectionsAtUpstream(0, `${proxy.name}'s warm-up connections to close`)
  const read = async (gc: boolean) => {
    if (gc) await collectGarbage(proxy.child)
    return { rss: treeRssMiB(proxy.child.pid), heap: gc ? bytesToMiB(await proxy.heapUsed()) : NaN }
  }
  const before = await read(true)
  const upstreamBeforeMiB = treeRssMiB(upstreamPid)
  progress(name, `idle ${proxy.name}: RSS ${fixed(before.rss, 1)} MiB, heap used ${fixed(before.heap, 1)} MiB before (after a full GC); opening ${integer(count)} connections`)
  const opened = await load.open(proxy.url, count, OPEN_CONCURRENCY)
  // @fastify/http-proxy answers the 101 before its own connection to the upstream is open: wait for that one too.
  await connectionsAtUpstream(opened.opened, `${proxy.name}'s idle connections to reach the upstream`)
  const open = await read(false)
  const upstreamOpenMiB = treeRssMiB(upstreamPid)
  const openGc = await read(true)
  const peakRssMiB = treePeakRssMiB(proxy.child.pid)
  const closed = await load.close()
  await connectionsAtUpstream(0, `${proxy.name}'s idle connections to close`)
  const afterClose = await read(true)
  const perConnection = (from: number, to: number) => (opened.opened > 0 ? ((to - from) * 1024) / opened.opened : NaN)
  const measure: IdleMeasure = {
    configuration: proxy.name,
    asked: count,
    opened: opened.opened,
    failed: opened.failed,
    firstError: opened.firstError,
    openSeconds: opened.seconds,
    rssBeforeMiB: before.rss,
    heapUsedBeforeMiB: before.heap,
    rssOpenMiB: open.rss,
    rssOpenGcMiB: openGc.rss,
    heapUsedOpenGcMiB: openGc.heap,
    rssAfterCloseMiB: afterClose.rss,
    heapUsedAfterCloseMiB: afterClose.heap,
    peakRssMiB,
    perConnectionRssKiB: perConnection(before.rss, open.rss),
    perConnectionRssGcKiB: perConnection(before.rss, openGc.rss),
    perConnectionHeapKiB: perConnection(before.heap, openGc.heap),
    upstreamPerConnectionKiB: perConnection(upstreamBeforeMiB, upstreamOpenMiB),
    closedEarly: closed.closedEarly
  }
  progress(
    name,
    `idle ${proxy.name}: ${integer(opened.opened)} open (${opened.failed} failed${opened.firstError ? `: ${opened.firstError}` : ''}) in ${fixed(opened.seconds, 1)} s; ` +
      `RSS ${fixed(open.rss, 1)} MiB (${fixed(measure.perConnectionRssKiB, 1)} KiB per connection), after a full GC ${fixed(openGc.rss, 1)} MiB (${fixed(measure.perConnectionRssGcKiB, 1)} KiB), ` +
      `heap used ${fixed(openGc.heap, 1)} MiB (${fixed(measure.perConnectionHeapKiB, 1)} KiB); closed: RSS ${fixed(afterClose.rss, 1)} MiB, heap used ${fixed(afterClose.heap, 1)} MiB; ${closed.closedEarly} closed early`
  )
  return measure
}

function websocketTables(echoRows: readonly EchoRow[], rounds: readonly WebSocketRound[], idle: readonly IdleMeasure[], context: BenchContext, idleCount: number): Table[] {
  const percent = (value: number | null) => (value === null || !Number.isFinite(value) ? 'n/a' : `${fixed(value * 100, 0)}%`)
  const tables: Table[] = [
    {
      title: `WebSocket echo: ${ECHO_CONNECTIONS} connections, one message in flight on each, median of ${context.rounds} rounds x ${context.durationSeconds} s`,
      columns: ['configuration', 'message', 'msg/s', 'spread', 'p50 us', 'p99 us', 'errors', 'proxy CPU us/msg', 'proxy core busy', 'shared core busy', 'waited', 'vs direct'],
      rows: echoRows.map((row) => {
        const direct = echoRows.find((other) => other.configuration === 'direct' && other.messageBytes === row.messageBytes)
        return [
          row.configuration,
          row.messageBytes >= 1024 ? `${row.messageBytes / 1024} KiB` : `${row.messageBytes} B`,
          integer(row.messagesPerSecond),
          percent(row.spread),
          integer(row.p50Us),
          integer(row.p99Us),
          integer(row.errors),
          fixed(row.proxyCpuUsPerMessage, 1),
          percent(row.proxyBusy),
          percent(row.sharedCoreBusy),
          percent(row.proxyWaited),
          row.configuration === 'direct' ? 'n/a' : times(ratio(row.messagesPerSecond, direct?.messagesPerSecond ?? NaN))
        ]
      }),
      notes: [
        "msg/s: messages echoed per second over all connections; spread: (max - min) / median of the rounds; p50/p99: round trip of one message (median over rounds); proxy CPU: user + system of the proxy process per message echoed (both ways); proxy core busy: the proxy's CPU over the round's wall time; shared core busy: the upstream's, the load generator's and the registry's CPU over the round (they share one core: near 100%, that core and not the proxy is the limit); waited: share of the round the proxy's main thread was runnable but waiting for a CPU"
      ]
    }
  ]
  tables.push({
    title: 'switchyard / @fastify/http-proxy (websocket: true)',
    columns: ['message', 'msg/s (medians)', 'msg/s round by round: median (range)', 'CPU per message', 'switchyard vs direct msg/s', 'target msg/s'],
    rows: MESSAGE_SIZES.map((messageBytes) => {
      const row = (configuration: string) => echoRows.find((entry) => entry.configuration === configuration && entry.messageBytes === messageBytes)
      const perRound = (configuration: string) => rounds.filter((round) => round.configuration === configuration && round.messageBytes === messageBytes)
      const fastifyRounds = perRound('fastify-http-proxy')
      const roundRatios = perRound('switchyard')
        .map((round) => ratio(round.echo.messagesPerSecond, fastifyRounds.find((other) => other.round === round.round)?.echo.messagesPerSecond ?? NaN))
        .filter(Number.isFinite)
      const switchyard = row('switchyard')
      const fastify = row('fastify-http-proxy')
      return [
        messageBytes >= 1024 ? `${messageBytes / 1024} KiB` : `${messageBytes} B`,
        times(ratio(switchyard?.messagesPerSecond ?? NaN, fastify?.messagesPerSecond ?? NaN)),
        roundRatios.length > 0 ? `${times(median(roundRatios))} (${times(Math.min(...roundRatios))}-${times(Math.max(...roundRatios))})` : 'n/a',
        times(ratio(switchyard?.proxyCpuUsPerMessage ?? NaN, fastify?.proxyCpuUsPerMessage ?? NaN)),
        times(ratio(switchyard?.messagesPerSecond ?? NaN, row('direct')?.messagesPerSecond ?? NaN)),
        `>= ${TARGET_RATIO}x`
      ]
    }),
    notes: ['round by round: switchyard round n / fastify round n (taken a few seconds apart); CPU per message: below 1 is better for switchyard']
  })
  if (idle.length > 0) {
    tables.push({
      title: `Memory per idle upgraded connection: ${integer(idleCount)} idle WebSocket connections through a fresh proxy process`,
      columns: [
        'proxy',
        'opened',
        'failed',
        'open s',
        'RSS before MiB',
        'RSS with them MiB',
        'per connection KiB',
        'after GC: RSS with them MiB',
        'per connection KiB',
        'heap used before / with them MiB',
        'heap per connection KiB',
        'closed again, after GC: RSS / heap MiB',
        'upstream per connection KiB'
      ],
      rows: idle.map((measure) => [
        measure.configuration,
        integer(measure.opened),
        integer(measure.failed),
        fixed(measure.openSeconds, 1),
        fixed(measure.rssBeforeMiB, 1),
        fixed(measure.rssOpenMiB, 1),
        fixed(measure.perConnectionRssKiB, 1),
        fixed(measure.rssOpenGcMiB, 1),
        fixed(measure.perConnectionRssGcKiB, 1),
        `${fixed(measure.heapUsedBeforeMiB, 1)} / ${fixed(measure.heapUsedOpenGcMiB, 1)}`,
        fixed(measure.perConnectionHeapKiB, 1),
        `${fixed(measure.rssAfterCloseMiB, 1)} / ${fixed(measure.heapUsedAfterCloseMiB, 1)}`,
        fixed(measure.upstreamPerConnectionKiB, 1)
      ]),
      notes: [
        `per connection: (with them - before) / opened, in KiB; before: after a warm-up (an echo round, 500 connections opened and closed), once the upstream saw them close, and after a full GC forced through the proxy's inspector; with them: once the upstream holds every one (the peer answers its 101 before it connects upstream), first as it is (the handshakes' garbage included), then after a full GC; heap used: the router's nodejs_heap_size_used_bytes on /metrics, the peer's process.memoryUsage(); upstream: the ws echo server's RSS, no GC forced; target (read, never asserted): switchyard at most ${TARGET_KB} KB (${fixed((TARGET_KB * 1000) / 1024, 1)} KiB) per connection`
      ]
    })
  }
  return tables
}
