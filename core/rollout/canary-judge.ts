import type { VersionFigures } from '../signals/figures.js'
import { canaryWorse } from './proportion-comparison.js'
import type { RolloutAnalysis } from './rollout-spec.js'

export type VerdictResult = 'passed' | 'failed' | 'inconclusive'

/** The figures a verdict was made on, kept with it so every decision can be checked later. */
export interface JudgedFigures {
  requests: number
  errorRatePercent: number
  p99Ms: number | null
  messagesRouted: number
  rejectRatePercent: number
}

export interface Verdict {
  result: VerdictResult
  /** every rule that failed, or why there was nothing to judge, or "all checks passed" */
  reason: string
  canary: JudgedFigures
  baseline: JudgedFigures
}

function judged(figures: VersionFigures): JudgedFigures {
  return {
    requests: figures.requests,
    errorRatePercent: figures.errorRatePercent,
    p99Ms: figures.p99Ms ?? null,
    messagesRouted: figures.messagesRouted,
    rejectRatePercent: figures.rejectRatePercent
  }
}

const pct = (value: number): string => `${Number(value.toFixed(2))}%`

/**
 * Judges a canary against its baseline over the same window (LETS: latency, errors,
 * traffic, saturation as rejected messages). Each kind of traffic (HTTP requests, queue
 * messages) is judged only when the canary had at least minRequests of it; with neither,
 * the step is inconclusive, never passed. A kind fails on an absolute limit or when it is
 * significantly worse than the baseline (see proportion-comparison.ts).
 */
export function judgeCanary(canary: VersionFigures, baseline: VersionFigures, analysis: RolloutAnalysis): Verdict {
  const figures = { canary: judged(canary), baseline: judged(baseline) }
  const http = canary.requests >= analysis.minRequests
  const messages = canary.messagesRouted >= analysis.minRequests
  if (!http && !messages) {
    return {
      result: 'inconclusive',
      reason: `insufficient data: the canary had ${canary.requests} requests and ${canary.messagesRouted} messages, ${analysis.minRequests} needed`,
      ...figures
    }
  }
  const failures: string[] = []
  const tolerance = analysis.errorRateTolerancePercent / 100
  if (http) {
    if (canary.errorRatePercent > analysis.maxErrorRatePercent) {
      failures.push(`error rate ${pct(canary.errorRatePercent)} > ${pct(analysis.maxErrorRatePercent)} (${canary.errors} of ${canary.requests})`)
    } else if (baseline.requests > 0 && canaryWorse(canary.errors, canary.requests, baseline.errors, baseline.requests, tolerance).worse) {
      failures.push(
        `error rate ${pct(canary.errorRatePercent)} vs baseline ${pct(baseline.errorRatePercent)}: worse by more than ${analysis.errorRateTolerancePercent} pp at 99% confidence`
      )
    }
    const p99 = canary.p99Ms ?? 0
    if (p99 > analysis.maxP99Ms) failures.push(`p99 ${p99} ms > ${analysis.maxP99Ms} ms`)
    else if (baseline.requests >= analysis.minRequests && baseline.p99Ms !== undefined) {
      const floor = analysis.latencyRatioFloorMs
      const ratio = Math.max(p99, floor) / Math.max(baseline.p99Ms, floor)
      if (ratio > analysis.maxLatencyRatio) failures.push(`p99 ${p99} ms is ${Number(ratio.toFixed(2))}x the baseline's ${baseline.p99Ms} ms (limit ${analysis.maxLatencyRatio}x)`)
    }
  }
  if (messages) {
    const rejected = Math.min(canary.messagesRejected, canary.messagesRouted)
    if (canary.rejectRatePercent > analysis.maxRejectRatePercent) {
      failures.push(`reject rate ${pct(canary.rejectRatePercent)} > ${pct(analysis.maxRejectRatePercent)} (${rejected} of ${canary.messagesRouted} messages)`)
    } else if (
      baseline.messagesRouted > 0 &&
      canaryWorse(rejected, canary.messagesRouted, Math.min(baseline.messagesRejected, baseline.messagesRouted), baseline.messagesRouted, tolerance).worse
    ) {
      failures.push(
        `reject rate ${pct(canary.rejectRatePercent)} vs baseline ${pct(baseline.rejectRatePercent)}: worse by more than ${analysis.errorRateTolerancePercent} pp at 99% confidence`
      )
    }
  }
  if (failures.length > 0) return { result: 'failed', reason: failures.join('; '), ...figures }
  const judgedKinds = [http ? `${canary.requests} requests` : '', messages ? `${canary.messagesRouted} messages` : ''].filter(Boolean).join(' and ')
  return { result: 'passed', reason: `all checks passed on ${judgedKinds}`, ...figures }
}
