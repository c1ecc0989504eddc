import { Pool } from 'undici'
import type { BalancedEndpoint } from '../../core/instance-picker.js'
import type { OutlierState } from '../../core/outlier-detection.js'
import type { InstanceRecord } from '../../core/registry-events.js'

export interface PoolSettings {
  connectTimeoutMs: number
  keepAliveMs: number
  connections: number
}

/**
 * One instance as the proxy sees it: its keep-alive connection pool plus the counters
 * that instance choice and outlier detection read. Endpoints outlive routing tables, so
 * a weight change never drops connections or resets ejections.
 */
export class Endpoint implements BalancedEndpoint, OutlierState {
  inflight = 0
  ejectedUntil = 0
  consecutiveFailures = 0
  ejections = 0
  lastEjectionEnd = 0
  readonly pool: Pool
  readonly address: string
  readonly origin: string

  constructor(
    readonly instance: InstanceRecord,
    settings: PoolSettings
  ) {
    const host = instance.host.includes(':') && !instance.host.startsWith('[') ? `[${instance.host}]` : instance.host
    this.address = `${host}:${instance.port}`
    this.origin = `http://${this.address}`
    this.pool = new Pool(this.origin, {
      connections: settings.connections,
      pipelining: 1,
      connectTimeout: settings.connectTimeoutMs,
      keepAliveTimeout: settings.keepAliveMs,
      keepAliveMaxTimeout: settings.keepAliveMs
    })
  }
}

/** Endpoints by instance: reused while an instance stays the same, retired when it goes. */
export class EndpointCatalog {
  private readonly endpoints = new Map<string, Endpoint>()

  constructor(private readonly settings: PoolSettings) {}

  get size(): number {
    return this.endpoints.size
  }

  endpointFor = (instance: InstanceRecord): Endpoint => {
    const key = endpointKey(instance)
    let endpoint = this.endpoints.get(key)
    if (!endpoint) {
      endpoint = new Endpoint(instance, this.settings)
      this.endpoints.set(key, endpoint)
    }
    return endpoint
  }

  /** Stops sending to an endpoint; requests already on it finish before its pool closes. */
  retire(endpoint: Endpoint): void {
    const key = endpointKey(endpoint.instance)
    if (this.endpoints.get(key) === endpoint) this.endpoints.delete(key)
    endpoint.pool.close().catch(() => {})
  }

  async closeAll(): Promise<void> {
    const all = [...this.endpoints.values()]
    this.endpoints.clear()
    await Promise.all(all.map((endpoint) => endpoint.pool.close().catch(() => {})))
  }

  async destroyAll(): Promise<void> {
    const all = [...this.endpoints.values()]
    this.endpoints.clear()
    await Promise.all(all.map((endpoint) => endpoint.pool.destroy().catch(() => {})))
  }
}

function endpointKey(instance: InstanceRecord): string {
  return `${instance.service}/${instance.id}@${instance.host}:${instance.port}`
}
