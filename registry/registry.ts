import { randomUUID } from 'node:crypto'
import { SwitchyardError } from '../core/errors.js'
import { asPromise } from '../core/as-promise.js'
import { assertValidName } from '../core/names.js'
import type { InstanceRecord, InstanceStatus, RegistryChange, RegistrySnapshot, ServiceRecord } from '../core/registry-events.js'
import { RegistryModel, serviceRecord, weightsOf } from '../core/registry-model.js'
import { compareVersions } from '../core/names.js'
import { parseWeights, weightsFromBasisPoints } from '../core/weights.js'
import {
  commandRollout,
  isActive,
  restartWindow,
  startRollout,
  weightsChangedElsewhere,
  type RolloutCommand,
  type RolloutState,
  type Transition
} from '../core/rollout/rollout-machine.js'
import { resolveRolloutSpec, type RolloutRequest } from '../core/rollout/rollout-spec.js'
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
  /** each service's latest rollout as applied (validates the next write) and as durable (read) */
  private readonly rollouts = new Map<string, RolloutState>()
  private readonly durableRollouts = new Map<string, RolloutState>()
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
    for (const [service, rollout] of Object.entries(loaded.base?.rollouts ?? {})) this.rollouts.set(service, rollout)
    for (const change of loaded.changes) this.applyAndRecord(change)
    this.view = RegistryModel.fromSnapshot(this.model.snapshot())
    // The signals of a window in progress lived in memory: active rollouts collect theirs again.
    const now = this.clock()
    for (const [service, rollout] of this.rollouts) {
      const restarted = restartWindow(rollout, this.model.revision, now)
      this.rollouts.set(service, restarted)
      this.durableRollouts.set(service, restarted)
    }
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

  /** the registry's clock (ms since the epoch) */
  now(): number {
    return this.clock()
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

  heartbeat(service: string, id: string): void {
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

  async setWeights(
    service: string,
    input: unknown,
    options: { actor: string; ifMatch?: number; allowUnregistered?: boolean }
  ): Promise<{ weights: Record<string, number>; revision: number }> {
    assertValidName('service', service)
    const parsed = parseWeights(input)
    if (options.ifMatch !== undefined && options.ifMatch !== this.model.revision) {
      throw new SwitchyardError('REVISION_MISMATCH', `the registry is at revision ${this.model.revision}, not ${options.ifMatch}; read the weights again and retry`)
    }
    const existing = this.model.services.get(service)
    if (!options.allowUnregistered) {
      // A typo (v9=10) would send its share into the fallback path: refuse it unless the
      // caller says it is pre-provisioning a version that has no instance yet.
      const registered = new Set([...(existing?.instances.values() ?? [])].map((instance) => instance.version))
      const missing = [...parsed].filter(([version, weight]) => weight > 0 && !registered.has(version)).map(([version]) => version)
      if (missing.length > 0) {
        const known = [...registered].sort(compareVersions)
        throw new SwitchyardError(
          'VERSION_NOT_REGISTERED',
          `${missing.join(', ')} of ${service} ${missing.length === 1 ? 'has' : 'have'} no registered instance (known versions: ${known.length > 0 ? known.join(', ') : 'none'}); pass allowUnregistered to set it anyway`
        )
      }
    }
    const previous = existing ? weightsOf(existing) : {}
    const now = this.clock()
    const changes: RegistryChange[] = [{ type: 'weights-changed', revision: 0, at: now, service, weights: weightsFromBasisPoints(parsed), previous, actor: options.actor }]
    // A person changing the weights takes the wheel: the rollout pauses and says who.
    const rollout = this.rollouts.get(service)
    const paused = rollout ? weightsChangedElsewhere(rollout, options.actor, now) : undefined
    if (paused) changes.push({ type: 'rollout-changed', revision: 0, at: now, service, rollout: paused.state, event: paused.event, actor: options.actor })
    const revision = await this.commit(changes)
    return { weights: weightsOf(this.model.serviceFor(service)), revision }
  }

  // ---- rollouts ----

  async startRollout(service: string, request: RolloutRequest, actor: string): Promise<RolloutState> {
    const model = this.requireService(service)
    const current = this.rollouts.get(service)
    if (current && isActive(current)) {
      throw new SwitchyardError('ROLLOUT_ACTIVE', `${service} already has a ${current.phase} rollout of ${current.spec.canary}; abort it first`)
    }
    const instances = [...model.instances.values()]
    const spec = resolveRolloutSpec(request, {
      weights: weightsOf(model),
      upVersions: new Set(instances.filter((instance) => instance.status === 'up').map((instance) => instance.version)),
      registeredVersions: new Set(instances.map((instance) => instance.version))
    })
    const transition = startRollout(service, spec, actor, this.clock())
    return this.applyRollout(transition, actor)
  }

  async commandRollout(service: string, command: RolloutCommand, actor: string): Promise<RolloutState> {
    const current = this.rollouts.get(service)
    if (!current) throw new SwitchyardError('ROLLOUT_NOT_FOUND', `${service} has no rollout`)
    return this.applyRollout(commandRollout(current, command, actor, this.clock()), actor)
  }

  /**
   * Writes a rollout's transition: its weights (through the same journal, audited with the
   * rollout as actor) and its new state in one commit. A state that waits for routers
   * waits for the revision of these very weights.
   */
  async applyRollout(transition: Transition, actor = 'rollout'): Promise<RolloutState> {
    const { service } = transition.state
    const now = this.clock()
    const changes: RegistryChange[] = []
    let state = transition.state
    if (transition.weights) {
      const existing = this.model.services.get(service)
      const previous = existing ? weightsOf(existing) : {}
      changes.push({ type: 'weights-changed', revision: 0, at: now, service, weights: transition.weights, previous, actor: actor === 'rollout' ? 'rollout' : `rollout (${actor})` })
      if (state.phase === 'progressing') state = { ...state, awaitingRevision: this.model.revision + 1 }
    }
    changes.push({ type: 'rollout-changed', revision: 0, at: now, service, rollout: state, event: transition.event, actor })
    await this.commit(changes)
    return state
  }

  /** the rollout as last applied (for the controller, which must judge the newest state) */
  currentRollout(service: string): RolloutState | undefined {
    return this.rollouts.get(service)
  }

  activeRollouts(): RolloutState[] {
    return [...this.rollouts.values()].filter(isActive)
  }

  rollout(service: string): RolloutState {
    const rollout = this.durableRollouts.get(service)
    if (!rollout) throw new SwitchyardError('ROLLOUT_NOT_FOUND', `${service} has no rollout`)
    return rollout
  }

  rolloutList(): RolloutState[] {
    return [...this.durableRollouts.values()].sort((a, b) => (a.service < b.service ? -1 : 1))
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

  snapshot(): Promise<RegistrySnapshot> {
    return asPromise(() => {
      this.assertHealthy()
      return this.view.snapshot()
    })
  }

  service(name: string): ServiceRecord & { revision: number } {
    return { ...serviceRecord(this.requireService(name, this.view)), revision: this.view.revision }
  }

  weights(name: string): { weights: Record<string, number>; revision: number } {
    return { weights: weightsOf(this.requireService(name, this.view)), revision: this.view.revision }
  }

  weightHistory(name: string): { history: WeightHistoryEntry[]; revision: number } {
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
    return { snapshot: this.model.snapshot(), history: Object.fromEntries(this.history), rollouts: Object.fromEntries(this.rollouts) }
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
          if (change.type === 'rollout-changed') this.durableRollouts.set(change.service, change.rollout)
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
    } else if (change.type === 'rollout-changed') {
      this.rollouts.set(change.service, change.rollout)
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
