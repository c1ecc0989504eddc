/** What the load worker is asked to do, and what it answers. */
export interface LoadSpec {
  url: string
  connections: number
  durationSeconds: number
  /** open loop: requests per second, evenly spaced, over all connections; absent: closed loop (autocannon) */
  rate?: number
  headers?: Record<string, string>
}

export interface LatencySummary {
  p50: number
  p90: number
  p99: number
  p999: number
  mean: number
  max: number
  samples: number
}

export interface LoadSummary {
  url: string
  connections: number
  rate: number | null
  /** wall time of the run, connection set-up included */
  durationSeconds: number
  /** responses of any status */
  requests: number
  /** 2xx responses */
  ok: number
  /** 2xx responses per second */
  rps: number
  non2xx: number
  /** connection errors, timeouts included */
  errors: number
  timeouts: number
  /** latency of 2xx responses in milliseconds */
  latencyMs: LatencySummary
  samplesDropped: number
}

/** Exact percentiles (nearest rank) of latencies in ms. Sorts `samples` in place. */
export function summarizeLatencies(samples: Float64Array): LatencySummary {
  const count = samples.length
  if (count === 0) return { p50: NaN, p90: NaN, p99: NaN, p999: NaN, mean: NaN, max: NaN, samples: 0 }
  samples.sort()
  let sum = 0
  for (let i = 0; i < count; i++) sum += samples[i] as number
  const at = (fraction: number) => samples[Math.min(count - 1, Math.max(0, Math.ceil(fraction * count) - 1))] as number
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999), mean: sum / count, max: samples[count - 1] as number, samples: count }
}
