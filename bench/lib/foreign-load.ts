import { availableParallelism } from 'node:os'
import { performance } from 'node:perf_hooks'
import { machineBusySeconds, selfAndReapedChildrenCpuSeconds, treeCpuSeconds } from './proc-stats.js'

/**
 * How much of the machine other work used while a round ran: machine-wide busy CPU
 * minus the CPU of the benchmark's own processes (this one, its finished load
 * generators, and the long-running children passed in). On a shared machine this is
 * the noise next to each figure.
 */
export interface ForeignLoadProbe {
  /** share of all cores used by other processes during the round, 0..1 */
  finish(): number
}

export function probeForeignLoad(pids: readonly number[]): ForeignLoadProbe {
  const ours = () => selfAndReapedChildrenCpuSeconds() + pids.reduce((sum, pid) => sum + treeCpuSeconds(pid), 0)
  const busyBefore = machineBusySeconds()
  const oursBefore = ours()
  const started = performance.now()
  return {
    finish() {
      const elapsed = (performance.now() - started) / 1000
      const foreign = machineBusySeconds() - busyBefore - (ours() - oursBefore)
      return elapsed > 0 ? Math.max(0, foreign / (elapsed * availableParallelism())) : NaN
    }
  }
}
