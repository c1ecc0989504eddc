import { addCounters, cloneCounters } from '../../core/signals/counters.js'
import type { SignalCounters } from './messages.js'

/** a + b per service and version, into a new value */
export function addSignalCounters(a: SignalCounters, b: SignalCounters): SignalCounters {
  const out: SignalCounters = {}
  for (const side of [a, b]) {
    for (const [service, versions] of Object.entries(side)) {
      const entry = (out[service] ??= {})
      for (const [version, counters] of Object.entries(versions)) {
        const sum = entry[version]
        entry[version] = sum ? addCounters(sum, counters) : cloneCounters(counters)
      }
    }
  }
  return out
}

/** Requests a worker answered, over every service and version (its 1xx to 5xx). */
export function requestsIn(counters: SignalCounters): number {
  let total = 0
  for (const versions of Object.values(counters)) for (const version of Object.values(versions)) for (const count of version.statusClasses) total += count
  return total
}
