/**
 * Registry load, run as its own process (its CPU never counts as the registry's, and the
 * benchmark's own event loop stays free to poll): registrations in a closed loop and
 * heartbeats at a fixed rate, against one or several registry replicas, through undici
 * pools of keep-alive connections. Latencies are recorded per request at microsecond
 * resolution; a heartbeat's runs from its scheduled time, so a registry that stalls
 * cannot hide the heartbeats it delayed.
 *
 * Instance `i` is `<idPrefix>-<i>` in service `<servicePrefix><i % services>`, version v1;
 * it always talks to replica `urls[i % urls.length]`, as an agent that stays on the
 * first URL of its list.
 *
 * Started by the benchmark with an IPC channel (bench/lib/registry-load.ts), one task
 * per message.
 */
import { performance } from 'node:perf_hooks'
import { Pool } from 'undici'
import type { LatencySummary } from './load-spec.js'
import { summarizeLatencies } from './load-spec.js'
import { sendPaced } from './paced-sends.js'
import { serveTasks } from './task-channel.js'

const MAX_SAMPLES = 2_000_000

export interface InstanceNaming {
  idPrefix: string
  servicePrefix: string
  services: number
}

export type RegistryLoadTask =
  | (InstanceNaming & {
      kind: 'register'
      urls: string[]
      token: string
      /** concurrent clients, each one request at a time; client c talks to urls[c % urls.length] */
      clients: number
      /** first instance index */
      from: number
      /** stop after this many instances (`from` .. `from + count - 1`) ... */
      count?: number
      /** ... or once this many seconds have passed (requests in flight are finished) */
      durationSeconds?: number
    })
  | (InstanceNaming & {
      kind: 'heartbeat'
      urls: string[]
      token: string
      /** instances 0 .. instances - 1 take turns, in order */
      instances: number
      /** heartbeats per second over all instances, evenly spaced */
      rate: number
      durationSeconds: number
      /** the turn to start at (continue where the previous round stopped) */
      from: number
      connectionsPerUrl: number
    })

export interface RegistryLoadSummary {
  kind: RegistryLoadTask['kind']
  /** wall time from the first request to the last answer */
  elapsedSeconds: number
  sent: number
  ok: number
  /** answers other than 2xx, by status */
  non2xx: Record<string, number>
  /** connection errors and timeouts */
  errors: number
  /** ok / elapsedSeconds */
  okPerSecond: number
  latencyMs: LatencySummary
  /** heartbeats: latency from the actual send, without the generator's own lateness in sending */
  fromSendMs: LatencySummary
  /** 2xx answers per replica URL */
  okByUrl: Record<string, number>
  /** the next instance index (register) or turn (heartbeat) */
  next: number
  /** heartbeats sent more than 5 ms after their scheduled time: the generator itself was late */
  lateSends: number
}

function service(naming: InstanceNaming, index: number): string {
  return `${naming.servicePrefix}${index % naming.services}`
}

function instanceId(naming: InstanceNaming, index: number): string {
  return `${naming.idPrefix}-${index}`
}

class Tally {
  readonly samples: Float64Array
  /** heartbeats: from the moment the request was handed to undici (the generator's own lateness left out) */
  readonly fromSend: Float64Array
  count = 0
  ok = 0
  errors = 0
  readonly non2xx: Record<string, number> = {}
  readonly okByUrl: Record<string, number> = {}

  constructor(expected: number) {
    this.samples = new Float64Array(Math.min(MAX_SAMPLES, Math.max(1, expected)))
    this.fromSend = new Float64Array(this.samples.length)
  }

  answer(url: string, status: number, latencyMs: number, fromSendMs = latencyMs): void {
    if (status >= 200 && status < 300) {
      this.ok++
      this.okByUrl[url] = (this.okByUrl[url] ?? 0) + 1
      if (this.count < this.samples.length) {
        this.fromSend[this.count] = fromSendMs
        this.samples[this.count++] = latencyMs
      }
    } else {
      this.non2xx[status] = (this.non2xx[status] ?? 0) + 1
    }
  }
}

function pools(urls: readonly string[], connections: number): Pool[] {
  return urls.map((url) => new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 30_000 }))
}

async function register(task: Extract<RegistryLoadTask, { kind: 'register' }>): Promise<RegistryLoadSummary> {
  if (task.count === undefined && task.durationSeconds === undefined) throw new Error('register: give count or durationSeconds')
  const perUrl = Math.ceil(task.clients / task.urls.length)
  const dispatchers = pools(task.urls, perUrl)
  const end = task.count === undefined ? Infinity : task.from + task.count
  const tally = new Tally(task.count ?? 200_000)
  const headers = { authorization: `Bearer ${task.token}`, 'content-type': 'application/json' }
  let next = task.from
  const started = performance.now()
  const deadline = task.durationSeconds === undefined ? Infinity : started + task.durationSeconds * 1000
  const client = async (c: number) => {
    const pool = dispatchers[c % dispatchers.length] as Pool
    const url = task.urls[c % task.urls.length] as string
    while (next < end && performance.now() < deadline) {
      const index = next++
      const body = JSON.stringify({ id: instanceId(task, index), version: 'v1', host: '127.0.0.1', port: 10_000 + (index % 50_000) })
      const sentAt = performance.now()
      try {
        const response = await pool.request({ path: `/v1/services/${service(task, index)}/instances`, method: 'POST', headers, body, headersTimeout: 15_000, bodyTimeout: 15_000 })
        await response.body.dump()
        tally.answer(url, response.statusCode, performance.now() - sentAt)
      } catch {
        tally.errors++
      }
    }
  }
  await Promise.all(Array.from({ length: task.clients }, (_, c) => client(c)))
  const elapsedSeconds = (performance.now() - started) / 1000
  await Promise.all(dispatchers.map((pool) => pool.close()))
  return {
    kind: 'register',
    elapsedSeconds,
    sent: next - task.from,
    ok: tally.ok,
    non2xx: tally.non2xx,
    errors: tally.errors,
    okPerSecond: tally.ok / elapsedSeconds,
    latencyMs: summarizeLatencies(tally.samples.subarray(0, tally.count)),
    fromSendMs: summarizeLatencies(tally.fromSend.subarray(0, tally.count)),
    okByUrl: tally.okByUrl,
    next,
    lateSends: 0
  }
}

async function heartbeat(task: Extract<RegistryLoadTask, { kind: 'heartbeat' }>): Promise<RegistryLoadSummary> {
  const dispatchers = pools(task.urls, task.connectionsPerUrl)
  const total = Math.max(1, Math.round(task.rate * task.durationSeconds))
  const tally = new Tally(total)
  const headers = { authorization: `Bearer ${task.token}` }
  let lateSends = 0
  const started = await sendPaced(total, task.rate, (scheduledAt, sent) => {
    const index = (task.from + sent) % task.instances
    const replica = index % task.urls.length
    const url = task.urls[replica] as string
    const sentAt = performance.now()
    if (sentAt - scheduledAt > 5) lateSends++
    return (dispatchers[replica] as Pool)
      .request({ path: `/v1/services/${service(task, index)}/instances/${instanceId(task, index)}/heartbeat`, method: 'PUT', headers, headersTimeout: 10_000, bodyTimeout: 10_000 })
      .then(async (response) => {
        await response.body.dump()
        const now = performance.now()
        tally.answer(url, response.statusCode, now - scheduledAt, now - sentAt)
      })
      .catch(() => {
        tally.errors++
      })
  })
  const sent = total
  const elapsedSeconds = (performance.now() - started) / 1000
  await Promise.all(dispatchers.map((pool) => pool.close()))
  return {
    kind: 'heartbeat',
    elapsedSeconds,
    sent,
    ok: tally.ok,
    non2xx: tally.non2xx,
    errors: tally.errors,
    okPerSecond: tally.ok / elapsedSeconds,
    latencyMs: summarizeLatencies(tally.samples.subarray(0, tally.count)),
    fromSendMs: summarizeLatencies(tally.fromSend.subarray(0, tally.count)),
    okByUrl: tally.okByUrl,
    next: (task.from + sent) % task.instances,
    lateSends
  }
}

function run(task: RegistryLoadTask): Promise<RegistryLoadSummary> {
  return task.kind === 'register' ? register(task) : heartbeat(task)
}

if (!serveTasks(run)) {
  process.stderr.write('registry load worker: start it with an IPC channel (bench/lib/registry-load.ts)\n')
  process.exit(2)
}
