import { availableParallelism } from 'node:os'

/** How `--workers` is written: a count, or `auto` for one worker per core. */
export const WORKERS_PATTERN = '^(auto|[1-9][0-9]{0,2})$'

/** The number of proxy processes `--workers` asks for (`auto`: the cores this process may use; not given: 1). */
export function workerCount(setting: string | undefined, cores: () => number = availableParallelism): number {
  if (setting === undefined) return 1
  return setting === 'auto' ? Math.max(1, cores()) : Number(setting)
}
