/** What instance choice needs to know of an endpoint. */
export interface BalancedEndpoint {
  /** requests sent and not yet answered */
  inflight: number
  /** ms timestamp until which outlier detection keeps it out */
  ejectedUntil: number
}

/**
 * Power of two choices on in-flight requests: look at two random endpoints and take the
 * less busy one. Ejected endpoints and `exclude` (the one a retry just failed on) are
 * skipped while there is anything else; returns undefined only when nothing is left.
 */
export function pickEndpoint<E extends BalancedEndpoint>(endpoints: readonly E[], now: number, random: () => number, exclude?: E): E | undefined {
  const count = endpoints.length
  if (count === 0) return undefined
  if (count === 1) {
    const only = endpoints[0] as E
    return only === exclude ? undefined : only
  }
  const first = Math.floor(random() * count)
  let second = Math.floor(random() * (count - 1))
  if (second >= first) second++
  const a = endpoints[first] as E
  const b = endpoints[second] as E
  const aUsable = a !== exclude && a.ejectedUntil <= now
  const bUsable = b !== exclude && b.ejectedUntil <= now
  if (aUsable && bUsable) return a.inflight <= b.inflight ? a : b
  if (aUsable) return a
  if (bUsable) return b
  // Both unusable: scan from a random start for anything healthy, then for anything at all.
  let fallback: E | undefined
  for (let step = 0; step < count; step++) {
    const candidate = endpoints[(first + step) % count] as E
    if (candidate === exclude) continue
    if (candidate.ejectedUntil <= now) return candidate
    fallback ??= candidate
  }
  return fallback
}
