import cluster, { type Worker } from 'node:cluster'
import type { SignalCounters, ToPrimary, ToWorker, Question } from './messages.js'
import { isToPrimary } from './messages.js'
import { retained, type MetricsJson } from './metrics-merge.js'
import { QUICK_EXIT_MS, restartDelayMs } from './restart-delay.js'
import { addSignalCounters } from './signal-totals.js'

export interface PoolLog {
  info(object: object, message: string): void
  warn(object: object, message: string): void
  error(object: object, message: string): void
}

export interface WorkerPoolOptions {
  size: number
  /** the worker's module (router/workers/worker-main.js) */
  exec: string
  /** a worker's first message, built when it says hello: the registry's state as of then */
  startMessage(): ToWorker
  /** the revision every worker has applied went up: report it now */
  onApplied(): void
  log: PoolLog
  clock?: () => number
}

/** One running worker process, as the primary knows it. */
export interface Member {
  /** its place in the pool (0..size-1): a worker started in place of another takes its slot */
  slot: number
  worker: Worker
  pid: number
  startedAt: number
  /** sent its start message: it gets every snapshot and change from then on */
  started: boolean
  listening: boolean
  url: string | undefined
  /** from its last report */
  appliedRevision: number
  ready: boolean
  counters: SignalCounters
  /** its answer to the last metrics question (kept for when it does not answer in time, and when it exits) */
  metrics: MetricsJson | undefined
}

interface Slot {
  index: number
  member: Member | undefined
  restarts: number
  /** workers of this slot that exited young, in a row (restart backoff) */
  quickExits: number
  timer: NodeJS.Timeout | undefined
}

interface PendingQuestion {
  waiting: Set<Member>
  answers: Map<Member, unknown>
  done(): void
}

/**
 * The primary's workers (node:cluster): forks them, hands each the registry's state and
 * every change after it, starts another in place of one that exits (with backoff), keeps
 * what exited workers counted so that the router's totals never go down, and drains them
 * all on shutdown.
 */
export class WorkerPool {
  private readonly slots: Slot[]
  private readonly options: WorkerPoolOptions
  private readonly clock: () => number
  private retiredCounters: SignalCounters = {}
  private retiredMetrics: Promise<MetricsJson> = Promise.resolve([])
  private applied = 0
  private closing = false
  private starting: { resolve(url: string): void; reject(error: Error): void } | undefined
  private drained: (() => void) | undefined
  private readonly questions = new Map<number, PendingQuestion>()
  private nextQuestion = 0
  /** workers started in place of others since the router started */
  restarts = 0

  constructor(options: WorkerPoolOptions) {
    this.options = options
    this.clock = options.clock ?? Date.now
    this.slots = Array.from({ length: options.size }, (_, index) => ({ index, member: undefined, restarts: 0, quickExits: 0, timer: undefined }))
  }

  /** Forks every worker; resolves with the proxy URL once all listen, rejects if one exits first. */
  start(): Promise<string> {
    cluster.setupPrimary({ exec: this.options.exec, args: [], silent: false })
    const listening = new Promise<string>((resolve, reject) => (this.starting = { resolve, reject }))
    for (const slot of this.slots) this.fork(slot)
    return listening
  }

  /** Workers that have been sent their start message. */
  members(): Member[] {
    return this.slots.flatMap((slot) => (slot.member?.started ? [slot.member] : []))
  }

  restartsOf(slot: number): number {
    return this.slots[slot]?.restarts ?? 0
  }

  /** To every started worker, in the order given (each worker's channel keeps it). */
  broadcast(message: ToWorker): void {
    for (const member of this.members()) this.post(member, message)
  }

  /** The registry revision every worker has applied (0 before they all have a table). */
  appliedRevision(): number {
    const members = this.members()
    if (members.length === 0) return 0
    return Math.min(...members.map((member) => member.appliedRevision))
  }

  /** Every started worker listens with a table in force. */
  ready(): boolean {
    const members = this.members()
    return members.length > 0 && members.every((member) => member.listening && member.ready)
  }

  /** Running totals of the whole router: every worker's, those that exited included. */
  counters(): SignalCounters {
    let sum = this.retiredCounters
    for (const member of this.members()) sum = addSignalCounters(sum, member.counters)
    return sum
  }

  /** Counters and histograms of workers that exited, as last read. */
  retired(): Promise<MetricsJson> {
    return this.retiredMetrics
  }

  /** Asks every listening worker; a worker that does not answer within `timeoutMs` is left out. */
  async ask(question: Question, timeoutMs = 2_000): Promise<Map<Member, unknown>> {
    const id = this.nextQuestion++
    const waiting = new Set(this.members().filter((member) => member.listening))
    const answers = new Map<Member, unknown>()
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs)
      const pending: PendingQuestion = {
        waiting,
        answers,
        done: () => {
          clearTimeout(timer)
          resolve()
        }
      }
      this.questions.set(id, pending)
      for (const member of [...waiting]) if (!this.post(member, { kind: 'switchyard:ask', id, question })) waiting.delete(member)
      if (waiting.size === 0) pending.done()
    })
    this.questions.delete(id)
    if (question === 'metrics') for (const [member, body] of answers) if (body) member.metrics = body as MetricsJson
    return answers
  }

  /** Sends a signal to every worker (SIGHUP: read the certificate again). */
  signal(signal: NodeJS.Signals): void {
    for (const slot of this.slots) slot.member?.worker.process.kill(signal)
  }

  /**
   * Every worker stops accepting, finishes what is under way (its drainTimeoutMs bounds
   * it) and exits; resolves once all have. Past `timeoutMs` the rest are killed.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.closing = true
    for (const slot of this.slots) {
      clearTimeout(slot.timer)
      slot.timer = undefined
    }
    if (this.slots.every((slot) => slot.member === undefined)) return
    const all = new Promise<void>((resolve) => (this.drained = resolve))
    for (const slot of this.slots) if (slot.member) this.post(slot.member, { kind: 'switchyard:drain' })
    const late = setTimeout(() => {
      this.options.log.error({ timeoutMs }, 'router workers still running after the drain; killing them')
      for (const slot of this.slots) slot.member?.worker.process.kill('SIGKILL')
    }, timeoutMs)
    await all
    clearTimeout(late)
    await this.retiredMetrics
  }

  private fork(slot: Slot): void {
    slot.timer = undefined
    const worker = cluster.fork()
    const member: Member = {
      slot: slot.index,
      worker,
      pid: worker.process.pid ?? 0,
      startedAt: this.clock(),
      started: false,
      listening: false,
      url: undefined,
      appliedRevision: 0,
      ready: false,
      counters: {},
      metrics: undefined
    }
    slot.member = member
    worker.on('message', (message: unknown) => {
      if (isToPrimary(message)) this.onMessage(slot, member, message)
    })
    // A send to a worker that just died fails here; its exit is what counts.
    worker.on('error', () => {})
    worker.on('exit', (code, signal) => this.onExit(slot, member, code, signal))
  }

  private onMessage(slot: Slot, member: Member, message: ToPrimary): void {
    switch (message.kind) {
      case 'switchyard:hello':
        if (this.closing) {
          this.post(member, { kind: 'switchyard:drain' })
          return
        }
        // Its snapshot and every later broadcast go out in this order on its channel: it misses no change.
        this.post(member, this.options.startMessage())
        member.started = true
        return
      case 'switchyard:listening':
        member.listening = true
        member.url = message.url
        if (slot.restarts > 0) this.options.log.info({ worker: slot.index, pid: member.pid, restarts: slot.restarts }, 'router worker started in place of the one that exited')
        if (this.starting && this.slots.every((each) => each.member?.listening)) {
          this.starting.resolve(message.url)
          this.starting = undefined
        }
        return
      case 'switchyard:report':
        member.appliedRevision = message.appliedRevision
        member.ready = message.ready
        member.counters = message.counters
        this.appliedMayHaveMoved()
        return
      case 'switchyard:ejected':
        // One router, one verdict: the others keep the instance out as long (a replacement
        // worker starts without it and judges for itself, as after a restart).
        for (const other of this.members()) if (other !== member) this.post(other, { kind: 'switchyard:ejected', ejection: message.ejection })
        return
      case 'switchyard:answer': {
        const pending = this.questions.get(message.id)
        if (!pending || !pending.waiting.delete(member)) return
        pending.answers.set(member, message.body)
        if (pending.waiting.size === 0) pending.done()
        return
      }
    }
  }

  private onExit(slot: Slot, member: Member, code: number | null, signal: string | null): void {
    if (slot.member === member) slot.member = undefined
    // What it counted stays in the totals (up to its last report or scrape).
    this.retiredCounters = addSignalCounters(this.retiredCounters, member.counters)
    const metrics = member.metrics
    // (A merge that fails keeps what was retired before: /metrics must not fail for good.)
    if (metrics) this.retiredMetrics = this.retiredMetrics.then((earlier) => retained(earlier, metrics).catch(() => earlier))
    for (const pending of this.questions.values()) if (pending.waiting.delete(member) && pending.waiting.size === 0) pending.done()
    this.appliedMayHaveMoved()
    if (this.closing) {
      if (this.slots.every((each) => each.member === undefined)) this.drained?.()
      return
    }
    if (this.starting) {
      this.starting.reject(new Error(`router worker ${member.pid} exited (${signal ?? `code ${code}`}) before it listened`))
      this.starting = undefined
      return
    }
    const lived = this.clock() - member.startedAt
    slot.quickExits = lived < QUICK_EXIT_MS ? slot.quickExits + 1 : 0
    const delay = restartDelayMs(slot.quickExits)
    slot.restarts++
    this.restarts++
    this.options.log.warn({ worker: slot.index, pid: member.pid, code, signal, livedMs: lived, restartInMs: delay }, 'router worker exited; starting another in its place')
    slot.timer = setTimeout(() => this.fork(slot), delay)
  }

  /** Reports at once when the revision every worker has reached goes up (weights set --wait, rollouts). */
  private appliedMayHaveMoved(): void {
    const now = this.appliedRevision()
    const up = now > this.applied
    this.applied = now
    if (up) this.options.onApplied()
  }

  private post(member: Member, message: ToWorker): boolean {
    if (!member.worker.isConnected()) return false
    try {
      member.worker.send(message, undefined, {}, () => {})
      return true
    } catch {
      return false
    }
  }
}
