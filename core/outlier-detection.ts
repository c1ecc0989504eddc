export interface OutlierState {
  consecutiveFailures: number
  ejectedUntil: number
  /** times ejected; each ejection lasts base x 2^(times - 1) */
  ejections: number
  lastEjectionEnd: number
}

export interface OutlierSettings {
  consecutiveFailures: number
  baseEjectionMs: number
  maxEjectionMs: number
  /** never eject more than this share of a version's endpoints */
  maxEjectionPercent: number
}

export const defaultOutlierSettings: OutlierSettings = { consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 50 }

export function newOutlierState(): OutlierState {
  return { consecutiveFailures: 0, ejectedUntil: 0, ejections: 0, lastEjectionEnd: 0 }
}

/** A success resets the failure streak; a long healthy spell forgives one past ejection. */
export function recordSuccess(state: OutlierState, now: number, settings: OutlierSettings): void {
  state.consecutiveFailures = 0
  if (state.ejections > 0 && now - state.lastEjectionEnd > settings.baseEjectionMs * 2) {
    state.ejections--
    state.lastEjectionEnd = now
  }
}

/**
 * Passive health check (Envoy's consecutive-5xx outlier detection). Returns true when
 * this failure ejected the endpoint.
 */
export function recordFailure(state: OutlierState, siblings: readonly OutlierState[], now: number, settings: OutlierSettings): boolean {
  state.consecutiveFailures++
  if (state.consecutiveFailures < settings.consecutiveFailures || state.ejectedUntil > now) return false
  let ejected = 0
  for (const sibling of siblings) if (sibling.ejectedUntil > now) ejected++
  if (ejected + 1 > Math.floor((siblings.length * settings.maxEjectionPercent) / 100)) return false
  state.ejections++
  const duration = Math.min(settings.maxEjectionMs, settings.baseEjectionMs * 2 ** (state.ejections - 1))
  state.ejectedUntil = now + duration
  state.lastEjectionEnd = state.ejectedUntil
  state.consecutiveFailures = 0
  return true
}
