/**
 * Per-version figures from GET /v1/services/:service/signals, turned into what the console
 * draws: configured vs observed share, and time series for the charts (one point per poll,
 * each the figures of the window since the previous poll).
 */
import type { ServiceSignals, VersionFigures } from '../../core/signals/figures.js'

export type { ServiceSignals, VersionFigures }

export interface ObservedShare {
  /** percent of the service's HTTP answers this version gave; null without any traffic */
  http: number | null
  /** percent of the messages routed to this version's queue; null without messages */
  queue: number | null
}

export function observedShares(signals: ServiceSignals | undefined, versions: readonly string[]): Record<string, ObservedShare> {
  const figures = signals?.versions ?? {}
  let requests = 0
  let messages = 0
  for (const version of Object.values(figures)) {
    requests += version.requests
    messages += version.messagesRouted
  }
  const out: Record<string, ObservedShare> = {}
  for (const version of new Set([...versions, ...Object.keys(figures)])) {
    const mine = figures[version]
    out[version] = {
      http: requests === 0 ? null : ((mine?.requests ?? 0) / requests) * 100,
      queue: messages === 0 ? null : ((mine?.messagesRouted ?? 0) / messages) * 100
    }
  }
  return out
}

/**
 * A version whose observed share is far from its weight: ejected or missing instances, or
 * a router that has not applied the split. Needs enough traffic to mean anything.
 */
export function shareGap(weight: number, observed: number | null, total: number, minTotal = 50, tolerancePp = 10): boolean {
  return observed !== null && total >= minTotal && Math.abs(observed - weight) > tolerancePp
}

export const METRICS = ['rps', 'errorRatePercent', 'p50Ms', 'p99Ms', 'mps', 'messagesRejected'] as const
export type Metric = (typeof METRICS)[number]

export interface SeriesPoint {
  /** seconds since the epoch (uPlot's x unit) */
  t: number
  versions: Record<string, VersionFigures>
}

/** The last `capacity` points, oldest first. */
export class SignalSeries {
  private points: SeriesPoint[] = []

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.points.length
  }

  add(point: SeriesPoint): void {
    this.points.push(point)
    if (this.points.length > this.capacity) this.points.splice(0, this.points.length - this.capacity)
  }

  /**
   * The registry's history (GET .../signals/series) put before the live points: only points
   * older than the first live one, so a poll that answered first is neither repeated nor
   * put out of order. The newest `capacity` points stay.
   */
  prefill(history: readonly SeriesPoint[]): void {
    const first = this.points[0]?.t ?? Infinity
    const older = history.filter((point) => point.t < first)
    this.points = [...older, ...this.points]
    if (this.points.length > this.capacity) this.points.splice(0, this.points.length - this.capacity)
  }

  versions(): string[] {
    const seen = new Set<string>()
    for (const point of this.points) for (const version of Object.keys(point.versions)) seen.add(version)
    return [...seen]
  }

  /** uPlot's data: x values, then one array per version (null where it had no figure). */
  columns(metric: Metric, versions: readonly string[]): [number[], ...(number | null)[][]] {
    const xs = this.points.map((point) => point.t)
    const ys = versions.map((version) =>
      this.points.map((point) => {
        const figures = point.versions[version]
        if (!figures) return null
        const value = figures[metric]
        if (value === undefined) return null
        // a latency with no request behind it is no figure, not 0
        return (metric === 'p50Ms' || metric === 'p99Ms') && figures.requests === 0 ? null : value
      })
    )
    return [xs, ...ys]
  }

  /** Whether any version had this kind of traffic in the kept points. */
  has(kind: 'http' | 'queue'): boolean {
    return this.points.some((point) => Object.values(point.versions).some((figures) => (kind === 'http' ? figures.requests > 0 : figures.messagesRouted > 0)))
  }
}
