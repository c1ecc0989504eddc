import { fullJitterDelay } from '../../core/backoff.js'
import { RegistryClient, RegistryRequestError } from './registry-client.js'
import type { RegistryEndpoints } from './registry-endpoints.js'

export interface InstanceAgentOptions {
  /** one URL, several replicas' comma-separated, or endpoints shared with other clients */
  registryUrl: string | RegistryEndpoints
  token?: string | undefined
  service: string
  version: string
  host: string
  port: number
  id?: string
  metadata?: Record<string, string>
  /** called once per transition (registered, lost the registry, registered again) */
  onEvent?: (event: string, detail?: Record<string, unknown>) => void
}

/**
 * Keeps one service instance in the registry the way a Eureka client does: registers,
 * heartbeats at the interval the registry asks for, registers again when a heartbeat
 * answers 404 (evicted, or a registry that lost it), and on shutdown marks itself
 * draining, waits for routers to stop sending, then deregisters.
 */
export class InstanceAgent {
  private readonly client: RegistryClient
  private readonly options: InstanceAgentOptions
  private instanceId: string | undefined
  private timer: NodeJS.Timeout | undefined
  private renewMs = 10_000
  private healthy = true
  private stopped = false

  constructor(options: InstanceAgentOptions) {
    this.options = options
    this.client = new RegistryClient({ url: options.registryUrl, token: options.token, timeoutMs: 5_000 })
  }

  get id(): string | undefined {
    return this.instanceId
  }

  /** Registers, retrying until a registry replica answers, then heartbeats in the background. */
  async start(): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.register()
        break
      } catch (error) {
        if (error instanceof RegistryRequestError && error.status >= 400 && error.status < 500) throw error
        if (this.healthy) this.options.onEvent?.('registry-unreachable', { reason: (error as Error).message })
        this.healthy = false
        // Each try already went round every replica; jitter keeps a fleet that lost them together from returning together.
        await new Promise((resolve) => setTimeout(resolve, fullJitterDelay(attempt, { initialMs: 400, maxMs: 10_000 }, Math.random)))
      }
    }
    this.schedule()
    return this.instanceId as string
  }

  /** Draining: routers stop sending new requests; `drainMs` later the instance deregisters. */
  async stop(drainMs: number): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    if (!this.instanceId) return
    try {
      await this.client.setStatus(this.options.service, this.instanceId, 'draining')
      if (drainMs > 0) await new Promise((resolve) => setTimeout(resolve, drainMs))
      await this.client.deregister(this.options.service, this.instanceId).catch((error: unknown) => {
        // Gone already: a repeat on another replica after the first deregistration landed, or an eviction.
        if (!(error instanceof RegistryRequestError && error.status === 404)) throw error
      })
    } catch (error) {
      this.options.onEvent?.('deregister-failed', { reason: (error as Error).message })
    }
  }

  private async register(): Promise<void> {
    const body = {
      version: this.options.version,
      host: this.options.host,
      port: this.options.port,
      ...((this.instanceId ?? this.options.id) ? { id: (this.instanceId ?? this.options.id) as string } : {}),
      ...(this.options.metadata ? { metadata: this.options.metadata } : {})
    }
    const registration = await this.client.register(this.options.service, body)
    this.instanceId = registration.id
    this.renewMs = registration.renewSeconds * 1000
    this.healthy = true
    this.options.onEvent?.('registered', { id: registration.id })
  }

  private schedule(): void {
    if (this.stopped) return
    this.timer = setTimeout(() => void this.beat(), this.renewMs)
    this.timer.unref()
  }

  private async beat(): Promise<void> {
    try {
      await this.client.heartbeat(this.options.service, this.instanceId as string)
      if (!this.healthy) this.options.onEvent?.('registry-reachable')
      this.healthy = true
    } catch (error) {
      if (error instanceof RegistryRequestError && error.status === 404) {
        this.options.onEvent?.('evicted', { id: this.instanceId })
        await this.register().catch(() => {})
      } else if (this.healthy) {
        this.healthy = false
        this.options.onEvent?.('registry-unreachable', { reason: (error as Error).message })
      }
    }
    this.schedule()
  }
}
