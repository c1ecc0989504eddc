import type { RegistryChange } from '../../core/registry-events.js'
import type { LoadedState, PersistedState, RegistryStore } from './registry-store.js'

/**
 * Keeps the journal in memory: for tests of the registry's logic and for throwaway
 * registries. A process restart forgets everything, so the CLI never uses it.
 */
export class MemoryStore implements RegistryStore {
  readonly changes: RegistryChange[] = []

  open(): Promise<LoadedState> {
    return Promise.resolve({ base: undefined, changes: [...this.changes] })
  }

  append(change: RegistryChange): Promise<void> {
    this.changes.push(change)
    return Promise.resolve()
  }

  setCompactionSource(_source: () => PersistedState): void {}

  async close(): Promise<void> {}
}
