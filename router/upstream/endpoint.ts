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
  readonly address: string
  readonly origin: string
  private connections: Pool | undefined

  constructor(
    readonly instance: InstanceRecord,
    private readonly settings: PoolSettings
  ) {
    const host = instance.host.includes(':') && !instance.host.startsWith('[') ? `[${instance.host}]` : instance.host
    this.address = `${host}:${instance.port}`
    this.origin = `http://${this.address}`
  }

  /** Created on first use: a table of 30,000 instances must not cost 30,000 pools up front. */
  get pool(): Pool {
    this.connections ??= new Pool(this.origin, {
      connections: this.settings.connections,
      pipelining: 1,
      connectTimeout: this.settings.connectTimeoutMs,
      keepAliveTimeout: this.settings.keepAliveMs,
      keepAliveMaxTimeout: this.settings.keepAliveMs
    })
    return this.connections
  }

  /** Lets requests on it finish, then closes its connections (if it ever had any). */
  close(): Promise<void> {
    return this.connections?.close() ?? Promise.resolve()
  }

  destroy(): Promise<void> {
    return this.connections?.destroy() ?? Promise.resolve()
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
    endpoint.close().catch(() => {})
  }

  async closeAll(): Promise<void> {
    const all = [...this.endpoints.values()]
    this.endpoints.clear()
    await Promise.all(all.map((endpoint) => endpoint.close().catch(() => {})))
  }

  async destroyAll(): Promise<void> {
    const all = [...this.endpoints.values()]
    this.endpoints.clear()
    await Promise.all(all.map((endpoint) => endpoint.destroy().catch(() => {})))
  }
}

function endpointKey(instance: InstanceRecord): string {
  return `${instance.service}/${instance.id}@${instance.host}:${instance.port}`
}
