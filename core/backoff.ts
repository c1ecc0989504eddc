/** Exponential backoff bounds: the first ceiling and the largest one. */
export interface BackoffPolicy {
  initialMs: number
  maxMs: number
}

/**
 * "Full jitter": a delay drawn uniformly from [0, min(maxMs, initialMs * 2^attempt)), so
 * clients that failed together do not come back together. `random` returns [0, 1).
 */
export function fullJitterDelay(attempt: number, policy: BackoffPolicy, random: () => number): number {
  // 2^1024 is Infinity; min() then picks maxMs, so no cap on the exponent is needed.
  const ceiling = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, attempt))
  return Math.floor(random() * ceiling)
}

/**
 * The wait before the next try after `failures` (>= 1) tries in a row failed, going round
 * `endpoints` endpoints in turn: none while this round still has an endpoint not tried
 * (another replica is likely fine), then full jitter growing with each completed round.
 * With one endpoint every failure completes a round: plain exponential backoff.
 */
export function failoverDelay(failures: number, endpoints: number, policy: BackoffPolicy, random: () => number): number {
  if (failures % endpoints !== 0) return 0
  return fullJitterDelay(failures / endpoints - 1, policy, random)
}
