/**
 * Every error switchyard reports carries a stable `code` that scripts can rely on,
 * an HTTP status, and a human message. Codes never change meaning once published.
 */
export const ErrorCodes = {
  // 400: the request is malformed or breaks a rule
  VALIDATION_FAILED: 400,
  MALFORMED_JSON: 400,
  INVALID_NAME: 400,
  WEIGHT_NOT_A_NUMBER: 400,
  WEIGHT_OUT_OF_RANGE: 400,
  WEIGHT_TOO_PRECISE: 400,
  WEIGHTS_EMPTY: 400,
  WEIGHTS_SUM_NOT_100: 400,
  TOO_MANY_VERSIONS: 400,
  INVALID_REVISION: 400,
  // 401 / 403: who is asking, and may they
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  // 404
  ROUTE_NOT_FOUND: 404,
  SERVICE_NOT_FOUND: 404,
  ROLLOUT_NOT_FOUND: 404,
  INSTANCE_NOT_FOUND: 404,
  TOPIC_NOT_FOUND: 404,
  // 409 / 412
  INSTANCE_CONFLICT: 409,
  VERSION_NOT_REGISTERED: 409,
  VERSION_NOT_UP: 409,
  NO_BASELINE: 409,
  OTHER_VERSIONS_WEIGHTED: 409,
  ROLLOUT_ACTIVE: 409,
  ROLLOUT_NOT_ACTIVE: 409,
  REVISION_MISMATCH: 412,
  // 413 / 415
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  // 400 from the router's edge
  REQUEST_SMUGGLING: 400,
  MALFORMED_REQUEST: 400,
  INVALID_PATH: 400,
  // 5xx
  INTERNAL: 500,
  // 500: switchyard's own state or set-up is wrong (raised inside a process, not by a request)
  REVISION_GAP: 500,
  TOKENS_FILE_UNREADABLE: 500,
  TOKENS_FILE_INVALID: 500,
  ADMIN_TOKEN_TOO_SHORT: 500,
  QUEUE_NOT_FOUND: 500,
  QUEUE_ARGUMENTS_CONFLICT: 500,
  // etcd refused the request itself (bad credentials, a compacted revision, a malformed or oversized request)
  ETCD_AUTH_FAILED: 500,
  ETCD_COMPACTED: 500,
  ETCD_REQUEST_FAILED: 500,
  UPSTREAM_UNREACHABLE: 502,
  UPSTREAM_RESET: 502,
  NO_ROUTE_TABLE: 503,
  UNKNOWN_SERVICE: 503,
  NO_HEALTHY_INSTANCE: 503,
  UNKNOWN_VERSION: 503,
  UPGRADE_LIMIT_REACHED: 503,
  NOT_READY: 503,
  BROKER_SESSION_CLOSED: 503,
  BROKER_CONNECTION_LOST: 503,
  SIGNALS_UNAVAILABLE: 503,
  ETCD_UNAVAILABLE: 503,
  /** the registry's store (etcd) cannot take the write now; a write answered this may or may not have landed */
  STORE_UNAVAILABLE: 503,
  UPSTREAM_CONNECT_TIMEOUT: 504,
  UPSTREAM_TIMEOUT: 504,
  ROUTE_TIMEOUT: 504
} as const satisfies Record<string, number>

export type ErrorCode = keyof typeof ErrorCodes

export interface ErrorBody {
  code: ErrorCode
  message: string
}

export class SwitchyardError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'SwitchyardError'
    this.code = code
    this.statusCode = ErrorCodes[code]
  }

  toJSON(): ErrorBody {
    return { code: this.code, message: this.message }
  }
}

export function isSwitchyardError(value: unknown): value is SwitchyardError {
  return value instanceof SwitchyardError
}
