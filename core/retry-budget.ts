export interface RetryBudgetSettings {
  /** retries allowed as a share of requests in the window (0.2: at most 20% extra load) */
  ratio: number
  /** retries always allowed per second, so a quiet service can still retry */
  minPerSecond: number
  windowSeconds: number
}

export const defaultRetryBudget: RetryBudgetSettings = { ratio: 0.2, minPerSecond: 5, windowSeconds: 10 }

/**
 * Linkerd-style retry budget over a sliding window of one-second slots: a retry is
 * allowed while retries stay under `ratio` of requests plus a small floor. Under an
 * outage this caps extra load instead of multiplying it by the retry count.
 */
export class RetryBudget {
  private readonly requests: Uint32Array
  private readonly retries: Uint32Array
  private readonly slotSecond: Float64Array
  private readonly settings: RetryBudgetSettings

  constructor(settings: RetryBudgetSettings = defaultRetryBudget) {
    this.settings = settings
    this.requests = new Uint32Array(settings.windowSeconds)
    this.retries = new Uint32Array(settings.windowSeconds)
    this.slotSecond = new Float64Array(settings.windowSeconds).fill(-1)
  }

  recordRequest(now: number): void {
    const slot = this.slot(now)
    this.requests[slot] = (this.requests[slot] as number) + 1
  }

  /** Takes one retry from the budget if there is one. */
  tryRetry(now: number): boolean {
    this.slot(now)
    const oldest = Math.floor(now / 1000) - this.settings.windowSeconds
    let requests = 0
    let retries = 0
    for (let i = 0; i < this.settings.windowSeconds; i++) {
      if ((this.slotSecond[i] as number) <= oldest) continue
      requests += this.requests[i] as number
      retries += this.retries[i] as number
    }
    if (retries >= this.settings.minPerSecond * this.settings.windowSeconds + this.settings.ratio * requests) return false
    const slot = this.slot(now)
    this.retries[slot] = (this.retries[slot] as number) + 1
    return true
  }

  private slot(now: number): number {
    const second = Math.floor(now / 1000)
    const slot = second % this.settings.windowSeconds
    if (this.slotSecond[slot] !== second) {
      this.slotSecond[slot] = second
      this.requests[slot] = 0
      this.retries[slot] = 0
    }
    return slot
  }
}
