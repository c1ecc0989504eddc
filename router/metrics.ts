import { Counter, Gauge, Histogram, Registry as MetricsRegistry, collectDefaultMetrics } from 'prom-client'
import { grpcStatusName, httpEquivalentOfGrpc } from '../core/grpc.js'
import { emptyCounters, latencyBucket, statusClassIndex, type VersionCounters } from '../core/signals/counters.js'

/** Answers of one status: counted here per request, handed to prom-client at scrape time. */
interface StatusCount {
  total: number
  pushed: number
}

/** One service version's figures on the hot path: plain numbers, no label hashing per request. */
interface VersionSeries {
  service: string
  version: string
  duration: ReturnType<Histogram<'service' | 'version'>['labels']>
  statuses: Map<number, StatusCount>
  /** calls of gRPC routes, by gRPC status (created with the first one) */
  grpcStatuses: Map<number, StatusCount> | undefined
  /** the same answers as the registry's signals want them (status class, latency bucket) */
  signals: VersionCounters
}

/** Requests in flight for one service; read by the gauge at scrape time. */
export class InflightCount {
  value = 0
  inc(): void {
    this.value++
  }
  dec(): void {
    this.value--
  }
}

/**
 * The router's Prometheus metrics. Service and version labels come from the routing
 * table and codes from upstream status numbers, never from raw client input, so label
 * cardinality stays bounded by what the registry knows.
 */
export class RouterMetrics {
  readonly registry = new MetricsRegistry()
  readonly requests: Counter<'service' | 'version' | 'code' | 'grpc_status'>
  readonly duration: Histogram<'service' | 'version'>
  readonly connectErrors: Counter<'service' | 'version'>
  readonly retries: Counter<'service' | 'version'>
  readonly retryBudgetExhausted: Counter<'service'>
  readonly ejections: Counter<'service' | 'version'>
  readonly fallbacks: Counter<'service' | 'version'>
  readonly truncated: Counter<'service' | 'version'>
  readonly inflight: Gauge<'service'>
  readonly upgraded: Gauge<'service' | 'version'>
  readonly upgrades: Counter<'service' | 'version' | 'result'>
  readonly revision: Gauge
  readonly lastUpdate: Gauge
  readonly unrouted: Counter<'reason'>
  /** service -> version -> series (two lookups with the table's own strings, no key built per request) */
  private readonly versionSeries = new Map<string, Map<string, VersionSeries>>()
  private readonly inflightCounts = new Map<string, InflightCount>()

  constructor() {
    collectDefaultMetrics({ register: this.registry })
    const registers = [this.registry]
    const series = this.versionSeries
    const inflightCounts = this.inflightCounts
    this.requests = new Counter({
      name: 'switchyard_requests_total',
      // Counted per request in plain numbers (see recordRequest), handed over on each scrape.
      collect() {
        for (const versions of series.values()) {
          for (const entry of versions.values()) {
            for (const [status, count] of entry.statuses) {
              if (count.total === count.pushed) continue
              this.inc({ service: entry.service, version: entry.version, code: String(status) }, count.total - count.pushed)
              count.pushed = count.total
            }
            if (!entry.grpcStatuses) continue
            for (const [status, count] of entry.grpcStatuses) {
              if (count.total === count.pushed) continue
              const labels = { service: entry.service, version: entry.version, code: String(httpEquivalentOfGrpc(status)), grpc_status: grpcStatusName(status) }
              this.inc(labels, count.total - count.pushed)
              count.pushed = count.total
            }
          }
        }
      },
      // HTTP answers have no grpc_status label, so their series are the same as before gRPC routes existed.
      help: 'Requests answered, by service, version and status code; calls of gRPC routes also by grpc_status (OK, UNAVAILABLE...), with code the HTTP status it stands for (UNAVAILABLE: 503)',
      labelNames: ['service', 'version', 'code', 'grpc_status'],
      registers
    })
    this.duration = new Histogram({
      name: 'switchyard_request_duration_seconds',
      help: 'Time from request to response end, by service and version',
      labelNames: ['service', 'version'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers
    })
    this.connectErrors = new Counter({
      name: 'switchyard_upstream_connect_errors_total',
      help: 'Failed connection attempts to instances',
      labelNames: ['service', 'version'],
      registers
    })
    this.retries = new Counter({ name: 'switchyard_retries_total', help: 'Retried upstream attempts', labelNames: ['service', 'version'], registers })
    this.retryBudgetExhausted = new Counter({
      name: 'switchyard_retry_budget_exhausted_total',
      help: 'Retries refused because the retry budget was spent',
      labelNames: ['service'],
      registers
    })
    this.ejections = new Counter({ name: 'switchyard_ejections_total', help: 'Instances ejected by outlier detection', labelNames: ['service', 'version'], registers })
    this.fallbacks = new Counter({
      name: 'switchyard_version_fallback_total',
      help: 'Requests whose weighted version had no healthy instance and went to another version',
      labelNames: ['service', 'version'],
      registers
    })
    this.truncated = new Counter({
      name: 'switchyard_responses_truncated_total',
      help: 'Answers cut off after their first bytes reached the client (upstream reset or stall, route timeout): counted as their status in switchyard_requests_total, but failed',
      labelNames: ['service', 'version'],
      registers
    })
    this.inflight = new Gauge({
      name: 'switchyard_requests_in_flight',
      help: 'Requests being proxied now',
      labelNames: ['service'],
      registers,
      collect() {
        for (const [service, count] of inflightCounts) this.set({ service }, count.value)
      }
    })
    this.upgraded = new Gauge({
      name: 'switchyard_upgraded_connections',
      help: 'Upgraded connections (WebSocket and other HTTP/1.1 Upgrades) open now, by service and version',
      labelNames: ['service', 'version'],
      registers
    })
    this.upgrades = new Counter({
      name: 'switchyard_upgrades_total',
      help: 'Upgrade requests by result: upgraded, refused (the upstream did not switch), failed (upstream unreachable or silent), rejected (the router refused), abandoned (the client left during the handshake)',
      labelNames: ['service', 'version', 'result'],
      registers
    })
    this.revision = new Gauge({ name: 'switchyard_route_table_revision', help: 'Registry revision of the routing table in force', registers })
    this.lastUpdate = new Gauge({ name: 'switchyard_route_table_last_update_seconds', help: 'Unix time the routing table was last replaced', registers })
    this.unrouted = new Counter({
      name: 'switchyard_unrouted_requests_total',
      help: 'Requests answered by the router itself (no route, no instance, bad request)',
      labelNames: ['reason'],
      registers
    })
  }

  /** Counts one answered request (label values come from the routing table). */
  recordRequest(service: string, version: string, status: number, seconds: number): void {
    const series = this.seriesOf(service, version)
    let count = series.statuses.get(status)
    if (!count) series.statuses.set(status, (count = { total: 0, pushed: 0 }))
    count.total++
    this.observe(series, status, seconds)
  }

  /**
   * Counts one call of a gRPC route by its gRPC status; the signals (error rate for
   * rollouts) count it as the HTTP status it stands for, so UNAVAILABLE is a 5xx there.
   */
  recordGrpcCall(service: string, version: string, grpcStatus: number, seconds: number): void {
    const series = this.seriesOf(service, version)
    series.grpcStatuses ??= new Map()
    let count = series.grpcStatuses.get(grpcStatus)
    if (!count) series.grpcStatuses.set(grpcStatus, (count = { total: 0, pushed: 0 }))
    count.total++
    this.observe(series, httpEquivalentOfGrpc(grpcStatus), seconds)
  }

  private seriesOf(service: string, version: string): VersionSeries {
    let versions = this.versionSeries.get(service)
    if (!versions) this.versionSeries.set(service, (versions = new Map()))
    let series = versions.get(version)
    if (!series) {
      series = { service, version, duration: this.duration.labels(service, version), statuses: new Map(), grpcStatuses: undefined, signals: emptyCounters() }
      versions.set(version, series)
    }
    return series
  }

  private observe(series: VersionSeries, status: number, seconds: number): void {
    series.duration.observe(seconds)
    // Two array increments and a 5-step binary search: the signals cost no allocation per request.
    const statusClass = statusClassIndex(status)
    if (statusClass >= 0) (series.signals.statusClasses[statusClass] as number)++
    ;(series.signals.latency[latencyBucket(seconds * 1000)] as number)++
  }

  /** Running totals per service and version since start, for the registry's signals (read, not copied). */
  signalCounters(): Record<string, Record<string, VersionCounters>> {
    const out: Record<string, Record<string, VersionCounters>> = {}
    for (const [service, versions] of this.versionSeries) {
      const entry: Record<string, VersionCounters> = (out[service] = {})
      for (const [version, series] of versions) entry[version] = series.signals
    }
    return out
  }

  inflightOf(service: string): InflightCount {
    let count = this.inflightCounts.get(service)
    if (!count) this.inflightCounts.set(service, (count = new InflightCount()))
    return count
  }
}
