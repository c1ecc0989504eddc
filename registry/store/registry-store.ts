import type { RegistryChange, RegistrySnapshot } from '../../core/registry-events.js'
import type { RolloutState } from '../../core/rollout/rollout-machine.js'

export interface WeightHistoryEntry {
  readonly revision: number
  readonly at: number
  readonly actor: string
  readonly from: Readonly<Record<string, number>>
  readonly to: Readonly<Record<string, number>>
}

/** Everything the registry must not forget, as one document (the snapshot plus audit log). */
export interface PersistedState {
  readonly snapshot: RegistrySnapshot
  readonly history: Readonly<Record<string, readonly WeightHistoryEntry[]>>
  /** each service's latest rollout (active or finished); absent in stores written before rollouts */
  readonly rollouts?: Readonly<Record<string, RolloutState>>
}

export interface LoadedState {
  /** the last compacted state, if any */
  readonly base: PersistedState | undefined
  /** changes journaled after `base`, in revision order */
  readonly changes: readonly RegistryChange[]
  /**
   * changes at or below `base`'s revision that the store still keeps, in revision order,
   * ending at `base`: they let watchers that reconnect after a restart (or to another
   * replica) resume with `since` instead of a snapshot
   */
  readonly recent?: readonly RegistryChange[]
}

/**
 * Where the registry's truth lives. The file store is the embedded default; a
 * distributed store (etcd, Redis) for several registry replicas implements the same
 * contract: `append` resolves only once the change is durable, appends resolve in the
 * order they were made, and a failed append means the store is unusable.
 */
export interface RegistryStore {
  open(): Promise<LoadedState>
  append(change: RegistryChange): Promise<void>
  /** gives the store a way to read the current state when it wants to compact */
  setCompactionSource(source: () => PersistedState): void
  close(): Promise<void>
}

/** What a shared store tells the one replica that delivers changes to a registry. */
export interface ChangeFollower {
  /** a change committed by any replica (this one included): in revision order, each once, no gaps */
  change(change: RegistryChange): void
  /** the store can no longer deliver every change this replica missed (its history was trimmed): start over from this state */
  reset(loaded: LoadedState): void
}

export type CommitOutcome =
  | { readonly result: 'committed' }
  /** another replica wrote first: the store is at `head`; catch up to it and validate again */
  | { readonly result: 'conflict'; readonly head: number }
  /** the write needed this replica to be the leader, and it no longer is */
  | { readonly result: 'fenced'; readonly head: number }

/**
 * A store several registry replicas share (etcd). Unlike `RegistryStore`, nobody holds
 * the whole truth in memory: a replica drafts changes against the state it has followed,
 * and `commit` writes them only if no other replica wrote since (compare-and-swap on the
 * revision), so two replicas can never both win. Every replica, the writer included,
 * learns of committed changes only through `follow`: one path from store to memory.
 */
export interface SharedRegistryStore {
  readonly shared: true
  open(): Promise<LoadedState>
  /** starts delivering changes after the opened state */
  follow(follower: ChangeFollower): void
  /**
   * Writes `changes` (revisions `expectedRevision + 1` onwards) iff the store is still at
   * `expectedRevision` (and, with `asLeader`, this replica is still the leader).
   * Resolves once the changes are durable in the store (for etcd: a quorum has them).
   * Rejects when the store cannot be reached: the changes may or may not have landed.
   */
  commit(changes: readonly RegistryChange[], expectedRevision: number, options?: { asLeader?: boolean }): Promise<CommitOutcome>
  /** the store's latest revision, read through to the store (linearizable) */
  headRevision(): Promise<number>
  /** false while this replica cannot follow the store (its watch broke and listing again fails): its reads may be stale */
  following(): boolean
  /** whether this replica makes the cluster's background decisions now: lease expiries, rollout steps (one replica of all does) */
  isLeader(): boolean
  /** passes a heartbeat received here to the other replicas */
  shareHeartbeat(service: string, id: string): void
  /** heartbeats received by other replicas */
  onRemoteHeartbeats(listener: (instances: readonly { service: string; id: string }[]) => void): void
  /** passes a router's report received here to the other replicas (each sees every router) */
  shareRouterReport(routerId: string, reporter: string, report: unknown): void
  onRemoteRouterReport(listener: (reporter: string, report: unknown) => void): void
  setCompactionSource(source: () => PersistedState): void
  close(): Promise<void>
}

export type AnyRegistryStore = RegistryStore | SharedRegistryStore

export function isShared(store: AnyRegistryStore): store is SharedRegistryStore {
  return 'shared' in store && store.shared
}

/** A store file that cannot be trusted: start-up stops instead of resetting it. */
export class CorruptStoreError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'CorruptStoreError'
  }
}
