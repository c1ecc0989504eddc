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
import { isShared, type AnyRegistryStore, type LoadedState, type PersistedState, type SharedRegistryStore, type WeightHistoryEntry } from './store/registry-store.js'
import { WatchHub } from './watch/watch-hub.js'

export interface RegistryOptions {
  store: AnyRegistryStore
  /** ms since the epoch; tests pass a fake */
  clock?: () => number
  leaseSeconds?: number
  renewSeconds?: number
  /** share of all instances that may expire in one sweep before eviction stops */
  selfPreservationThreshold?: number
  /** fewer simultaneous expiries than this never count as a partition */
  selfPreservationMinExpired?: number
  /**
   * how long self-preservation may hold expired instances before it takes the state as
   * the new baseline and evicts them (Eureka recomputes its threshold every 15 minutes;
   * without a bound, instances that died with a restart stay routable for ever)
   */
  selfPreservationMaxMs?: number
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
  /** self-preservation held longer than its bound: the expired instances were evicted as the new baseline */
  rebaselined?: boolean
  /** this replica does not decide expiries (another replica of a shared store does) */
  skipped?: boolean
}

export interface SelfPreservationView {
  active: boolean
  /** ms since the epoch when it began */
  since: number | undefined
  /** when it ends at the latest (the expired instances are then evicted) */
  endsAt: number | undefined
  /** instances whose lease has run out but that are kept */
  expiredInstances: number
}

interface PendingWrite {
  draft: () => RegistryChange[]
  asLeader: boolean
  resolve: (revision: number) => void
  reject: (error: unknown) => void
}

/** writes drafted and committed to a shared store together: at most 2 changes each, under etcd's 128 operations per transaction */
const MAX_BATCH = 48
const EVICTIONS_PER_WRITE = 100

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
  private model: RegistryModel
  /** the durable state: advances only as the store confirms; every read is served from it */
  private view: RegistryModel
  private readonly leases = new LeaseBook()
  private readonly history = new Map<string, WeightHistoryEntry[]>()
  /** each service's latest rollout as applied (validates the next write) and as durable (read) */
  private readonly rollouts = new Map<string, RolloutState>()
  private readonly durableRollouts = new Map<string, RolloutState>()
  private readonly store: AnyRegistryStore
  /** set when several replicas share the store: writes go through `pending` and compare-and-swap */
  private readonly shared: SharedRegistryStore | undefined
  private readonly clock: () => number
  private readonly threshold: number
  private readonly minExpired: number
  private readonly preservationMaxMs: number
  private readonly historyLimit: number
  private durable: Promise<void> = Promise.resolve()
  private failure: Error | undefined
  private preservingSince: number | undefined
  private keptExpired = 0
  private readonly pending: PendingWrite[] = []
  private pumping = false
  /** shared store: the working model must be rebuilt from the followed state (after a reset) */
  private modelAhead = false
  /** shared store: how to take back the drafts of the batch in flight */
  private tentative: (() => void)[] = []
  /** shared store: changes followed while a batch was in flight, applied to the working model once it settles */
  private deferred: RegistryChange[] = []
  private readonly viewWaiters: { revision: number; resolve: () => void }[] = []
  private readonly failureListeners: ((error: Error) => void)[] = []
  private readonly sweepListeners: ((result: SweepResult) => void)[] = []

  private constructor(options: RegistryOptions, loaded: LoadedState) {
    this.store = options.store
    this.shared = isShared(options.store) ? options.store : undefined
    this.clock = options.clock ?? Date.now
    this.leaseSeconds = options.leaseSeconds ?? 30
    this.renewSeconds = options.renewSeconds ?? 10
    this.threshold = options.selfPreservationThreshold ?? 0.15
    this.minExpired = options.selfPreservationMinExpired ?? 2
    this.preservationMaxMs = options.selfPreservationMaxMs ?? 300_000
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
    this.hub.prefill(loaded.recent ?? [])
    for (const change of loaded.changes) this.hub.prefill([change])
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
    if (registry.shared) {
      registry.shared.onRemoteHeartbeats((instances) => registry.renewRemote(instances))
      registry.shared.follow({ change: (change) => registry.followChange(change), reset: (state) => registry.followReset(state) })
    }
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
    return this.preservingSince !== undefined
  }

  selfPreservation(): SelfPreservationView {
    const since = this.preservingSince
    return {
      active: since !== undefined,
      since,
      endsAt: since === undefined ? undefined : since + this.preservationMaxMs,
      expiredInstances: since === undefined ? 0 : this.keptExpired
    }
  }

  /** whether this replica makes the background decisions: lease expiries and rollout steps (with a shared store, one replica of all does) */
  get isLeader(): boolean {
    return this.shared ? this.shared.isLeader() : true
  }

  /** passes a router report received here to the other replicas (a single registry has none) */
  shareRouterReport(routerId: string, reporter: string, report: unknown): void {
    this.shared?.shareRouterReport(routerId, reporter, report)
  }

  /** router reports other replicas received */
  onRemoteRouterReport(listener: (reporter: string, report: unknown) => void): void {
    this.shared?.onRemoteRouterReport(listener)
  }

  /** false while this replica cannot follow its shared store (a single registry always can) */
  get following(): boolean {
    return this.shared ? this.shared.following() : true
  }

  /** whether several replicas share this registry's store */
  get replicated(): boolean {
    return this.shared !== undefined
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
    const id = input.id ?? `${service}-${randomUUID().slice(0, 13)}`
    const lease = { id, leaseSeconds: this.leaseSeconds, renewSeconds: this.renewSeconds }
    const metadata = input.metadata ?? {}
    let created = false
    await this.write(() => {
      const now = this.clock()
      const existing = this.model.findInstance(service, id)
      if (existing && existing.version !== input.version) {
        throw new SwitchyardError(
          'INSTANCE_CONFLICT',
          `instance ${id} of ${service} is registered as version ${existing.version}; deregister it before registering it as ${input.version}`
        )
      }
      this.renewLocal(service, id, now)
      created = existing === undefined
      if (existing && existing.host === input.host && existing.port === input.port && existing.status === 'up' && sameRecord(existing.metadata, metadata)) return []
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
      return changes
    })
    return { ...lease, created }
  }

  heartbeat(service: string, id: string): void {
    // A replica that has not yet followed a registration made through another one would
    // refuse its first heartbeat; the instance re-registers then, which is harmless.
    this.requireInstance(service, id, this.shared ? this.view : this.model)
    this.renewLocal(service, id, this.clock())
  }

  async setStatus(service: string, id: string, status: InstanceStatus): Promise<void> {
    await this.write(() => {
      const instance = this.requireInstance(service, id)
      this.renewLocal(service, id, this.clock())
      if (instance.status === status) return []
      return [{ type: 'instance-status-changed', revision: 0, at: this.clock(), service, id, status }]
    })
  }

  async deregister(service: string, id: string): Promise<void> {
    await this.write(() => {
      this.requireInstance(service, id)
      this.leases.forget(service, id)
      return [{ type: 'instance-removed', revision: 0, at: this.clock(), service, id, reason: 'deregistered' }]
    })
  }

  /** An operator removes an instance by hand (e.g. one self-preservation keeps although it is known dead). */
  async evict(service: string, id: string): Promise<{ revision: number }> {
    const revision = await this.write(() => {
      this.requireInstance(service, id)
      this.leases.forget(service, id)
      return [{ type: 'instance-removed', revision: 0, at: this.clock(), service, id, reason: 'evicted' }]
    })
    return { revision }
  }

  async setWeights(
    service: string,
    input: unknown,
    options: { actor: string; ifMatch?: number; allowUnregistered?: boolean }
  ): Promise<{ weights: Record<string, number>; revision: number }> {
    assertValidName('service', service)
    const parsed = parseWeights(input)
    // An If-Match read from a replica that is ahead of this one: catch up before comparing.
    if (this.shared && options.ifMatch !== undefined && options.ifMatch > this.view.revision) await this.catchUp(options.ifMatch)
    const revision = await this.write(() => {
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
      return changes
    })
    return { weights: weightsOf((this.shared ? this.view : this.model).serviceFor(service)), revision }
  }

  // ---- rollouts ----

  async startRollout(service: string, request: RolloutRequest, actor: string): Promise<RolloutState> {
    let state: RolloutState | undefined
    await this.write(() => {
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
      const drafted = this.rolloutChanges(startRollout(service, spec, actor, this.clock()), actor)
      state = drafted.state
      return drafted.changes
    })
    return state as RolloutState
  }

  async commandRollout(service: string, command: RolloutCommand, actor: string): Promise<RolloutState> {
    let state: RolloutState | undefined
    await this.write(() => {
      const current = this.rollouts.get(service)
      if (!current) throw new SwitchyardError('ROLLOUT_NOT_FOUND', `${service} has no rollout`)
      const transition = commandRollout(current, command, actor, this.clock())
      // Already in effect: nothing to write, the rollout as it is.
      if (!transition) {
        state = current
        return []
      }
      const drafted = this.rolloutChanges(transition, actor)
      state = drafted.state
      return drafted.changes
    })
    return state as RolloutState
  }

  /**
   * Writes a rollout's transition: its weights (through the same journal, audited with the
   * rollout as actor) and its new state in one commit. A state that waits for routers
   * waits for the revision of these very weights. With a shared store, `transition` is
   * made again from the state as committed when another replica wrote first.
   */
  async applyRollout(transition: Transition, actor = 'rollout', expected?: RolloutState): Promise<RolloutState | undefined> {
    let state: RolloutState | undefined
    await this.write(() => {
      // Judged on a state another replica has since changed: that replica's word stands.
      if (expected && !sameRollout(this.rollouts.get(transition.state.service), expected)) {
        state = undefined
        return []
      }
      const drafted = this.rolloutChanges(transition, actor)
      state = drafted.state
      return drafted.changes
    })
    return state
  }

  private rolloutChanges(transition: Transition, actor: string): { state: RolloutState; changes: RegistryChange[] } {
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
    return { state, changes }
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
   * Self-preservation is bounded: once it has held for `selfPreservationMaxMs`, the
   * instances still expired are taken to be gone and evicted (a new baseline). With a
   * shared store only the leader replica decides, and its evictions are fenced by
   * that role, so no instance is evicted twice or on two views.
   */
  async sweep(): Promise<SweepResult> {
    if (this.shared && !this.shared.isLeader()) {
      this.preservingSince = undefined
      return { expired: 0, evicted: [], selfPreservation: false, skipped: true }
    }
    const now = this.clock()
    const expired = this.leases.expired(now, this.leaseSeconds * 1000)
    const total = (this.shared ? this.view : this.model).instanceCount()
    let result: SweepResult
    const tooMany = expired.length >= this.minExpired && expired.length > this.threshold * total
    const rebaselined = tooMany && this.preservingSince !== undefined && now - this.preservingSince >= this.preservationMaxMs
    if (tooMany && !rebaselined) {
      this.preservingSince ??= now
      this.keptExpired = expired.length
      result = { expired: expired.length, evicted: [], selfPreservation: true }
    } else {
      this.preservingSince = undefined
      this.keptExpired = 0
      const evicted: { service: string; id: string }[] = []
      // In slices: a shared store commits a bounded number of changes per transaction.
      for (let start = 0; start < expired.length; start += EVICTIONS_PER_WRITE) {
        const slice = expired.slice(start, start + EVICTIONS_PER_WRITE)
        let drafted: { service: string; id: string }[] = []
        await this.write(() => {
          // Drafted again after a conflict: an instance that re-registered or left meanwhile stays out of it.
          const at = this.clock()
          drafted = slice.filter(({ service, id }) => this.model.findInstance(service, id) !== undefined && this.leases.isExpired(service, id, at, this.leaseSeconds * 1000))
          for (const { service, id } of drafted) this.leases.forget(service, id)
          return drafted.map(({ service, id }) => ({ type: 'instance-removed', revision: 0, at, service, id, reason: 'evicted' }) as const)
        }, true)
        evicted.push(...drafted)
      }
      result = { expired: expired.length, evicted, selfPreservation: false, ...(rebaselined ? { rebaselined: true } : {}) }
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
    if (this.shared) return { snapshot: this.view.snapshot(), history: Object.fromEntries(this.history), rollouts: Object.fromEntries(this.durableRollouts) }
    return { snapshot: this.model.snapshot(), history: Object.fromEntries(this.history), rollouts: Object.fromEntries(this.rollouts) }
  }

  /**
   * Whether `revision` belongs to this registry's history although this replica has not
   * followed it yet (a shared store is there already). A single registry knows no more
   * than it has published.
   */
  async knowsRevision(revision: number): Promise<boolean> {
    if (!this.shared) return revision <= this.view.revision
    try {
      return revision <= (await this.shared.headRevision())
    } catch {
      return false
    }
  }

  async close(): Promise<void> {
    await this.durable.catch(() => {})
    await this.store.close()
  }

  // ---- internals ----

  /** Runs `draft` against the working state and commits what it returns; resolves with the revision reached. */
  private write(draft: () => RegistryChange[], asLeader = false): Promise<number> {
    if (!this.shared) {
      try {
        const changes = draft()
        return changes.length === 0 ? this.waitDurable().then(() => this.model.revision) : this.commit(changes)
      } catch (error) {
        return Promise.reject(error as Error)
      }
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ draft, asLeader, resolve, reject })
      void this.pump()
    })
  }

  private async commit(changes: RegistryChange[]): Promise<number> {
    if (this.failure) throw this.failure
    const appended: Promise<void>[] = []
    const store = this.store as Exclude<AnyRegistryStore, SharedRegistryStore>
    for (const draft of changes) {
      const change = { ...draft, revision: this.model.revision + 1 } as RegistryChange
      this.applyAndRecord(change)
      appended.push(
        store.append(change).then(() => {
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

  /** Shared store: commits queued writes in batches, one transaction at a time, each validated against the newest state. */
  private async pump(): Promise<void> {
    if (this.pumping) return
    this.pumping = true
    try {
      while (this.pending.length > 0) {
        const first = this.pending[0] as PendingWrite
        let count = 1
        while (count < this.pending.length && count < MAX_BATCH && (this.pending[count] as PendingWrite).asLeader === first.asLeader) count++
        const batch = this.pending.splice(0, count)
        try {
          await this.commitShared(batch)
        } catch (error) {
          // (settling a write twice is harmless: the first outcome stands)
          if (this.tentative.length > 0) this.settleTentative(false)
          this.modelAhead = true
          for (const write of batch) write.reject(error)
        }
      }
    } finally {
      this.pumping = false
    }
  }

  private async commitShared(batch: PendingWrite[]): Promise<void> {
    const store = this.shared as SharedRegistryStore
    let refreshed = false
    for (;;) {
      if (this.modelAhead) this.resetModel()
      const base = this.model.revision
      const changes: RegistryChange[] = []
      const drafted: { write: PendingWrite; revision: number }[] = []
      const refused: { write: PendingWrite; error: unknown }[] = []
      for (const write of batch) {
        try {
          for (const draft of write.draft()) {
            const change = { ...draft, revision: this.model.revision + 1 } as RegistryChange
            this.tentative.push(this.model.applyUndoable(change))
            if (change.type === 'rollout-changed') {
              const previous = this.rollouts.get(change.service)
              this.rollouts.set(change.service, change.rollout)
              this.tentative.push(() => (previous ? this.rollouts.set(change.service, previous) : this.rollouts.delete(change.service)))
            }
            changes.push(change)
          }
          drafted.push({ write, revision: this.model.revision })
        } catch (error) {
          refused.push({ write, error })
        }
      }
      // A refusal on state this replica has not caught up with (the instance was just
      // registered through another replica) would be wrong: refuse only on the newest state.
      if (refused.length > 0 && !refreshed) {
        refreshed = true
        let head: number
        try {
          head = await store.headRevision()
        } catch (error) {
          this.settleTentative(false)
          const failure = new SwitchyardError('STORE_UNAVAILABLE', 'the registry store cannot be read now: retry', { cause: error })
          for (const write of batch) write.reject(failure)
          return
        }
        if (head > base) {
          this.settleTentative(false)
          await this.catchUp(head)
          continue
        }
      }
      for (const { write, error } of refused) write.reject(error)
      if (changes.length === 0) {
        for (const { write } of drafted) write.resolve(this.view.revision)
        return
      }
      let outcome
      try {
        outcome = await store.commit(changes, base, { asLeader: batch[0]?.asLeader ?? false })
      } catch (error) {
        // If it did land after all, it arrives through the follow path like any change.
        this.settleTentative(false)
        const failure = new SwitchyardError('STORE_UNAVAILABLE', 'the registry store cannot take the change now; it may or may not have been applied: read and retry', {
          cause: error
        })
        for (const { write } of drafted) write.reject(failure)
        return
      }
      if (outcome.result === 'committed') {
        // Acknowledged once this replica has followed its own change: a read right after sees it.
        await this.catchUp(this.model.revision)
        this.settleTentative(true)
        for (const { write, revision } of drafted) write.resolve(revision)
        return
      }
      this.settleTentative(false)
      await this.catchUp(outcome.head)
      if (outcome.result === 'fenced') {
        const fenced = new SwitchyardError('STORE_UNAVAILABLE', 'this replica is no longer the leader; another replica decides')
        for (const { write } of drafted) write.reject(fenced)
        return
      }
      // Another replica wrote first: draft the same writes again on its state.
      batch = drafted.map(({ write }) => write)
    }
  }

  /**
   * Ends a batch's drafts: kept (the store took them) or undone (it did not), then the
   * changes followed meanwhile are applied to the working model, which then equals the
   * followed state again.
   */
  private settleTentative(kept: boolean): void {
    if (!kept) for (const undo of this.tentative.reverse()) undo()
    this.tentative = []
    const followed = this.deferred
    this.deferred = []
    for (const change of followed) {
      if (change.revision <= this.model.revision) continue
      if (change.revision !== this.model.revision + 1) {
        this.modelAhead = true
        return
      }
      this.model.apply(change)
      if (change.type === 'rollout-changed') this.rollouts.set(change.service, change.rollout)
    }
  }

  /** Shared store: waits until this replica has followed the store up to `revision`. */
  private catchUp(revision: number, timeoutMs = 10_000): Promise<void> {
    if (this.view.revision >= revision) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const waiter = {
        revision,
        resolve: () => {
          clearTimeout(timer)
          resolve()
        }
      }
      const timer = setTimeout(() => {
        this.viewWaiters.splice(this.viewWaiters.indexOf(waiter), 1)
        reject(new SwitchyardError('STORE_UNAVAILABLE', `this replica has not received revision ${revision} from the store within ${timeoutMs} ms`))
      }, timeoutMs)
      this.viewWaiters.push(waiter)
    })
  }

  /** The working model drafted past what the store took: start again from what it holds. */
  private resetModel(): void {
    this.tentative = []
    this.deferred = []
    this.model = RegistryModel.fromSnapshot(this.view.snapshot())
    this.rollouts.clear()
    for (const [service, rollout] of this.durableRollouts) this.rollouts.set(service, rollout)
    this.modelAhead = false
  }

  /** Shared store: a committed change, from this replica or another, in revision order. */
  private followChange(change: RegistryChange): void {
    this.view.apply(change)
    this.recordHistory(change)
    const now = this.clock()
    if (change.type === 'rollout-changed') this.durableRollouts.set(change.service, change.rollout)
    else if (change.type === 'instance-registered') this.leases.renew(change.instance.service, change.instance.id, now)
    else if (change.type === 'instance-removed') this.leases.forget(change.service, change.id)
    if (this.tentative.length > 0) {
      this.deferred.push(change)
    } else if (!this.modelAhead && this.model.revision === change.revision - 1) {
      this.model.apply(change)
      if (change.type === 'rollout-changed') this.rollouts.set(change.service, change.rollout)
    } else if (this.model.revision < change.revision) {
      this.modelAhead = true
    }
    this.hub.publish(change)
    this.releaseWaiters()
  }

  /** Shared store: the store could not deliver every change this replica missed; start over from its state. */
  private followReset(loaded: LoadedState): void {
    const model = loaded.base ? RegistryModel.fromSnapshot(loaded.base.snapshot) : new RegistryModel()
    for (const change of loaded.changes) model.apply(change)
    this.view = model
    this.history.clear()
    for (const [service, entries] of Object.entries(loaded.base?.history ?? {})) this.history.set(service, [...entries])
    this.durableRollouts.clear()
    for (const [service, rollout] of Object.entries(loaded.base?.rollouts ?? {})) this.durableRollouts.set(service, rollout)
    for (const change of loaded.changes) {
      this.recordHistory(change)
      if (change.type === 'rollout-changed') this.durableRollouts.set(change.service, change.rollout)
    }
    const now = this.clock()
    const known = new Set<string>()
    for (const service of this.view.services.values()) {
      for (const id of service.instances.keys()) {
        known.add(`${service.name}\u0000${id}`)
        if (this.leases.lastRenewed(service.name, id) === undefined) this.leases.renew(service.name, id, now)
      }
    }
    this.leases.retainOnly(known)
    this.modelAhead = true
    if (!this.pumping) this.resetModel()
    this.hub.reset(this.view.revision, [...(loaded.recent ?? []), ...loaded.changes])
    this.releaseWaiters()
  }

  private releaseWaiters(): void {
    for (let i = this.viewWaiters.length - 1; i >= 0; i--) {
      const waiter = this.viewWaiters[i] as { revision: number; resolve: () => void }
      if (waiter.revision <= this.view.revision) {
        this.viewWaiters.splice(i, 1)
        waiter.resolve()
      }
    }
  }

  private renewLocal(service: string, id: string, now: number): void {
    this.leases.renew(service, id, now)
    this.shared?.shareHeartbeat(service, id)
  }

  /** heartbeats other replicas received: renewed on this replica's clock (replicas' clocks may differ) */
  private renewRemote(instances: readonly { service: string; id: string }[]): void {
    const now = this.clock()
    for (const { service, id } of instances) if (this.view.findInstance(service, id)) this.leases.renew(service, id, now)
  }

  private applyAndRecord(change: RegistryChange): void {
    this.model.apply(change)
    this.recordHistory(change)
    if (change.type === 'rollout-changed') this.rollouts.set(change.service, change.rollout)
  }

  private recordHistory(change: RegistryChange): void {
    if (change.type !== 'weights-changed') return
    const entries = this.history.get(change.service) ?? []
    entries.push({ revision: change.revision, at: change.at, actor: change.actor, from: change.previous, to: change.weights })
    if (entries.length > this.historyLimit) entries.splice(0, entries.length - this.historyLimit)
    this.history.set(change.service, entries)
  }

  private requireService(name: string, from: RegistryModel = this.model) {
    const service = from.services.get(name)
    if (!service) throw new SwitchyardError('SERVICE_NOT_FOUND', `service ${JSON.stringify(name)} is not known to the registry`)
    return service
  }

  private requireInstance(service: string, id: string, from: RegistryModel = this.model): InstanceRecord {
    const instance = from.findInstance(service, id)
    if (!instance) {
      throw new SwitchyardError(
        'INSTANCE_NOT_FOUND',
        `instance ${JSON.stringify(id)} of service ${JSON.stringify(service)} is not registered (it may have been evicted); register it again`
      )
    }
    return instance
  }
}

function sameRollout(a: RolloutState | undefined, b: RolloutState): boolean {
  return a === b || (a !== undefined && JSON.stringify(a) === JSON.stringify(b))
}

function sameRecord(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key])
}
