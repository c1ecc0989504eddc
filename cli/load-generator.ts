import { Agent, request } from 'undici'

export interface LoadOptions {
  url: string
  rps: number
  method: 'GET' | 'POST' | 'PUT'
  headers: Record<string, string>
  body?: string | undefined
  /** stop after this long; undefined: until stop() */
  durationMs?: number | undefined
  /** requests allowed in flight at once; beyond it a tick is skipped and counted */
  maxInFlight: number
  onSecond?: (stats: LoadStats) => void
}

export interface LoadStats {
  sent: number
  /** answers by status class ("2xx", "5xx") */
  classes: Record<string, number>
  /** connection failures and timeouts */
  failed: number
  /** ticks skipped because maxInFlight requests were still open */
  skipped: number
}

/**
 * A paced traffic source for demos and walkthroughs (`switchyard load`, `npm start --load`):
 * a steady rate of requests, not a benchmark. Requests start on a fixed schedule whatever
 * the answers take, so a slow version gets the same rate as a fast one.
 */
export class LoadGenerator {
  readonly stats: LoadStats = { sent: 0, classes: {}, failed: 0, skipped: 0 }
  private readonly agent: Agent
  private inFlight = 0
  private ticker: NodeJS.Timeout | undefined
  private reporter: NodeJS.Timeout | undefined
  private finished: Promise<void> | undefined
  private finish: (() => void) | undefined

  constructor(private readonly options: LoadOptions) {
    this.agent = new Agent({ connections: Math.min(options.maxInFlight, 64), keepAliveTimeout: 10_000 })
  }

  /** Starts sending; resolves when the duration is over or stop() is called. */
  run(): Promise<void> {
    this.finished ??= new Promise<void>((resolve) => {
      this.finish = resolve
      const start = Date.now()
      let due = 0
      // A 10 ms tick sends however many requests the schedule owes by now: the rate holds
      // without one timer per request, up to a few thousand per second.
      this.ticker = setInterval(() => {
        const elapsed = Date.now() - start
        if (this.options.durationMs !== undefined && elapsed >= this.options.durationMs) return void this.stop()
        const owed = Math.floor((elapsed / 1000) * this.options.rps) - due
        for (let i = 0; i < owed; i++) this.send()
        due += Math.max(0, owed)
      }, 10)
      this.reporter = setInterval(() => this.options.onSecond?.(this.stats), 1000)
    })
    return this.finished
  }

  async stop(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker)
    if (this.reporter) clearInterval(this.reporter)
    this.ticker = undefined
    this.reporter = undefined
    this.finish?.()
    await this.agent.close()
  }

  private send(): void {
    if (this.inFlight >= this.options.maxInFlight) {
      this.stats.skipped++
      return
    }
    this.inFlight++
    this.stats.sent++
    const { stats } = this
    request(this.options.url, {
      method: this.options.method,
      headers: this.options.headers,
      body: this.options.body ?? null,
      dispatcher: this.agent,
      headersTimeout: 10_000,
      bodyTimeout: 10_000
    }).then(
      async (response) => {
        await response.body.dump()
        const statusClass = `${Math.floor(response.statusCode / 100)}xx`
        stats.classes[statusClass] = (stats.classes[statusClass] ?? 0) + 1
        this.inFlight--
      },
      () => {
        stats.failed++
        this.inFlight--
      }
    )
  }
}

export function describeLoad(stats: LoadStats): string {
  const classes = Object.entries(stats.classes)
    .sort()
    .map(([statusClass, count]) => `${statusClass} ${count}`)
    .join(', ')
  return `sent ${stats.sent}${classes ? `: ${classes}` : ''}${stats.failed ? `, ${stats.failed} failed` : ''}${stats.skipped ? `, ${stats.skipped} skipped (too many in flight)` : ''}`
}
