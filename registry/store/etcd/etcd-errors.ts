import { SwitchyardError, type ErrorCode } from '../../../core/errors.js'

export type EtcdErrorCode = Extract<ErrorCode, 'ETCD_UNAVAILABLE' | 'ETCD_COMPACTED' | 'ETCD_AUTH_FAILED' | 'ETCD_REQUEST_FAILED'>

export interface EtcdErrorDetails {
  /** etcd's gRPC status code, when etcd answered */
  grpcCode?: number | undefined
  /** ETCD_COMPACTED from a watch: the oldest revision etcd still has (resume from a fresh read, not before it) */
  compactRevision?: number
  /** a write that failed this way may still have been applied (the request reached etcd, the answer did not come back) */
  outcomeUnknown?: boolean
  /** a watch that ended: the revision to watch from to miss nothing (the last delivered event's + 1) */
  resumeRevision?: number
  cause?: unknown
}

/**
 * An etcd failure with a stable code. Messages name endpoints and etcd's own error text,
 * never a token, password or key material.
 */
export class EtcdError extends SwitchyardError {
  declare readonly code: EtcdErrorCode
  readonly grpcCode: number | undefined
  readonly compactRevision: number | undefined
  readonly outcomeUnknown: boolean
  readonly resumeRevision: number | undefined

  constructor(code: EtcdErrorCode, message: string, details: EtcdErrorDetails = {}) {
    super(code, message, details.cause === undefined ? undefined : { cause: details.cause })
    this.grpcCode = details.grpcCode
    this.compactRevision = details.compactRevision
    this.outcomeUnknown = details.outcomeUnknown ?? false
    this.resumeRevision = details.resumeRevision
  }
}

export function isEtcdError(value: unknown): value is EtcdError {
  return value instanceof EtcdError
}

/** gRPC status codes etcd answers with (the gateway passes them as `code`). */
export const GrpcCode = {
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  OUT_OF_RANGE: 11,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16
} as const

/**
 * What to do about one failed attempt:
 * - `retry`: the request did not take effect (refused before it reached raft); another
 *   endpoint, or the same later, may serve it;
 * - `unknown`: the member is unavailable but a write may have been proposed already
 *   (timeouts, a connection lost mid-request): reads go on, writes stop with outcomeUnknown;
 * - `reauthenticate`: the token is gone (a restarted member forgets simple tokens);
 * - `fail`: etcd refused the request itself; no other member would answer otherwise.
 */
export type FailureVerdict =
  | { action: 'retry' | 'unknown' | 'reauthenticate'; reason: string }
  | { action: 'fail'; code: Exclude<EtcdErrorCode, 'ETCD_UNAVAILABLE'>; reason: string; grpcCode?: number | undefined }

// etcd's messages (etcdserver/api/v3rpc/rpctypes) that say the request never reached raft
const NOT_PROPOSED = [
  'etcdserver: no leader',
  'etcdserver: not leader',
  'etcdserver: too many requests',
  'etcdserver: unhealthy cluster',
  'etcdserver: not capable',
  'raft proposal dropped'
]
const TOKEN_GONE = ['etcdserver: invalid auth token', 'etcdserver: revision of auth store is old', 'etcdserver: user name is empty']
const AUTH_REFUSED = ['etcdserver: authentication failed', 'etcdserver: permission denied', 'etcdserver: user name not found', 'etcdserver: authentication is not enabled']

/** Classifies an answer of etcd that was not 200: its HTTP status and the gateway's `{code, message}` body, if any. */
export function verdictOfAnswer(status: number, body: { code?: number; message?: string } | undefined): FailureVerdict {
  const message = body?.message ?? ''
  const code = body?.code
  if (message.includes('required revision has been compacted')) return { action: 'fail', code: 'ETCD_COMPACTED', reason: message, grpcCode: code }
  if (TOKEN_GONE.some((text) => message.includes(text))) return { action: 'reauthenticate', reason: message }
  if (AUTH_REFUSED.some((text) => message.includes(text)) || code === GrpcCode.PERMISSION_DENIED)
    return { action: 'fail', code: 'ETCD_AUTH_FAILED', reason: message, grpcCode: code }
  if (NOT_PROPOSED.some((text) => message.includes(text))) return { action: 'retry', reason: message }
  // timeouts, "leader changed", a stopping server, the gateway's own 5xx without a body: maybe proposed, maybe not
  if (code === GrpcCode.UNAVAILABLE || code === GrpcCode.DEADLINE_EXCEEDED || code === GrpcCode.CANCELLED || status >= 500 || code === undefined)
    return { action: 'unknown', reason: message || `HTTP ${status}` }
  if (code === GrpcCode.RESOURCE_EXHAUSTED) return { action: 'retry', reason: message }
  return { action: 'fail', code: 'ETCD_REQUEST_FAILED', reason: message || `HTTP ${status}`, grpcCode: code }
}

// undici and Node error codes raised before a request could have been sent
// (TLS: the handshake failed, so nothing was sent; one member with a bad certificate is failed over like a dead one)
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID'
])

/** Classifies a request that got no answer (connection refused, reset, timed out, TLS refused). */
export function verdictOfTransportError(error: unknown): FailureVerdict {
  const code = (error as { code?: string } | undefined)?.code ?? (error as { cause?: { code?: string } } | undefined)?.cause?.code
  const reason = `${code ?? (error as Error | undefined)?.name ?? 'error'}: ${(error as Error | undefined)?.message ?? String(error)}`
  if (code !== undefined && NOT_SENT.has(code)) return { action: 'retry', reason }
  return { action: 'unknown', reason }
}
