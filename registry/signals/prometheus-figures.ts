import type { VersionFigures } from '../../core/signals/figures.js'

/** What the signal templates yielded for one version; a count nobody asked for (or without series) is 0. */
export interface SignalValues {
  requests?: number | undefined
  errors?: number | undefined
  p50Ms?: number | undefined
  p99Ms?: number | undefined
  messagesRouted?: number | undefined
  messagesRejected?: number | undefined
}

const round = (value: number, digits: number): number => {
  const factor = 10 ** digits
  return Math.round(value * factor) / factor
}

const percentOf = (part: number, whole: number) => (whole === 0 ? 0 : round(Math.min(100, (part / whole) * 100), 4))

/**
 * One version's figures from Prometheus, in the shape the routers' reports give. Prometheus
 * answers errors and requests, not every status class: statusClasses carries the 5xx only.
 * Its histogram buckets are not switchyard's LATENCY_BOUNDS_MS, so `latency` stays empty.
 */
export function prometheusFigures(values: SignalValues, windowMs: number): VersionFigures {
  const requests = round(Math.max(0, values.requests ?? 0), 3)
  const errors = round(Math.max(0, values.errors ?? 0), 3)
  const messagesRouted = round(Math.max(0, values.messagesRouted ?? 0), 3)
  const messagesRejected = round(Math.max(0, values.messagesRejected ?? 0), 3)
  const seconds = Math.max(windowMs, 1) / 1000
  const withTraffic = (ms: number | undefined) => (requests === 0 || ms === undefined ? undefined : round(ms, 3))
  return {
    requests,
    rps: round(requests / seconds, 3),
    errors,
    errorRatePercent: percentOf(errors, requests),
    p50Ms: withTraffic(values.p50Ms),
    p99Ms: withTraffic(values.p99Ms),
    statusClasses: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': errors },
    messagesRouted,
    mps: round(messagesRouted / seconds, 3),
    messagesRejected,
    rejectRatePercent: percentOf(messagesRejected, messagesRouted),
    latency: []
  }
}
