import { request } from 'undici'
import type { RegistryChange } from '../../core/registry-events.js'

type RolloutChange = Extract<RegistryChange, { type: 'rollout-changed' }>

export interface NotifierOptions {
  log: { warn(object: object, message: string): void }
  /** tries per notification (first try included) */
  attempts?: number
  initialBackoffMs?: number
  timeoutMs?: number
}

/**
 * POSTs each rollout state change to the rollout's `notify` URL, as a JSON document, with
 * retries and backoff. Fire and forget: a failing hook is logged and never blocks or
 * slows the rollout. Notifications of one rollout go out in order (one chain per service).
 */
export class RolloutNotifier {
  private readonly chains = new Map<string, Promise<void>>()
  private readonly options: Required<NotifierOptions>

  constructor(options: NotifierOptions) {
    this.options = { attempts: 5, initialBackoffMs: 250, timeoutMs: 5_000, ...options }
  }

  onChange(change: RegistryChange): void {
    if (change.type !== 'rollout-changed' || change.rollout.spec.notify === undefined) return
    const url = change.rollout.spec.notify
    const previous = this.chains.get(change.service) ?? Promise.resolve()
    const next = previous.then(() => this.deliver(url, change))
    this.chains.set(change.service, next)
    void next.finally(() => {
      if (this.chains.get(change.service) === next) this.chains.delete(change.service)
    })
  }

  /** resolves when every pending notification is delivered or given up (for tests and shutdown) */
  async settled(): Promise<void> {
    while (this.chains.size > 0) await Promise.all(this.chains.values())
  }

  private async deliver(url: string, change: RolloutChange): Promise<void> {
    const { rollout } = change
    const body = JSON.stringify({
      service: change.service,
      event: change.event,
      actor: change.actor,
      revision: change.revision,
      at: new Date(change.at).toISOString(),
      phase: rollout.phase,
      reason: rollout.reason,
      canary: rollout.spec.canary,
      baseline: rollout.spec.baseline,
      step: rollout.stepIndex + 1,
      steps: rollout.spec.steps.length,
      canaryWeight: rollout.canaryWeight,
      lastVerdict: rollout.history[rollout.history.length - 1] ?? null
    })
    let failure = ''
    for (let attempt = 0; attempt < this.options.attempts; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, this.options.initialBackoffMs * 2 ** (attempt - 1)).unref())
      try {
        const response = await request(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'switchyard-registry' },
          body,
          headersTimeout: this.options.timeoutMs,
          bodyTimeout: this.options.timeoutMs
        })
        await response.body.dump()
        if (response.statusCode < 300) return
        failure = `answered ${response.statusCode}`
        // A 4xx other than 408/429 will not change on retry.
        if (response.statusCode < 500 && response.statusCode !== 408 && response.statusCode !== 429) break
      } catch (error) {
        failure = (error as Error).message
      }
    }
    // The URL may carry a secret in its query: log its origin only.
    this.options.log.warn({ service: change.service, event: change.event, hook: new URL(url).origin, failure }, 'rollout notification not delivered')
  }
}
