import type { ProxyConfig } from '../config.js'
import type { RouterMetrics } from '../metrics.js'
import type { Endpoint } from '../upstream/endpoint.js'
import { GOING_AWAY, type UpgradeTunnel } from './upgrade-tunnel.js'

/**
 * The listener's upgraded connections: the limit on how many may be open (handshakes
 * under way count), the open-connections gauge, the drain of connections to an instance
 * that left the routing table, and their end when the router shuts down.
 */
export class UpgradeTunnels {
  /** handshakes under way plus open tunnels */
  private taken = 0
  private readonly byEndpoint = new Map<Endpoint, Set<UpgradeTunnel>>()
  private readonly allClosed: (() => void)[] = []
  /** endpoints that left the table (a handshake to one may still end in a tunnel) */
  private readonly retired = new WeakSet<Endpoint>()
  private stopping = false

  constructor(
    readonly settings: ProxyConfig['upgrades'],
    private readonly metrics: RouterMetrics
  ) {}

  /** Open tunnels. */
  get size(): number {
    let count = 0
    for (const tunnels of this.byEndpoint.values()) count += tunnels.size
    return count
  }

  /** False once the router is shutting down: no new upgrades then. */
  get accepting(): boolean {
    return !this.stopping
  }

  /** Takes a place for one more upgrade; false when `maxConnections` are taken. */
  reserve(): boolean {
    if (this.taken >= this.settings.maxConnections) return false
    this.taken++
    return true
  }

  /** Gives back a place taken by `reserve` whose handshake did not end in a tunnel. */
  release(): void {
    this.taken--
  }

  /** A handshake succeeded: its place is now the tunnel's until it closes. */
  add(tunnel: UpgradeTunnel): void {
    const { endpoint, service, version } = tunnel.target
    let tunnels = this.byEndpoint.get(endpoint)
    if (!tunnels) this.byEndpoint.set(endpoint, (tunnels = new Set()))
    tunnels.add(tunnel)
    this.metrics.upgraded.inc({ service, version })
    // Opened during shutdown or after its instance left (its handshake began before): it ends like the others.
    if (this.stopping) tunnel.close(GOING_AWAY, 'going away')
    else if (this.retired.has(endpoint)) this.drain(endpoint)
  }

  /** The tunnel's sockets are closed. */
  closed = (tunnel: UpgradeTunnel): void => {
    const { endpoint, service, version } = tunnel.target
    const tunnels = this.byEndpoint.get(endpoint)
    if (!tunnels?.delete(tunnel)) return
    if (tunnels.size === 0) this.byEndpoint.delete(endpoint)
    this.metrics.upgraded.dec({ service, version })
    this.release()
    if (this.byEndpoint.size === 0) for (const resolve of this.allClosed.splice(0)) resolve()
  }

  /** The instance left the table: its tunnels stay until they close or the drain timeout ends them. */
  retire(endpoint: Endpoint): void {
    this.retired.add(endpoint)
    if (this.byEndpoint.has(endpoint)) this.drain(endpoint)
  }

  private drain(endpoint: Endpoint): void {
    setTimeout(() => {
      for (const tunnel of this.byEndpoint.get(endpoint) ?? []) tunnel.close(GOING_AWAY, 'going away')
    }, this.settings.drainTimeoutMs).unref()
  }

  /** Shutdown begins: new upgrades are refused, open tunnels go on. */
  stop(): void {
    this.stopping = true
  }

  /** Shutdown's drain time is over: every tunnel is ended; resolves once all are closed (handshakes under way end on their own timeouts). */
  closeAll(): Promise<void> {
    this.stop()
    for (const tunnels of this.byEndpoint.values()) for (const tunnel of tunnels) tunnel.close(GOING_AWAY, 'going away')
    if (this.byEndpoint.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.allClosed.push(resolve))
  }
}
