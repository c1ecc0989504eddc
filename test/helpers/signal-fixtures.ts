import { LATENCY_BUCKETS, emptyCounters, latencyBucket, type VersionCounters } from '../../core/signals/counters.js'
import { figuresOf, type VersionFigures } from '../../core/signals/figures.js'

export interface Traffic {
  /** 2xx answers */
  ok?: number
  /** 5xx answers */
  errors?: number
  /** every answer's latency (one histogram bucket); 1 ms unless told */
  latencyMs?: number
  routed?: number
  rejected?: number
}

/** Counters for a simple traffic shape: 2xx and 5xx answers all of one latency, plus messages. */
export function countersOf(traffic: Traffic): VersionCounters {
  const counters = emptyCounters()
  const ok = traffic.ok ?? 0
  const errors = traffic.errors ?? 0
  counters.statusClasses[1] = ok
  counters.statusClasses[4] = errors
  counters.latency[latencyBucket(traffic.latencyMs ?? 1)] = ok + errors
  counters.messagesRouted = traffic.routed ?? 0
  counters.messagesRejected = traffic.rejected ?? 0
  return counters
}

/** The figures of that traffic over a 60 s window. */
export function figuresFor(traffic: Traffic): VersionFigures {
  return figuresOf(countersOf(traffic), 60_000)
}

/** Counters from their four parts, the latency histogram given sparsely as bucket -> count. */
export function sparseCounters(statusClasses: number[], latency: Record<number, number> = {}, messagesRouted = 0, messagesRejected = 0): VersionCounters {
  const histogram = new Array<number>(LATENCY_BUCKETS).fill(0)
  for (const [bucket, count] of Object.entries(latency)) histogram[Number(bucket)] = count
  return { statusClasses, latency: histogram, messagesRouted, messagesRejected }
}
