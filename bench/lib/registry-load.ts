import { fileURLToPath } from 'node:url'
import type { RegistryLoadSummary, RegistryLoadTask } from './registry-load-worker.js'
import { TaskProcess } from './task-channel.js'

const workerPath = fileURLToPath(new URL('./registry-load-worker.js', import.meta.url))

/** The registry load generator process (registry-load-worker.ts): one task at a time, in the order asked. */
export class RegistryLoad extends TaskProcess<RegistryLoadTask, RegistryLoadSummary> {
  constructor(cpus?: string) {
    super('registry load generator', workerPath, cpus)
  }
}
