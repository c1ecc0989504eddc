import { callJson } from './http.js'
import { setWeights, type RegistryProcess } from './switchyard-processes.js'

/** What the keeper reads of GET /v1/services/:service/rollout. */
interface RolloutView {
  phase: string
  startedAt: number
  canaryWeight: number
  history: { verdict: string; at: number }[]
}

export interface KeeperOptions {
  registry: RegistryProcess
  service: string
  /** the rollout started again and again in the running state (canary, baseline, steps, analysis ...) */
  rollout: { canary: string; baseline: string } & Record<string, unknown>
  /** the split held in the idle state */
  idleWeights: Record<string, number>
  /** how often the rollout is looked at, in both states alike */
  pollMs: number
}

/** A judged step, as the keeper saw it: when (registry clock, ms since the epoch) and how. */
export interface SeenStep {
  rollout: number
  index: number
  at: number
  verdict: string
}

/**
 * Holds a service in one of two states for the rollout benchmark: "idle" (no rollout, the
 * split fixed) or "running" (a rollout progressing; started again, through the API, as soon
 * as it ends, so that every measured round has one). It looks at the rollout every `pollMs`
 * in both states, so the benchmark's own control traffic is the same in both. It records
 * every step it sees judged and every start, for the rounds to count.
 */
export class RolloutKeeper {
  private mode: 'idle' | 'running' = 'idle'
  private chain: Promise<unknown> = Promise.resolve()
  private timer: NodeJS.Timeout | undefined
  private busy = false
  private failure: Error | undefined
  private readonly steps = new Map<string, SeenStep>()
  /** ms since the epoch of every rollout start */
  readonly starts: number[] = []

  constructor(private readonly options: KeeperOptions) {}

  get url(): string {
    return `${this.options.registry.url}/v1/services/${this.options.service}/rollout`
  }

  /** Starts looking; the service is left as it is until idle() or running(). */
  begin(): void {
    this.timer ??= setInterval(() => {
      if (this.busy) return
      this.busy = true
      void this.serial(() => this.look()).finally(() => (this.busy = false))
    }, this.options.pollMs)
  }

  async end(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    await this.chain.catch(() => {})
  }

  /** No rollout, the idle split: resolves with the revision of that split. */
  idle(): Promise<number> {
    return this.serial(async () => {
      this.mode = 'idle'
      const current = await this.read()
      if (current && (current.phase === 'progressing' || current.phase === 'paused')) this.see(await this.command('abort'))
      return setWeights(this.options.registry, this.options.service, this.options.idleWeights)
    })
  }

  /** A rollout progressing (started now unless one already is). */
  running(): Promise<void> {
    return this.serial(async () => {
      this.mode = 'running'
      await this.look()
    })
  }

  /** Every step judged between `from` and `to` (registry clock), each once. */
  stepsBetween(from: number, to: number): SeenStep[] {
    return [...this.steps.values()].filter((step) => step.at >= from && step.at < to)
  }

  startsBetween(from: number, to: number): number {
    return this.starts.filter((at) => at >= from && at < to).length
  }

  /** Throws what went wrong in the background, if anything did. */
  check(): void {
    if (this.failure) throw this.failure
  }

  /** A catch-up look now (after a round, so that the last steps of it are seen). */
  refresh(): Promise<void> {
    return this.serial(() => this.look())
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.chain.then(work)
    this.chain = next.catch((error: unknown) => {
      this.failure ??= error as Error
    })
    return next
  }

  private async look(): Promise<void> {
    const current = await this.read()
    if (current) this.see(current)
    if (this.mode !== 'running' || current?.phase === 'progressing') return
    // Paused (it should not be, with the loose analysis) counts as ended: abort, start anew.
    if (current?.phase === 'paused') this.see(await this.command('abort'))
    const answer = await callJson('POST', this.url, { token: this.options.registry.adminToken, body: this.options.rollout })
    if (answer.status !== 201) throw new Error(`starting the rollout failed: ${answer.status} ${answer.text}`)
    const started = answer.json as RolloutView
    this.starts.push(started.startedAt)
    this.see(started)
  }

  private async read(): Promise<RolloutView | undefined> {
    const answer = await callJson('GET', this.url, { token: this.options.registry.adminToken })
    if (answer.status === 404) return undefined
    if (answer.status !== 200) throw new Error(`reading the rollout failed: ${answer.status} ${answer.text}`)
    return answer.json as RolloutView
  }

  private async command(command: 'abort'): Promise<RolloutView> {
    const answer = await callJson('POST', `${this.url}/${command}`, { token: this.options.registry.adminToken })
    if (answer.status !== 200) throw new Error(`rollout ${command} failed: ${answer.status} ${answer.text}`)
    return answer.json as RolloutView
  }

  private see(view: RolloutView): void {
    view.history.forEach((step, index) => {
      const key = `${view.startedAt}:${index}`
      if (!this.steps.has(key)) this.steps.set(key, { rollout: view.startedAt, index, at: step.at, verdict: step.verdict })
    })
  }
}
