import { connect, type ClientHttp2Session } from 'node:http2'
import { Pool } from 'undici'
import type { BalancedEndpoint } from '../../core/instance-picker.js'
import { recordFailure, type OutlierSettings, type OutlierState } from '../../core/outlier-detection.js'
import type { InstanceRecord } from '../../core/registry-events.js'

export interface PoolSettings {
  connectTimeoutMs: number
  keepAliveMs: number
  connections: number
}

/** An ejection as the other workers of a router adopt it: the endpoint's key and its outlier state (Date.now-based: the same clock in every process). */
export interface SharedEjection {
  key: string
  ejectedUntil: number
  ejections: number
}

/** No HTTP/2 connection within connectTimeoutMs: coded as undici's connect timeout, so that upstream-error.ts words it the same. */
class ConnectTimeout extends Error {
  readonly code = 'UND_ERR_CONNECT_TIMEOUT'
}

const ignore = () => {}

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
  /** the instance as the catalog knows it (the same in every worker of a router) */
  readonly key: string
  private connections: Pool | undefined
  private session: ClientHttp2Session | undefined
  private closed = false

  constructor(
    readonly instance: InstanceRecord,
    private readonly settings: PoolSettings,
    /** told when outlier detection ejects this endpoint here (the catalog passes it on to the router's other workers) */
    private readonly onEjected: (endpoint: Endpoint) => void = ignore
  ) {
    this.key = endpointKey(instance)
    const host = instance.host.includes(':') && !instance.host.startsWith('[') ? `[${instance.host}]` : instance.host
    this.address = `${host}:${instance.port}`
    this.origin = `http://${this.address}`
  }

  /**
   * A failed request to this instance, through outlier detection (core recordFailure);
   * true when it ejected the endpoint, which the router's other workers then keep out too.
   */
  countFailure(siblings: readonly OutlierState[], now: number, settings: OutlierSettings): boolean {
    if (!recordFailure(this, siblings, now, settings)) return false
    this.onEjected(this)
    return true
  }

  /**
   * Another worker of the router ejected this instance: it stays out here as long, as an
   * Envoy router's ejection holds for all its threads. Never shortens one of its own.
   */
  adopt(ejection: SharedEjection): void {
    if (ejection.ejectedUntil <= this.ejectedUntil) return
    this.ejectedUntil = ejection.ejectedUntil
    this.lastEjectionEnd = ejection.ejectedUntil
    this.ejections = Math.max(this.ejections, ejection.ejections)
    this.consecutiveFailures = 0
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

  /**
   * The instance's HTTP/2 connection (h2c prior knowledge, for h2c and gRPC services),
   * opened on first use: every stream to the instance shares it, as gRPC clients do. A
   * connection told to go away (GOAWAY), closed or failed is replaced on the next request
   * while its own streams finish. Undefined once the endpoint is closed (its instance left).
   */
  get h2(): ClientHttp2Session | undefined {
    if (this.closed) return undefined
    const current = this.session
    if (current && !current.closed && !current.destroyed) return current
    const session = connect(this.origin, { settings: { enablePush: false } })
    const timer = setTimeout(() => session.destroy(new ConnectTimeout(`connecting to ${this.address} timed out`)), this.settings.connectTimeoutMs)
    const forget = () => {
      clearTimeout(timer)
      if (this.session === session) this.session = undefined
    }
    session.once('connect', () => clearTimeout(timer))
    session.once('goaway', forget)
    session.once('close', forget)
    // A failed connection fails its streams, which is where it is reported.
    session.on('error', ignore)
    this.session = session
    return session
  }

  /** Lets requests on it finish, then closes its connections (if it ever had any). */
  close(): Promise<void> {
    const session = this.session
    this.session = undefined
    this.closed = true
    const h2 =
      session && !session.destroyed
        ? new Promise<void>((resolve) => {
            session.once('close', resolve)
            session.close()
          })
        : Promise.resolve()
    return Promise.all([this.connections?.close(), h2]).then(ignore)
  }

  destroy(): Promise<void> {
    this.closed = true
    this.session?.destroy()
    this.session = undefined
    return this.connections?.destroy() ?? Promise.resolve()
  }
}

/** Endpoints by instance: reused while an instance stays the same, retired when it goes. */
export class EndpointCatalog {
  private readonly endpoints = new Map<string, Endpoint>()
  /** set by a worker of a router with --workers: its ejections go to the others */
  onEjected: (ejection: SharedEjection) => void = ignore

  constructor(private readonly settings: PoolSettings) {}

  private readonly announce = (endpoint: Endpoint): void => {
    this.onEjected({ key: endpoint.key, ejectedUntil: endpoint.ejectedUntil, ejections: endpoint.ejections })
  }

  /** Another worker's ejection; an instance this worker has no endpoint for (not in its table yet, or gone) is left alone. */
  adopt(ejection: SharedEjection): void {
    this.endpoints.get(ejection.key)?.adopt(ejection)
  }

  get size(): number {
    return this.endpoints.size
  }

  endpointFor = (instance: InstanceRecord): Endpoint => {
    const key = endpointKey(instance)
    let endpoint = this.endpoints.get(key)
    if (!endpoint) {
      endpoint = new Endpoint(instance, this.settings, this.announce)
      this.endpoints.set(key, endpoint)
    }
    return endpoint
  }

  /** Stops sending to an endpoint; requests already on it finish before its pool closes. */
  retire(endpoint: Endpoint): void {
    if (this.endpoints.get(endpoint.key) === endpoint) this.endpoints.delete(endpoint.key)
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
