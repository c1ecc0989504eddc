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
  readonly rolloutSteps: Counter<'service' | 'verdict'>

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
    new Gauge({
      name: 'switchyard_registry_self_preservation_expired_instances',
      help: 'Instances whose lease ran out but that self-preservation keeps (evicted when it ends)',
      registers: [this.registry],
      collect() {
        this.set(source.selfPreservation().expiredInstances)
      }
    })
    new Gauge({
      name: 'switchyard_registry_self_preservation_ends_seconds',
      help: 'When self-preservation ends at the latest (seconds since the epoch; 0 when it is off)',
      registers: [this.registry],
      collect() {
        this.set((source.selfPreservation().endsAt ?? 0) / 1000)
      }
    })
    new Gauge({
      name: 'switchyard_registry_leader',
      help: '1 on the replica that decides lease expiries and rollout steps (always 1 with the file store)',
      registers: [this.registry],
      collect() {
        this.set(source.isLeader ? 1 : 0)
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
    const phaseCode: Record<string, number> = { progressing: 1, paused: 2, promoted: 3, 'rolled-back': 4, aborted: 5 }
    new Gauge({
      name: 'switchyard_rollout_state',
      help: 'Latest rollout of each service: 1 progressing, 2 paused, 3 promoted, 4 rolled back, 5 aborted',
      labelNames: ['service'],
      registers: [this.registry],
      collect() {
        this.reset()
        for (const rollout of source.rolloutList()) this.set({ service: rollout.service }, phaseCode[rollout.phase] ?? 0)
      }
    })
    new Gauge({
      name: 'switchyard_rollout_canary_weight',
      help: 'Weight in percent the latest rollout of each service gives its canary',
      labelNames: ['service'],
      registers: [this.registry],
      collect() {
        this.reset()
        for (const rollout of source.rolloutList()) this.set({ service: rollout.service }, rollout.canaryWeight)
      }
    })
    this.rolloutSteps = new Counter({
      name: 'switchyard_rollout_steps_judged_total',
      help: 'Rollout steps judged, by verdict (passed, failed, inconclusive)',
      labelNames: ['service', 'verdict'],
      registers: [this.registry]
    })
    const judged = new Map<string, number>()
    source.hub.subscribe({
      onChange: (change) => {
        if (change.type === 'rollout-changed') {
          // A verdict is a new entry in the rollout's history; a new rollout starts at none.
          const before = change.event === 'started' ? 0 : (judged.get(change.service) ?? 0)
          for (const record of change.rollout.history.slice(before)) this.rolloutSteps.inc({ service: change.service, verdict: record.verdict })
          judged.set(change.service, change.rollout.history.length)
        } else if (change.type === 'weights-changed') this.weightChanges.inc({ service: change.service })
        else if (change.type === 'instance-removed' && change.reason === 'evicted') this.evictions.inc({ service: change.service })
      }
    })
  }
}
