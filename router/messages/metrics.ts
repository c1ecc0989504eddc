import { Counter, Gauge, Histogram, Registry as MetricsRegistry, collectDefaultMetrics } from 'prom-client'
import { emptyCounters, type VersionCounters } from '../../core/signals/counters.js'

/** The message router's metrics; labels come from config and the routing table only. */
export class MessageMetrics {
  readonly registry = new MetricsRegistry()
  readonly messages: Counter<'topic' | 'version' | 'outcome'>
  readonly routingLatency: Histogram<'topic'>
  readonly inflight: Gauge<'topic'>
  readonly redeliveries: Counter<'topic'>
  readonly deadLettered: Counter<'topic' | 'reason'>
  readonly brokerConnected: Gauge
  readonly revision: Gauge
  readonly rejected: Counter<'topic' | 'version'>
  /** service -> version -> running totals for the registry's signals */
  private readonly signals = new Map<string, Map<string, VersionCounters>>()

  constructor() {
    collectDefaultMetrics({ register: this.registry })
    const registers = [this.registry]
    this.messages = new Counter({
      name: 'switchyard_messages_total',
      help: 'Messages handled, by topic, version and outcome (routed, delayed, dead-lettered)',
      labelNames: ['topic', 'version', 'outcome'],
      registers
    })
    this.routingLatency = new Histogram({
      name: 'switchyard_message_routing_seconds',
      help: 'From delivery to the confirmed publish on the version queue',
      labelNames: ['topic'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers
    })
    this.inflight = new Gauge({ name: 'switchyard_messages_in_flight', help: 'Messages taken from a topic queue and not yet acknowledged', labelNames: ['topic'], registers })
    this.redeliveries = new Counter({
      name: 'switchyard_message_redeliveries_total',
      help: 'Messages the broker delivered again (possible duplicates downstream)',
      labelNames: ['topic'],
      registers
    })
    this.deadLettered = new Counter({
      name: 'switchyard_messages_dead_lettered_total',
      help: 'Messages sent to the dead-letter queue, by reason',
      labelNames: ['topic', 'reason'],
      registers
    })
    this.brokerConnected = new Gauge({ name: 'switchyard_broker_connected', help: '1 while the broker connection is up', registers })
    this.revision = new Gauge({ name: 'switchyard_route_table_revision', help: 'Registry revision of the routing table in force', registers })
    this.rejected = new Counter({
      name: 'switchyard_messages_rejected_total',
      help: "Messages a version's workers rejected (dead-lettered from the version queue), by topic and version",
      labelNames: ['topic', 'version'],
      registers
    })
  }

  /** one message published to the version's queue (counted for the registry's signals) */
  countRouted(service: string, version: string): void {
    this.signalsOf(service, version).messagesRouted++
  }

  countRejected(topic: string, service: string, version: string): void {
    this.signalsOf(service, version).messagesRejected++
    this.rejected.inc({ topic, version })
  }

  /** Running totals per service and version since start (read, not copied). */
  signalCounters(): Record<string, Record<string, VersionCounters>> {
    const out: Record<string, Record<string, VersionCounters>> = {}
    for (const [service, versions] of this.signals) out[service] = Object.fromEntries(versions)
    return out
  }

  private signalsOf(service: string, version: string): VersionCounters {
    let versions = this.signals.get(service)
    if (!versions) this.signals.set(service, (versions = new Map()))
    let counters = versions.get(version)
    if (!counters) versions.set(version, (counters = emptyCounters()))
    return counters
  }
}
