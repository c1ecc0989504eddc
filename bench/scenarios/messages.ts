import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as delay } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { redactAmqpUrl } from '../../router/messages/brokers/rabbitmq-broker.js'
import { spawnChild, type Child } from '../lib/children.js'
import { probeForeignLoad } from '../lib/foreign-load.js'
import { fixed, integer, times } from '../lib/format.js'
import { waitUntil } from '../lib/http.js'
import { startMessageRouterProcess } from '../lib/message-router-process.js'
import { procAvailable, treeCpuSeconds, treePeakRssMiB, treeRunqueueWaitSeconds } from '../lib/proc-stats.js'
import { progress } from '../lib/progress.js'
import { PublisherProcess } from '../lib/publisher-process.js'
import { RabbitControl, rabbitmqPid } from '../lib/rabbitmq-control.js'
import { median, ratio, spread } from '../lib/stats.js'
import { registerInstance, setWeights, startRegistryProcess, type RegistryProcess } from '../lib/switchyard-processes.js'
import type { BenchContext, ScenarioResult, Table } from './scenario.js'

/**
 * The messages scenario: messages/s relayed with publisher confirms by switchyard's message
 * router, against a relay written directly on amqplib and against raw confirmed
 * publishing, in one run, taking turns (A B C A B C ...). Every message is 1 KiB,
 * persistent, on durable queues; both relays split 90/10 between two version queues.
 *
 * A relay's round: the relay is frozen (SIGSTOP) while its source queue is preloaded with
 * N messages by the publisher, then resumed (SIGCONT); the round runs from the first to
 * the last message seen in the version queues, whose depths are polled every few
 * milliseconds. The same for both relays, so the figure is the relay's alone, not shared
 * with a concurrent producer. Raw publishing's round is the publisher's own: from the
 * first publish to the last confirm of N messages into a queue nobody consumes.
 */
const MESSAGE_BYTES = 1024
/** the message router's default prefetch; the raw relay's prefetch and the publisher's window too */
const PREFETCH = 512
const SERVICE = 'bench-worker'
const VERSIONS = [
  { name: 'v1', weight: 90 },
  { name: 'v2', weight: 10 }
] as const
const CANARY_TARGET_PERCENT = 10
const SPLIT_TARGET_PP = 0.5
const RATIO_TARGET = 0.9
const POLL_MS = 5
const DEFAULT_AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672'

type ConfigurationName = 'raw-publish' | 'raw-relay' | 'switchyard'

interface Configuration {
  name: ConfigurationName
  label: string
  /** the relay process, or undefined for raw publishing */
  relay?: { child: Child; source: string; versionQueues: string[]; otherQueues: string[] }
  /** raw publishing's queue */
  queue?: string
}

export interface MessagesRound {
  configuration: ConfigurationName
  round: number
  messages: number
  messagesPerSecond: number
  seconds: number
  /** relays: how fast the source queue was filled (raw confirmed publishing as well) */
  preloadMessagesPerSecond: number | null
  /** relays: messages in each version queue (v1, v2) when the round ended */
  perVersion: number[] | null
  /** relays: messages in the version queues beyond those sent (duplicates) */
  duplicates: number | null
  cpuSeconds: number | null
  cpuSecondsPer10k: number | null
  brokerCpuSecondsPer10k: number | null
  /** share of the machine's CPU used by processes other than the benchmark's and RabbitMQ's, 0..1 */
  foreignLoad: number
  /** share of the round the relay's threads were runnable but waiting for a CPU */
  waited: number | null
}

export interface MessagesSummary {
  configuration: ConfigurationName
  label: string
  rounds: number
  messages: number
  messagesPerSecond: number
  spread: number
  vsRawRelay: number
  vsRawPublish: number
  cpuSecondsPer10k: number | null
  brokerCpuSecondsPer10k: number | null
  peakRssMiB: number | null
  canarySharePercent: number | null
  /** canary share minus its weight, in percentage points, over every recorded message */
  splitErrorPp: number | null
  duplicates: number | null
  waited: number | null
}

function pids(configurations: readonly Configuration[]): number[] {
  return configurations.flatMap((configuration) => (configuration.relay ? [configuration.relay.child.pid] : []))
}

function signal(child: Child, name: 'SIGSTOP' | 'SIGCONT'): void {
  if (child.process.exitCode !== null) throw new Error(`${child.name} exited (${child.process.exitCode}): ${child.output().slice(-2000)}`)
  child.process.kill(name)
}

async function startRawRelay(brokerUrl: string, source: string, versionQueues: string[], cpus: string | undefined): Promise<Child> {
  const script = fileURLToPath(new URL('../servers/raw-amqp-relay.js', import.meta.url))
  const targets = versionQueues.map((queue, index) => `${queue}=${VERSIONS[index]?.weight ?? 0}`)
  const child = spawnChild('raw relay', process.execPath, [script, String(PREFETCH), source, ...targets], { cpus, captureStdout: true, env: { AMQP_URL: brokerUrl } })
  await waitUntil(
    () => {
      if (child.process.exitCode !== null) throw new Error(`the raw relay exited (${child.process.exitCode}): ${child.output().slice(-2000)}`)
      return child.stdout().includes('ready') ? true : undefined
    },
    'the raw relay',
    20_000
  )
  return child
}

export async function messagesScenario(context: BenchContext): Promise<ScenarioResult> {
  const name = 'messages'
  const brokerUrl = process.env.AMQP_URL ?? DEFAULT_AMQP_URL
  const shownUrl = redactAmqpUrl(brokerUrl)
  let control: RabbitControl
  try {
    control = await RabbitControl.open(brokerUrl)
  } catch (error) {
    const reason = `RabbitMQ is not reachable at ${shownUrl} (${(error as Error).message}); start it (rabbitmq-server -detached) or set AMQP_URL`
    progress(name, `skipped: ${reason}`)
    return { name, skipped: reason, notes: [`skipped: ${reason}`], tables: [], data: { skipped: reason } }
  }

  const perRound = context.quick ? 4_000 : 20_000
  const warmup = context.quick ? 1_000 : 5_000
  const { pinning } = context
  const notes: string[] = []
  // The relay under test takes the proxy's core; the publisher and the registry take the others.
  const placement = pinning.description.replace('proxy under test', 'relay under test').replace('load generator, upstreams', 'publisher')
  progress(name, placement)
  const prefix = `bench.m${Date.now().toString(36)}${randomBytes(3).toString('hex')}`
  const rawSource = `${prefix}.raw`
  const topic = `${prefix}.sy`
  const queues = {
    publish: `${prefix}.publish`,
    raw: [rawSource, `${rawSource}.dlq`, ...VERSIONS.map((version) => `${rawSource}.${version.name}`)],
    // the message router's: topic, wait, rejected, dead letters, one per version (router/messages/config.ts)
    switchyard: [topic, `${topic}.wait`, `${topic}.rejected`, `${topic}.dlq`, ...VERSIONS.map((version) => `${topic}.${version.name}`)]
  }
  const allQueues = [queues.publish, ...queues.raw, ...queues.switchyard]
  const tempDir = await mkdtemp(join(tmpdir(), 'switchyard-bench-messages-'))
  const brokerPid = rabbitmqPid()
  let registry: RegistryProcess | undefined
  let publisher: PublisherProcess | undefined
  const configurations: Configuration[] = []
  try {
    progress(name, `RabbitMQ at ${shownUrl}${brokerPid ? ` (pid ${brokerPid})` : ' (not a local process: its CPU is not reported)'}; queues ${prefix}.*`)
    await control.declare(queues.publish)
    await control.declare(rawSource)
    await control.declare(`${rawSource}.dlq`)
    // Declared as the message router declares its version queues: rejects go to the dead letters.
    for (const version of VERSIONS) await control.declare(`${rawSource}.${version.name}`, { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': `${rawSource}.dlq` })

    publisher = new PublisherProcess(brokerUrl, pinning.others)
    registry = await startRegistryProcess({ cpus: pinning.others, leaseSeconds: 3_600 })
    for (const version of VERSIONS) await registerInstance(registry, SERVICE, { id: `${SERVICE}-${version.name}`, version: version.name, host: '127.0.0.1', port: 9 })
    await setWeights(registry, SERVICE, Object.fromEntries(VERSIONS.map((version) => [version.name, version.weight])))

    configurations.push({ name: 'raw-publish', label: 'raw confirmed publishing (amqplib)', queue: queues.publish })
    const rawVersionQueues = VERSIONS.map((version) => `${rawSource}.${version.name}`)
    configurations.push({
      name: 'raw-relay',
      label: 'relay written on amqplib',
      relay: {
        child: await startRawRelay(brokerUrl, rawSource, rawVersionQueues, pinning.proxy),
        source: rawSource,
        versionQueues: rawVersionQueues,
        otherQueues: [`${rawSource}.dlq`]
      }
    })
    const router = await startMessageRouterProcess({ registry, brokerUrl, topic, service: SERVICE, prefetch: PREFETCH, directory: tempDir, cpus: pinning.proxy })
    configurations.push({
      name: 'switchyard',
      label: 'switchyard message router',
      relay: {
        child: router.child,
        source: topic,
        versionQueues: VERSIONS.map((version) => `${topic}.${version.name}`),
        otherQueues: [`${topic}.wait`, `${topic}.rejected`, `${topic}.dlq`]
      }
    })
    progress(name, `${configurations.map((configuration) => configuration.name).join(', ')} running; ${integer(perRound)} messages of ${MESSAGE_BYTES} bytes per round`)

    const rounds: MessagesRound[] = []
    const activePublisher = publisher
    const measure = async (configuration: Configuration, round: number, messages: number): Promise<MessagesRound> => {
      const relay = configuration.relay
      const ownQueues = relay ? [relay.source, ...relay.versionQueues, ...relay.otherQueues] : [configuration.queue as string]
      await control.purge(ownQueues)
      let preloadMessagesPerSecond: number | null = null
      if (relay) {
        // Frozen while its source fills, so that the round measures the relay alone.
        signal(relay.child, 'SIGSTOP')
        try {
          preloadMessagesPerSecond = messages / (await activePublisher.publish({ queue: relay.source, count: messages, bytes: MESSAGE_BYTES, window: PREFETCH }))
        } catch (error) {
          signal(relay.child, 'SIGCONT')
          throw error
        }
      }
      const probe = probeForeignLoad([...pids(configurations), activePublisher.child.pid, ...(registry ? [registry.child.pid] : []), ...(brokerPid ? [brokerPid] : [])])
      const pid = relay?.child.pid
      const cpuBefore = pid === undefined ? 0 : treeCpuSeconds(pid)
      const waitBefore = pid === undefined ? 0 : treeRunqueueWaitSeconds(pid)
      const brokerBefore = brokerPid ? treeCpuSeconds(brokerPid) : 0
      const started = performance.now()
      let seconds: number
      let perVersion: number[] | null = null
      if (!relay) {
        seconds = await activePublisher.publish({ queue: configuration.queue as string, count: messages, bytes: MESSAGE_BYTES, window: PREFETCH })
      } else {
        signal(relay.child, 'SIGCONT')
        const timing = await timeArrivals(control, relay.versionQueues, messages, started)
        seconds = timing.seconds
        perVersion = timing.perVersion
      }
      const elapsed = (performance.now() - started) / 1000
      const cpuSeconds = pid === undefined || !procAvailable() ? null : treeCpuSeconds(pid) - cpuBefore
      const brokerCpu = brokerPid && procAvailable() ? treeCpuSeconds(brokerPid) - brokerBefore : null
      const waited = pid === undefined ? null : (treeRunqueueWaitSeconds(pid) - waitBefore) / elapsed
      const foreignLoad = probe.finish()
      // Read again once the round is over: a redelivered message would show up here as one too many.
      const after = relay ? await control.depths(relay.versionQueues) : null
      const result: MessagesRound = {
        configuration: configuration.name,
        round,
        messages,
        messagesPerSecond: messages / seconds,
        seconds,
        preloadMessagesPerSecond,
        perVersion,
        duplicates: after ? Math.max(0, after.reduce((sum, count) => sum + count, 0) - messages) : null,
        cpuSeconds,
        cpuSecondsPer10k: cpuSeconds === null ? null : (cpuSeconds / messages) * 10_000,
        brokerCpuSecondsPer10k: brokerCpu === null ? null : (brokerCpu / messages) * 10_000,
        foreignLoad,
        waited
      }
      await control.purge(ownQueues)
      return result
    }
    const describe = (result: MessagesRound) =>
      `${integer(result.messagesPerSecond)} msg/s` +
      (result.preloadMessagesPerSecond === null ? '' : ` (source filled at ${integer(result.preloadMessagesPerSecond)} msg/s)`) +
      (result.perVersion ? `, v2 ${fixed(((result.perVersion[1] ?? 0) / result.messages) * 100, 2)}%` : '') +
      (result.duplicates ? `, ${integer(result.duplicates)} duplicates` : '') +
      (result.cpuSecondsPer10k === null ? '' : `, ${fixed(result.cpuSecondsPer10k)} CPU s/10k, waited for a CPU ${fixed((result.waited ?? NaN) * 100, 0)}%`) +
      (result.brokerCpuSecondsPer10k === null ? '' : `, broker ${fixed(result.brokerCpuSecondsPer10k)} CPU s/10k`) +
      `, other load ${fixed(result.foreignLoad * 100, 0)}%`

    for (const configuration of configurations) {
      progress(name, `warm-up ${configuration.name} (${integer(warmup)} messages)`)
      await measure(configuration, 0, warmup)
    }
    for (let round = 1; round <= context.rounds; round++) {
      for (const configuration of configurations) {
        const result = await measure(configuration, round, perRound)
        rounds.push(result)
        progress(name, `round ${round} ${configuration.name}: ${describe(result)}`)
      }
    }

    const summaries = summarize(rounds, configurations)
    const switchyard = summaries.find((summary) => summary.configuration === 'switchyard')
    const foreign = rounds.map((round) => round.foreignLoad).filter(Number.isFinite)
    const total = rounds.filter((round) => round.configuration === 'switchyard').reduce((sum, round) => sum + round.messages, 0)
    notes.push(
      `each round: ${integer(perRound)} messages of ${MESSAGE_BYTES} bytes, persistent, durable queues; the relays' source queue is filled first (relay frozen with SIGSTOP), then the relay is resumed and timed from the first to the last message seen in the version queues (depths polled every ${POLL_MS} ms); raw publishing is timed from the first publish to the last confirm`,
      `both relays: prefetch ${PREFETCH}, publish on a confirm channel without waiting for each confirm, ack (multiple) only after the confirms, 90/10 split by smooth weighted round-robin; the publisher keeps at most ${PREFETCH} messages unconfirmed`,
      `split and duplicates over ${integer(total)} messages through switchyard (${context.rounds} rounds)${context.quick ? '; a --quick run: a full run measures the split over 100,000 messages' : ''}; duplicates: messages in the version queues beyond those sent`,
      `${placement}; RabbitMQ (unpinned) at ${shownUrl}${brokerPid ? '' : ' (not local: broker CPU not reported)'}`,
      `other load: processes outside the benchmark and RabbitMQ used a median ${fixed(median(foreign) * 100, 0)}% (max ${fixed(Math.max(...foreign) * 100, 0)}%) of the machine's CPU during the rounds (/proc/stat); high values, a high "waited" and a high spread mean noisy figures`,
      `targets (read, never asserted): switchyard at least ${RATIO_TARGET}x the raw relay's messages/s (${switchyard ? times(switchyard.vsRawRelay) : 'n/a'} here), split error within ${SPLIT_TARGET_PP} percentage point (${switchyard ? fixed(switchyard.splitErrorPp, 3) : 'n/a'} pp here)`
    )
    return {
      name,
      notes,
      tables: messagesTables(summaries, context, perRound),
      data: {
        brokerUrl: shownUrl,
        messageBytes: MESSAGE_BYTES,
        prefetch: PREFETCH,
        publisherWindow: PREFETCH,
        messagesPerRound: perRound,
        warmupMessages: warmup,
        roundsPerConfiguration: context.rounds,
        pollMs: POLL_MS,
        weights: VERSIONS,
        pinning,
        configurations: configurations.map((configuration) => ({ name: configuration.name, label: configuration.label })),
        rounds,
        summaries
      }
    }
  } finally {
    for (const configuration of configurations) {
      const child = configuration.relay?.child
      if (child && child.process.exitCode === null) child.process.kill('SIGCONT')
      await child?.stop()
    }
    await publisher?.child.stop()
    await registry?.close().catch(() => {})
    await control.delete(allQueues).catch(() => {})
    await control.close()
    await rm(tempDir, { recursive: true, force: true })
  }
}

/**
 * Polls the version queues until they hold `messages` in all; the rate counts what
 * arrived between the first poll that saw a message and the last one, so the time
 * before the first message (the relay waking up) is not part of it.
 */
async function timeArrivals(control: RabbitControl, versionQueues: readonly string[], messages: number, resumedAt: number): Promise<{ seconds: number; perVersion: number[] }> {
  const deadline = performance.now() + 60_000 + messages
  let first: { at: number; count: number } | undefined
  for (;;) {
    const depths = await control.depths(versionQueues)
    const at = performance.now()
    const count = depths.reduce((sum, depth) => sum + depth, 0)
    if (count > 0 && !first) first = { at, count }
    if (count >= messages) {
      const start = first && first.at < at ? first : { at: resumedAt, count: 0 }
      // scaled to the whole round, so that messages / seconds is the rate observed
      return { seconds: ((at - start.at) / 1000) * (messages / (count - start.count)), perVersion: depths }
    }
    if (at > deadline) throw new Error(`only ${count} of ${messages} messages reached ${versionQueues.join(', ')} in ${Math.round((at - resumedAt) / 1000)} s`)
    await delay(POLL_MS)
  }
}

function summarize(rounds: readonly MessagesRound[], configurations: readonly Configuration[]): MessagesSummary[] {
  const rateOf = (name: ConfigurationName) => median(rounds.filter((round) => round.configuration === name).map((round) => round.messagesPerSecond))
  const rawRelay = rateOf('raw-relay')
  const rawPublish = rateOf('raw-publish')
  return configurations.map((configuration) => {
    const mine = rounds.filter((round) => round.configuration === configuration.name)
    const rates = mine.map((round) => round.messagesPerSecond)
    const messages = mine.reduce((sum, round) => sum + round.messages, 0)
    const nonNull = (values: (number | null)[]) => values.filter((value): value is number => value !== null)
    const cpu = nonNull(mine.map((round) => round.cpuSecondsPer10k))
    const broker = nonNull(mine.map((round) => round.brokerCpuSecondsPer10k))
    const canary = nonNull(mine.map((round) => (round.perVersion ? (round.perVersion[1] ?? 0) : null)))
    const share = canary.length > 0 ? (canary.reduce((sum, count) => sum + count, 0) / messages) * 100 : null
    const pid = configuration.relay?.child.pid
    return {
      configuration: configuration.name,
      label: configuration.label,
      rounds: mine.length,
      messages,
      messagesPerSecond: median(rates),
      spread: spread(rates),
      vsRawRelay: ratio(median(rates), rawRelay),
      vsRawPublish: ratio(median(rates), rawPublish),
      cpuSecondsPer10k: cpu.length > 0 ? median(cpu) : null,
      brokerCpuSecondsPer10k: broker.length > 0 ? median(broker) : null,
      peakRssMiB: pid === undefined || !procAvailable() ? null : treePeakRssMiB(pid),
      canarySharePercent: share,
      splitErrorPp: share === null ? null : share - CANARY_TARGET_PERCENT,
      duplicates: configuration.relay ? nonNull(mine.map((round) => round.duplicates)).reduce((sum, count) => sum + count, 0) : null,
      waited: pid === undefined ? null : median(mine.map((round) => round.waited ?? NaN))
    }
  })
}

function messagesTables(summaries: readonly MessagesSummary[], context: BenchContext, perRound: number): Table[] {
  const switchyard = summaries.find((summary) => summary.configuration === 'switchyard')
  const rawRelay = summaries.find((summary) => summary.configuration === 'raw-relay')
  const tables: Table[] = [
    {
      title: `Messages with publisher confirms: ${integer(perRound)} x ${MESSAGE_BYTES} B persistent messages per round, median of ${context.rounds} rounds`,
      columns: [
        'configuration',
        'msg/s',
        'spread',
        'vs raw relay',
        'vs raw publish',
        'CPU s/10k msg',
        'peak RSS MiB',
        'broker CPU s/10k msg',
        'v2 share %',
        'duplicates',
        'waited'
      ],
      rows: summaries.map((summary) => [
        summary.configuration,
        integer(summary.messagesPerSecond),
        `${fixed(summary.spread * 100, 0)}%`,
        times(summary.vsRawRelay),
        times(summary.vsRawPublish),
        fixed(summary.cpuSecondsPer10k),
        fixed(summary.peakRssMiB, 0),
        fixed(summary.brokerCpuSecondsPer10k),
        fixed(summary.canarySharePercent, 3),
        summary.duplicates === null ? 'n/a' : integer(summary.duplicates),
        summary.waited === null ? 'n/a' : `${fixed(summary.waited * 100, 0)}%`
      ]),
      notes: [
        "msg/s: messages per second (median of the rounds); spread: (max - min) / median; CPU: user + system seconds of the relay process per 10,000 messages; broker CPU: RabbitMQ's (beam.smp) in the same round; v2 share: the 10% version's share of every message the relay moved; waited: share of the round the relay's main thread was runnable but waiting for a CPU"
      ]
    }
  ]
  if (switchyard && rawRelay) {
    tables.push({
      title: 'switchyard message router against its targets',
      columns: ['figure', 'measured', 'target'],
      rows: [
        ['switchyard / raw relay, msg/s', times(switchyard.vsRawRelay), `>= ${RATIO_TARGET}x`],
        ['raw relay / raw publish, msg/s', times(rawRelay.vsRawPublish), 'n/a'],
        [`split error over ${integer(switchyard.messages)} messages, percentage points`, fixed(switchyard.splitErrorPp, 3), `within ${SPLIT_TARGET_PP}`],
        ['duplicates', integer(switchyard.duplicates), '0']
      ]
    })
  }
  return tables
}
