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

/** A store file that cannot be trusted: start-up stops instead of resetting it. */
export class CorruptStoreError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'CorruptStoreError'
  }
}
