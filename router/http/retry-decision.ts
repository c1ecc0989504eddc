import type { UpstreamFailure } from './upstream-error.js'

/** Methods whose request may be sent twice with the effect of once (RFC 9110 9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])

/** What a retry decision needs to know of the exchange so far. */
export interface RetryFacts {
  method: string
  /** no byte of the request body was taken from the client yet (or there is none): it can be sent again whole */
  bodyReplayable: boolean
  /** retries made so far, and the route's limit */
  retries: number
  maxRetries: number
}

/**
 * A 5xx answer is tried on another instance only when it says the instance could not
 * take the request (502, 503), the method is idempotent, the body can be sent again,
 * the route allows another retry, and there is another instance to go to. (The retry
 * budget is asked after this.)
 */
export function retryAfterStatus(status: number, facts: RetryFacts, endpointCount: number): boolean {
  return (status === 502 || status === 503) && IDEMPOTENT.has(facts.method) && facts.bodyReplayable && facts.retries < facts.maxRetries && endpointCount > 1
}

/**
 * A failure before any response head is tried again when the body can be sent again
 * and the route allows another retry, and either the request never reached the instance
 * (any method) or the method is idempotent. A first-byte timeout never is: the instance
 * may still be working on it, and a second wait would double the client's.
 */
export function retryAfterFailure(failure: UpstreamFailure, facts: RetryFacts): boolean {
  if (failure.timedOut || !facts.bodyReplayable || facts.retries >= facts.maxRetries) return false
  return failure.neverSent || IDEMPOTENT.has(facts.method)
}
