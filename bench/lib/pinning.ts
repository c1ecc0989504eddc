import { execFileSync } from 'node:child_process'
import { availableParallelism } from 'node:os'

/**
 * Where each process of a load test runs. With taskset and at least two cores the proxy
 * under test gets a core of its own and everything else (load generator, upstreams,
 * registry) shares the rest, so the proxy's CPU and the load generator's never compete.
 */
export interface Pinning {
  enabled: boolean
  /** CPU list for the proxy under test (taskset -c) */
  proxy: string | undefined
  /** CPU list for the load generator, the upstreams and the registry */
  others: string | undefined
  description: string
}

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export function choosePinning(disabled = false): Pinning {
  const cores = availableParallelism()
  if (disabled) return { enabled: false, proxy: undefined, others: undefined, description: 'pinning off (--no-pin): processes float over all cores' }
  if (cores < 2) return { enabled: false, proxy: undefined, others: undefined, description: `pinning off: ${cores} core` }
  if (!hasTaskset()) return { enabled: false, proxy: undefined, others: undefined, description: 'pinning off: taskset not found (install util-linux)' }
  const others = cores === 2 ? '1' : `1-${cores - 1}`
  return {
    enabled: true,
    proxy: '0',
    others,
    description: `pinning: proxy under test on core 0; load generator, upstreams and registry on core${cores === 2 ? '' : 's'} ${others} (taskset)`
  }
}
