import { Counter, Gauge, Histogram, Registry as MetricsRegistry, collectDefaultMetrics } from 'prom-client'
import type { Registry } from './registry.js'

/**
 * The registry's Prometheus metrics. Label values come from registry state or route
 * patterns, never from raw request input, so their cardinality stays bounded.
 */
export class RegistryMetrics {
  readonly registry = new MetricsRegistry()
  readonly evictions: Counter<'service'>
  readonly weightChanges: Counter<'service'>
  readonly requestDuration: Histogram<'method' | 'route' | 'code'>

  constructor(source: Registry, watchers: () => number) {
    collectDefaultMetrics({ register: this.registry })
    new Gauge({
      name: 'switchyard_registry_instances',
      help: 'Registered instances by service, version and status',
      labelNames: ['service', 'version', 'status'],
      registers: [this.registry],
      async collect() {
        this.reset()
        const snapshot = await source.snapshot()
        for (const service of snapshot.services) {
          for (const instance of service.instances) this.inc({ service: service.name, version: instance.version, status: instance.status })
        }
      }
    })
    new Gauge({
      name: 'switchyard_registry_revision',
      help: 'Current registry revision',
      registers: [this.registry],
      collect() {
        this.set(source.revision)
      }
    })
    new Gauge({
      name: 'switchyard_registry_watchers',
      help: 'Connected watch streams',
      registers: [this.registry],
      collect() {
        this.set(watchers())
      }
    })
    new Gauge({
      name: 'switchyard_registry_self_preservation',
      help: '1 while eviction is suspended because too many leases expired at once',
      registers: [this.registry],
      collect() {
        this.set(source.selfPreservationActive ? 1 : 0)
      }
    })
    this.evictions = new Counter({
      name: 'switchyard_registry_evictions_total',
      help: 'Instances evicted after their lease expired',
      labelNames: ['service'],
      registers: [this.registry]
    })
    this.weightChanges = new Counter({ name: 'switchyard_registry_weight_changes_total', help: 'Weight changes applied', labelNames: ['service'], registers: [this.registry] })
    this.requestDuration = new Histogram({
      name: 'switchyard_registry_http_request_duration_seconds',
      help: 'Registry API request latency',
      labelNames: ['method', 'route', 'code'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [this.registry]
    })
    source.hub.subscribe({
      onChange: (change) => {
        if (change.type === 'weights-changed') this.weightChanges.inc({ service: change.service })
        else if (change.type === 'instance-removed' && change.reason === 'evicted') this.evictions.inc({ service: change.service })
      }
    })
  }
}
