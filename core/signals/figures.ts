import { latencyQuantile, requestsOf, type VersionCounters } from './counters.js'

/** One version's behaviour over a window, as the signals endpoint, rollouts and the CLI show it. */
export interface VersionFigures {
  /** HTTP answers in the window */
  requests: number
  rps: number
  /** 5xx answers (the router's own 502/503/504 for this version included) */
  errors: number
  /** errors / requests in percent; 0 without requests */
  errorRatePercent: number
  /** ms, undefined without requests */
  p50Ms: number | undefined
  p99Ms: number | undefined
  statusClasses: { '1xx': number; '2xx': number; '3xx': number; '4xx': number; '5xx': number }
  messagesRouted: number
  /** messages per second routed to this version */
  mps: number
  messagesRejected: number
  /** rejected / routed in percent (capped at 100); 0 without messages */
  rejectRatePercent: number
  /** the histogram behind p50/p99 (LATENCY_BOUNDS_MS buckets), for charts and tests */
  latency: number[]
}

export interface ServiceSignals {
  service: string
  /** the window the figures cover, ms */
  windowMs: number
  /** where the figures come from: "routers" or "prometheus" */
  source: string
  versions: Record<string, VersionFigures>
}

const round = (value: number, digits: number): number => {
  const factor = 10 ** digits
  return Math.round(value * factor) / factor
}

export function figuresOf(counters: VersionCounters, windowMs: number): VersionFigures {
  const requests = requestsOf(counters)
  const errors = counters.statusClasses[4] as number
  const seconds = Math.max(windowMs, 1) / 1000
  const p50 = latencyQuantile(counters.latency, 0.5)
  const p99 = latencyQuantile(counters.latency, 0.99)
  const [c1, c2, c3, c4, c5] = counters.statusClasses as [number, number, number, number, number]
  return {
    requests,
    rps: round(requests / seconds, 3),
    errors,
    errorRatePercent: requests === 0 ? 0 : round((errors / requests) * 100, 4),
    p50Ms: p50 === undefined ? undefined : round(p50, 3),
    p99Ms: p99 === undefined ? undefined : round(p99, 3),
    statusClasses: { '1xx': c1, '2xx': c2, '3xx': c3, '4xx': c4, '5xx': c5 },
    messagesRouted: counters.messagesRouted,
    mps: round(counters.messagesRouted / seconds, 3),
    messagesRejected: counters.messagesRejected,
    rejectRatePercent: counters.messagesRouted === 0 ? 0 : round(Math.min(100, (counters.messagesRejected / counters.messagesRouted) * 100), 4),
    latency: [...counters.latency]
  }
}
