/**
 * What a router counts per service version, as plain numbers: the shared unit of the
 * signal path (router -> registry -> rollouts, CLI, console). Routers report these
 * counters as running totals since they started; the registry turns them into deltas.
 */

/**
 * Upper bounds (ms) of the latency histogram's buckets; one more bucket catches the rest.
 * Roughly 1.5-2x apart from 0.5 ms to 10 s: a p99 read from it is within one bucket's
 * width, enough to compare a canary with its baseline (both use the same buckets).
 */
export const LATENCY_BOUNDS_MS: readonly number[] = [0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000]
export const LATENCY_BUCKETS = LATENCY_BOUNDS_MS.length + 1

/** Status classes of HTTP answers: index 0 is 1xx, 4 is 5xx. */
export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const
export type StatusClass = (typeof STATUS_CLASSES)[number]

export interface VersionCounters {
  /** HTTP answers by status class (1xx..5xx), index = class - 1 */
  statusClasses: number[]
  /** HTTP latency histogram, counts per bucket of LATENCY_BOUNDS_MS (+ overflow) */
  latency: number[]
  /** messages the message router published to this version's queue */
  messagesRouted: number
  /** messages this version's workers rejected (dead-lettered from the version queue) */
  messagesRejected: number
}

export function emptyCounters(): VersionCounters {
  return { statusClasses: [0, 0, 0, 0, 0], latency: new Array<number>(LATENCY_BUCKETS).fill(0), messagesRouted: 0, messagesRejected: 0 }
}

/** Index of the bucket a latency falls in (binary search over 24 bounds: 5 comparisons). */
export function latencyBucket(ms: number): number {
  let low = 0
  let high = LATENCY_BOUNDS_MS.length
  while (low < high) {
    const middle = (low + high) >>> 1
    if (ms <= (LATENCY_BOUNDS_MS[middle] as number)) high = middle
    else low = middle + 1
  }
  return low
}

/** Index into statusClasses for an HTTP status, or -1 outside 100..599. */
export function statusClassIndex(status: number): number {
  return status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : -1
}

export function requestsOf(counters: VersionCounters): number {
  let sum = 0
  for (const count of counters.statusClasses) sum += count
  return sum
}

/** a + b, element-wise, into a new value */
export function addCounters(a: VersionCounters, b: VersionCounters): VersionCounters {
  return {
    statusClasses: a.statusClasses.map((value, i) => value + (b.statusClasses[i] ?? 0)),
    latency: a.latency.map((value, i) => value + (b.latency[i] ?? 0)),
    messagesRouted: a.messagesRouted + b.messagesRouted,
    messagesRejected: a.messagesRejected + b.messagesRejected
  }
}

/**
 * What happened between two readings of running totals. A total that went down means
 * the counters restarted in between, so the later reading is all that is known.
 */
export function counterDelta(later: VersionCounters, earlier: VersionCounters | undefined): VersionCounters {
  if (earlier === undefined || wentDown(later, earlier)) return cloneCounters(later)
  return {
    statusClasses: later.statusClasses.map((value, i) => value - (earlier.statusClasses[i] ?? 0)),
    latency: later.latency.map((value, i) => value - (earlier.latency[i] ?? 0)),
    messagesRouted: later.messagesRouted - earlier.messagesRouted,
    messagesRejected: later.messagesRejected - earlier.messagesRejected
  }
}

export function isZero(counters: VersionCounters): boolean {
  return counters.messagesRouted === 0 && counters.messagesRejected === 0 && requestsOf(counters) === 0
}

export function cloneCounters(counters: VersionCounters): VersionCounters {
  return { statusClasses: [...counters.statusClasses], latency: [...counters.latency], messagesRouted: counters.messagesRouted, messagesRejected: counters.messagesRejected }
}

function wentDown(later: VersionCounters, earlier: VersionCounters): boolean {
  if (later.messagesRouted < earlier.messagesRouted || later.messagesRejected < earlier.messagesRejected) return true
  for (let i = 0; i < later.statusClasses.length; i++) if ((later.statusClasses[i] as number) < (earlier.statusClasses[i] ?? 0)) return true
  for (let i = 0; i < later.latency.length; i++) if ((later.latency[i] as number) < (earlier.latency[i] ?? 0)) return true
  return false
}

/**
 * The q-quantile (0 < q <= 1) of a latency histogram in ms, interpolated linearly inside
 * its bucket as Prometheus' histogram_quantile does; the overflow bucket answers its lower
 * bound. Undefined without observations.
 */
export function latencyQuantile(latency: readonly number[], q: number): number | undefined {
  let total = 0
  for (const count of latency) total += count
  if (total === 0) return undefined
  const rank = q * total
  let seen = 0
  for (let i = 0; i < latency.length; i++) {
    const count = latency[i] as number
    if (count > 0 && seen + count >= rank) {
      const upper = LATENCY_BOUNDS_MS[i]
      const lower = i === 0 ? 0 : (LATENCY_BOUNDS_MS[i - 1] as number)
      if (upper === undefined) return lower
      return lower + (upper - lower) * ((rank - seen) / count)
    }
    seen += count
  }
  // Only a q above 1 (outside the contract) ranks past every observation.
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]
}
