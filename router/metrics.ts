import { Counter, Gauge, Histogram, Registry as MetricsRegistry, collectDefaultMetrics } from 'prom-client'

/** The per-version series of the hot path, looked up once instead of hashing labels per request. */
interface VersionSeries {
  duration: ReturnType<Histogram<'service' | 'version'>['labels']>
  requests: Map<number, ReturnType<Counter<'service' | 'version' | 'code'>['labels']>>
}

/**
 * The router's Prometheus metrics. Service and version labels come from the routing
 * table and codes from upstream status numbers, never from raw client input, so label
 * cardinality stays bounded by what the registry knows.
 */
export class RouterMetrics {
  readonly registry = new MetricsRegistry()
  readonly requests: Counter<'service' | 'version' | 'code'>
  readonly duration: Histogram<'service' | 'version'>
  readonly connectErrors: Counter<'service' | 'version'>
  readonly retries: Counter<'service' | 'version'>
  readonly retryBudgetExhausted: Counter<'service'>
  readonly ejections: Counter<'service' | 'version'>
  readonly fallbacks: Counter<'service' | 'version'>
  readonly truncated: Counter<'service' | 'version'>
  readonly inflight: Gauge<'service'>
  readonly revision: Gauge
  readonly lastUpdate: Gauge
  readonly unrouted: Counter<'reason'>
  private readonly versionSeries = new Map<string, VersionSeries>()
  private readonly inflightSeries = new Map<string, ReturnType<Gauge<'service'>['labels']>>()

  constructor() {
    collectDefaultMetrics({ register: this.registry })
    const registers = [this.registry]
    this.requests = new Counter({
      name: 'switchyard_requests_total',
      help: 'Requests answered, by service, version and status code',
      labelNames: ['service', 'version', 'code'],
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
    this.inflight = new Gauge({ name: 'switchyard_requests_in_flight', help: 'Requests being proxied now', labelNames: ['service'], registers })
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
    const key = `${service}\u0000${version}`
    let series = this.versionSeries.get(key)
    if (!series) {
      series = { duration: this.duration.labels(service, version), requests: new Map() }
      this.versionSeries.set(key, series)
    }
    let counter = series.requests.get(status)
    if (!counter) {
      counter = this.requests.labels(service, version, String(status))
      series.requests.set(status, counter)
    }
    counter.inc()
    series.duration.observe(seconds)
  }

  inflightOf(service: string): ReturnType<Gauge<'service'>['labels']> {
    let gauge = this.inflightSeries.get(service)
    if (!gauge) {
      gauge = this.inflight.labels(service)
      this.inflightSeries.set(service, gauge)
    }
    return gauge
  }
}
