/**
 * What a registry client does after one try at one registry endpoint. The registry's
 * replicas serve the same state, so an answer is the answer everywhere; only a replica
 * that cannot answer (down, failing, silent) is a reason to ask another one.
 */

/** How one try ended. */
export type TryOutcome =
  /** the endpoint answered with this status */
  | { kind: 'answered'; status: number }
  /** the request never left: refused, no such host, no route, connect timeout */
  | { kind: 'not-sent' }
  /** the request may have reached the endpoint, but no answer came back: reset, timeout */
  | { kind: 'lost' }

/**
 * - `done`: this is the result, give it to the caller (2xx; 4xx are the same on every replica).
 * - `next`: try another endpoint (the next one, after failoverDelay).
 * - `fail`: stop and report; asking again could apply a write twice.
 */
export type FailoverVerdict = 'done' | 'next' | 'fail'

/**
 * `idempotent`: sending the request again cannot do more than sending it once (reads,
 * heartbeats, reports, a registration under a fixed id). A write that is not
 * (a weight change, a rollout command) moves on only when it certainly did not arrive:
 * after a lost answer or a 5xx it may have been applied, and a second try would apply
 * it twice or answer 412 for a change that did land.
 */
export function failoverVerdict(outcome: TryOutcome, idempotent: boolean): FailoverVerdict {
  if (outcome.kind === 'not-sent') return 'next'
  if (outcome.kind === 'answered' && outcome.status < 500) return 'done'
  return idempotent ? 'next' : 'fail'
}

/**
 * Error codes (Node's and undici's) that mean the connection was never established, so no
 * byte of the request reached the endpoint. Anything else (a reset, "other side closed",
 * a headers timeout) may come after the endpoint read the request.
 */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT'])

export function outcomeOfError(code: string | undefined): TryOutcome {
  return code !== undefined && NOT_SENT.has(code) ? { kind: 'not-sent' } : { kind: 'lost' }
}
