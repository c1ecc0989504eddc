import type { VersionCounters } from '../../core/signals/counters.js'
import type { RouterKind } from '../../core/signals/router-report.js'
import { RegistryEndpoints } from '../../registry/client/registry-endpoints.js'

export interface SignalReporterOptions {
  /** one URL, several replicas' comma-separated, or endpoints shared with the router's watch */
  registryUrl: string | RegistryEndpoints
  token?: string | undefined
  /** stable across restarts of the same router (host and admin port by default) */
  id: string
  kind: RouterKind
  adminUrl: string
  intervalMs: number
  /** running totals per service and version since this process started */
  counters: () => Record<string, Record<string, VersionCounters>>
  /** the registry revision of the table in force */
  appliedRevision: () => number
  log: { info(object: object, message: string): void; warn(object: object, message: string): void }
  clock?: () => number
}

/**
 * Tells the registry, every interval and at once after a new table, what this router has
 * applied and what it has seen per version (running totals: a lost report loses nothing).
 * Off the hot path: it reads counters the proxy keeps anyway; one small PUT per second.
 * Nothing waits for it: with the registry away the router routes on and reports later.
 */
export class SignalReporter {
  private readonly startedAt: number
  private timer: NodeJS.Timeout | undefined
  private inFlight: Promise<void> | undefined
  private again = false
  private healthy: boolean | undefined
  private stopped = false
  private readonly endpoints: RegistryEndpoints

  constructor(private readonly options: SignalReporterOptions) {
    this.startedAt = (options.clock ?? Date.now)()
    this.endpoints = RegistryEndpoints.from(options.registryUrl)
  }

  start(): void {
    if (this.timer) return
    this.timer = setInterval(() => this.report(), this.options.intervalMs)
    this.timer.unref()
    this.report()
  }

  /** A new table is in force: say so now, so that rollouts and `--wait` see it within ms. */
  applied(): void {
    this.report()
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    await this.inFlight
  }

  /** Sends a report now, or right after the one in flight (never two at once, never queued twice). */
  report(): void {
    if (this.stopped) return
    if (this.inFlight) {
      this.again = true
      return
    }
    this.inFlight = this.send().finally(() => {
      this.inFlight = undefined
      if (this.again && !this.stopped) {
        this.again = false
        this.report()
      }
    })
  }

  private async send(): Promise<void> {
    const { options } = this
    const body = JSON.stringify({
      kind: options.kind,
      adminUrl: options.adminUrl,
      appliedRevision: options.appliedRevision(),
      startedAt: this.startedAt,
      services: options.counters()
    })
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (options.token) headers.authorization = `Bearer ${options.token}`
    try {
      // A report replaces the last one (running totals), so it may go to another replica
      // whatever happened to it; one round, since the next report is due in an interval.
      const answer = await this.endpoints.send({
        method: 'PUT',
        path: `/v1/routers/${encodeURIComponent(options.id)}`,
        headers,
        body,
        idempotent: true,
        timeoutMs: 5_000,
        rounds: 1
      })
      if (answer.status !== 200) throw new Error(`the registry at ${answer.url} answered ${answer.status}: ${answer.text.slice(0, 200)}`)
      if (this.healthy !== true) options.log.info({ router: options.id }, 'reporting signals to the registry')
      this.healthy = true
    } catch (error) {
      // Once per transition: a registry outage is one line, not one per second.
      if (this.healthy !== false) options.log.warn({ router: options.id, reason: (error as Error).message }, 'could not report signals to the registry; will keep trying')
      this.healthy = false
    }
  }
}
