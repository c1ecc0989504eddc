import { randomUUID } from 'node:crypto'
import { SwitchyardError } from '../core/errors.js'
import { assertValidName } from '../core/names.js'
import type { InstanceRecord, InstanceStatus, RegistryChange, RegistrySnapshot, ServiceRecord } from '../core/registry-events.js'
import { RegistryModel, serviceRecord, weightsOf } from '../core/registry-model.js'
import { parseWeights, weightsFromBasisPoints } from '../core/weights.js'
import { LeaseBook } from './leases.js'
import type { LoadedState, PersistedState, RegistryStore, WeightHistoryEntry } from './store/registry-store.js'
import { WatchHub } from './watch/watch-hub.js'

export interface RegistryOptions {
  store: RegistryStore
  /** ms since the epoch; tests pass a fake */
  clock?: () => number
  leaseSeconds?: number
  renewSeconds?: number
  /** share of all instances that may expire in one sweep before eviction stops */
  selfPreservationThreshold?: number
  /** fewer simultaneous expiries than this never count as a partition */
  selfPreservationMinExpired?: number
  historyLimit?: number
  watchBuffer?: number
}

export interface RegistrationInput {
  version: string
  host: string
  port: number
  id?: string
  metadata?: Record<string, string>
}

export interface RegistrationResult {
  id: string
  created: boolean
  leaseSeconds: number
  renewSeconds: number
}

export interface SweepResult {
  expired: number
  evicted: { service: string; id: string }[]
  selfPreservation: boolean
}

export interface InstanceView extends InstanceRecord {
  lastHeartbeat: number | undefined
}

/**
 * The registry's state and its rules. Every change is applied to memory at once (so the
 * next request is validated against it), journaled, and acknowledged and published to
 * watchers only once the store says it is durable. Reads wait for durability too, so
 * nothing a crash could take back is ever shown.
 */
export class Registry {
  readonly leaseSeconds: number
  readonly renewSeconds: number
  readonly hub: WatchHub
  /** the working state: applied at once, validates the next write */
  private readonly model: RegistryModel
  /** the durable state: advances only as the store confirms; every read is served from it */
  private readonly view: RegistryModel
  private readonly leases = new LeaseBook()
  private readonly history = new Map<string, WeightHistoryEntry[]>()
  private readonly store: RegistryStore
  private readonly clock: () => number
  private readonly threshold: number
  private readonly minExpired: number
  private readonly historyLimit: number
  private durable: Promise<void> = Promise.resolve()
  private failure: Error | undefined
  private preserving = false
  private readonly failureListeners: ((error: Error) => void)[] = []
  private readonly sweepListeners: ((result: SweepResult) => void)[] = []

  private constructor(options: RegistryOptions, loaded: LoadedState) {
    this.store = options.store
    this.clock = options.clock ?? Date.now
    this.leaseSeconds = options.leaseSeconds ?? 30
    this.renewSeconds = options.renewSeconds ?? 10
    this.threshold = options.selfPreservationThreshold ?? 0.15
    this.minExpired = options.selfPreservationMinExpired ?? 2
    this.historyLimit = options.historyLimit ?? 1000
    this.model = loaded.base ? RegistryModel.fromSnapshot(loaded.base.snapshot) : new RegistryModel()
    for (const [service, entries] of Object.entries(loaded.base?.history ?? {})) this.history.set(service, [...entries])
    for (const change of loaded.changes) this.applyAndRecord(change)
    this.view = RegistryModel.fromSnapshot(this.model.snapshot())
    // The hub starts at the replayed revision: a watcher resuming after a restart must
    // not be told that an older revision is current (since=0 would get nothing at all).
    this.hub = new WatchHub({ capacity: options.watchBuffer ?? 10_000, startRevision: this.model.revision })
  }

  static async open(options: RegistryOptions): Promise<Registry> {
    const loaded = await options.store.open()
    const registry = new Registry(options, loaded)
    // Every instance known at start-up gets a full lease to heartbeat again.
    const now = registry.clock()
    for (const service of registry.model.services.values()) {
      for (const id of service.instances.keys()) registry.leases.renew(service.name, id, now)
    }
    options.store.setCompactionSource(() => registry.persistedState())
    return registry
  }

  /** the latest durable revision */
  get revision(): number {
    return this.view.revision
  }

  get selfPreservationActive(): boolean {
    return this.preserving
  }

  get instanceCount(): number {
    return this.view.instanceCount()
  }

  onFailure(listener: (error: Error) => void): void {
    this.failureListeners.push(listener)
  }

  onSweep(listener: (result: SweepResult) => void): void {
    this.sweepListeners.push(listener)
  }

  // ---- writes ----

  async register(service: string, input: RegistrationInput): Promise<RegistrationResult> {
    assertValidName('service', service)
    assertValidName('version', input.version)
    const now = this.clock()
    const id = input.id ?? `${service}-${randomUUID().slice(0, 13)}`
    const existing = this.model.findInstance(service, id)
    if (existing && existing.version !== input.version) {
      throw new SwitchyardError(
        'INSTANCE_CONFLICT',
        `instance ${id} of ${service} is registered as version ${existing.version}; deregister it before registering it as ${input.version}`
      )
    }
    const lease = { id, leaseSeconds: this.leaseSeconds, renewSeconds: this.renewSeconds }
    const metadata = input.metadata ?? {}
    this.leases.renew(service, id, now)
    if (existing && existing.host === input.host && existing.port === input.port && existing.status === 'up' && sameRecord(existing.metadata, metadata)) {
      await this.waitDurable()
      return { ...lease, created: false }
    }
    const instance: InstanceRecord = {
      id,
      service,
      version: input.version,
      host: input.host,
      port: input.port,
      metadata,
      status: 'up',
      registeredAt: existing?.registeredAt ?? now
    }
    const changes: RegistryChange[] = []
    const serviceModel = this.model.services.get(service)
    // A service's first version takes all traffic; later versions start dark at 0%.
    if (!serviceModel || (serviceModel.weights.size === 0 && serviceModel.instances.size === 0)) {
      changes.push({ type: 'weights-changed', revision: 0, at: now, service, weights: { [input.version]: 100 }, previous: {}, actor: 'registry (first version of the service)' })
    }
    changes.push({ type: 'instance-registered', revision: 0, at: now, instance })
    await this.commit(changes)
    return { ...lease, created: existing === undefined }
  }

  async heartbeat(service: string, id: string): Promise<void> {
    this.requireInstance(service, id)
    this.leases.renew(service, id, this.clock())
  }

  async setStatus(service: string, id: string, status: InstanceStatus): Promise<void> {
    const instance = this.requireInstance(service, id)
    this.leases.renew(service, id, this.clock())
    if (instance.status === status) return this.waitDurable()
    await this.commit([{ type: 'instance-status-changed', revision: 0, at: this.clock(), service, id, status }])
  }

  async deregister(service: string, id: string): Promise<void> {
    this.requireInstance(service, id)
    this.leases.forget(service, id)
    await this.commit([{ type: 'instance-removed', revision: 0, at: this.clock(), service, id, reason: 'deregistered' }])
  }

  async setWeights(service: string, input: unknown, options: { actor: string; ifMatch?: number }): Promise<{ weights: Record<string, number>; revision: number }> {
    assertValidName('service', service)
    const parsed = parseWeights(input)
    if (options.ifMatch !== undefined && options.ifMatch !== this.model.revision) {
      throw new SwitchyardError('REVISION_MISMATCH', `the registry is at revision ${this.model.revision}, not ${options.ifMatch}; read the weights again and retry`)
    }
    const existing = this.model.services.get(service)
    const previous = existing ? weightsOf(existing) : {}
    const revision = await this.commit([
      { type: 'weights-changed', revision: 0, at: this.clock(), service, weights: weightsFromBasisPoints(parsed), previous, actor: options.actor }
    ])
    return { weights: weightsOf(this.model.serviceFor(service)), revision }
  }

  /**
   * Evicts instances whose lease ran out, unless so many ran out at once that the
   * registry, not the instances, is the likely one cut off (Eureka's self-preservation).
   */
  async sweep(): Promise<SweepResult> {
    const now = this.clock()
    const expired = this.leases.expired(now, this.leaseSeconds * 1000)
    const total = this.model.instanceCount()
    let result: SweepResult
    if (expired.length >= this.minExpired && expired.length > this.threshold * total) {
      this.preserving = true
      result = { expired: expired.length, evicted: [], selfPreservation: true }
    } else {
      this.preserving = false
      for (const { service, id } of expired) this.leases.forget(service, id)
      if (expired.length > 0) {
        await this.commit(expired.map(({ service, id }) => ({ type: 'instance-removed', revision: 0, at: now, service, id, reason: 'evicted' }) as const))
      }
      result = { expired: expired.length, evicted: expired, selfPreservation: false }
    }
    for (const listener of this.sweepListeners) listener(result)
    return result
  }

  // ---- reads: served from the durable view, so nothing a crash could take back is shown ----

  async snapshot(): Promise<RegistrySnapshot> {
    this.assertHealthy()
    return this.view.snapshot()
  }

  async service(name: string): Promise<ServiceRecord & { revision: number }> {
    return { ...serviceRecord(this.requireService(name, this.view)), revision: this.view.revision }
  }

  async weights(name: string): Promise<{ weights: Record<string, number>; revision: number }> {
    return { weights: weightsOf(this.requireService(name, this.view)), revision: this.view.revision }
  }

  async weightHistory(name: string): Promise<{ history: WeightHistoryEntry[]; revision: number }> {
    this.requireService(name, this.view)
    const durable = this.view.revision
    return { history: (this.history.get(name) ?? []).filter((entry) => entry.revision <= durable), revision: durable }
  }

  lastHeartbeat(service: string, id: string): number | undefined {
    return this.leases.lastRenewed(service, id)
  }

  private assertHealthy(): void {
    if (this.failure) throw new SwitchyardError('INTERNAL', 'the registry store failed; the registry is stopping', { cause: this.failure })
  }

  /** Resolves once everything applied so far is durable (and published to watchers). */
  waitDurable(): Promise<void> {
    return this.failure ? Promise.reject(this.failure) : this.durable
  }

  persistedState(): PersistedState {
    return { snapshot: this.model.snapshot(), history: Object.fromEntries(this.history) }
  }

  async close(): Promise<void> {
    await this.durable.catch(() => {})
    await this.store.close()
  }

  // ---- internals ----

  private async commit(changes: RegistryChange[]): Promise<number> {
    if (this.failure) throw this.failure
    const appended: Promise<void>[] = []
    for (const draft of changes) {
      const change = { ...draft, revision: this.model.revision + 1 } as RegistryChange
      this.applyAndRecord(change)
      appended.push(
        this.store.append(change).then(() => {
          this.view.apply(change)
          this.hub.publish(change)
        })
      )
    }
    const revision = this.model.revision
    const done = Promise.all(appended).then(() => undefined)
    this.durable = done
    try {
      await done
    } catch (error) {
      // Memory is now ahead of the disk: this registry must stop and restart from its store.
      this.failure ??= error as Error
      for (const listener of this.failureListeners) listener(this.failure)
      throw new SwitchyardError('INTERNAL', 'the change could not be stored; the registry is stopping', { cause: error })
    }
    return revision
  }

  private applyAndRecord(change: RegistryChange): void {
    this.model.apply(change)
    if (change.type === 'weights-changed') {
      const entries = this.history.get(change.service) ?? []
      entries.push({ revision: change.revision, at: change.at, actor: change.actor, from: change.previous, to: change.weights })
      if (entries.length > this.historyLimit) entries.splice(0, entries.length - this.historyLimit)
      this.history.set(change.service, entries)
    }
  }

  private requireService(name: string, from: RegistryModel = this.model) {
    const service = from.services.get(name)
    if (!service) throw new SwitchyardError('SERVICE_NOT_FOUND', `service ${JSON.stringify(name)} is not known to the registry`)
    return service
  }

  private requireInstance(service: string, id: string): InstanceRecord {
    const instance = this.model.findInstance(service, id)
    if (!instance) {
      throw new SwitchyardError(
        'INSTANCE_NOT_FOUND',
        `instance ${JSON.stringify(id)} of service ${JSON.stringify(service)} is not registered (it may have been evicted); register it again`
      )
    }
    return instance
  }
}

function sameRecord(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key])
}
