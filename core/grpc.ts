import type { ErrorCode } from './errors.js'

/**
 * gRPC over HTTP/2 as the router sees it (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md):
 * status codes and names, the `grpc-timeout` header, the `grpc-message` encoding, and
 * how the router's own error codes and HTTP statuses translate to gRPC statuses.
 */

/** gRPC status names, indexed by code (0..16). */
export const GRPC_STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED'
] as const

export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16
} as const

/**
 * The HTTP status a gRPC status stands for (grpc-gateway's table), so that gRPC calls
 * count in the same status classes as HTTP answers (error rates, rollout signals).
 */
const HTTP_EQUIVALENTS = [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401]

/** A gRPC status name for a metric label: the spec's name, or the number for a code it does not define. */
export function grpcStatusName(status: number): string {
  return GRPC_STATUS_NAMES[status] ?? String(status)
}

/** The HTTP status a gRPC status stands for (500 for a code the spec does not define). */
export function httpEquivalentOfGrpc(status: number): number {
  return HTTP_EQUIVALENTS[status] ?? 500
}

/**
 * Whether a gRPC status says the instance failed (counted by outlier detection like an
 * HTTP 5xx): UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE, DATA_LOSS and codes the
 * spec does not define. UNIMPLEMENTED maps to 501 but is the caller asking for a method the
 * service lacks: counting it would let one bad client eject healthy instances.
 */
export function isGrpcServerFailure(status: number): boolean {
  return status !== GrpcStatus.UNIMPLEMENTED && httpEquivalentOfGrpc(status) >= 500
}

/** A grpc-status header's value as a code; anything but a plain number from 0 to 99 is UNKNOWN. */
export function parseGrpcStatus(value: string | string[] | undefined): number | undefined {
  if (value === undefined) return undefined
  return typeof value === 'string' && /^\d{1,2}$/.test(value) ? Number(value) : GrpcStatus.UNKNOWN
}

/**
 * The gRPC status of an answer that carries no grpc-status (a plain HTTP answer on a gRPC
 * route), as gRPC clients derive it from the HTTP status (the spec's table).
 */
export function grpcStatusOfHttp(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL
    case 401:
      return GrpcStatus.UNAUTHENTICATED
    case 403:
      return GrpcStatus.PERMISSION_DENIED
    case 404:
      return GrpcStatus.UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE
    default:
      return GrpcStatus.UNKNOWN
  }
}

/** The router's own refusals and failures as gRPC statuses; the rest follow their HTTP status. */
const FROM_ERROR_CODE: Partial<Record<ErrorCode, number>> = {
  REQUEST_SMUGGLING: GrpcStatus.INVALID_ARGUMENT,
  MALFORMED_REQUEST: GrpcStatus.INVALID_ARGUMENT,
  INVALID_PATH: GrpcStatus.INVALID_ARGUMENT,
  ROUTE_NOT_FOUND: GrpcStatus.UNIMPLEMENTED,
  INTERNAL: GrpcStatus.INTERNAL,
  ROUTE_TIMEOUT: GrpcStatus.DEADLINE_EXCEEDED,
  UPSTREAM_TIMEOUT: GrpcStatus.DEADLINE_EXCEEDED
}

/** The status a gRPC client is told for one of the router's own answers (UNAVAILABLE for every "cannot reach a version" case). */
export function grpcStatusOfError(code: ErrorCode, httpStatus: number): number {
  return FROM_ERROR_CODE[code] ?? (httpStatus >= 500 ? GrpcStatus.UNAVAILABLE : grpcStatusOfHttp(httpStatus))
}

const TIMEOUT_UNITS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 }

/**
 * A grpc-timeout header ("1S", "250m", "100000u": at most 8 digits and a unit) in ms,
 * rounded up so that a sub-millisecond deadline is never 0; undefined when absent or malformed
 * (gRPC servers then treat the call as having no deadline, and so does the router).
 */
export function parseGrpcTimeout(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string') return undefined
  const match = /^(\d{1,8})([HMSmun])$/.exec(value)
  if (!match) return undefined
  return Math.ceil(Number(match[1]) * (TIMEOUT_UNITS[match[2] as string] as number))
}

/** grpc-message is percent-encoded UTF-8: only printable ASCII other than "%" travels as is. */
export function encodeGrpcMessage(message: string): string {
  let out = ''
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** A gRPC request: content-type application/grpc, alone or with a suffix (+proto, +json, ;charset). */
export function isGrpcContentType(value: string | undefined): boolean {
  return value !== undefined && value.startsWith('application/grpc') && (value.length === 16 || value.charCodeAt(16) === 0x2b || value.charCodeAt(16) === 0x3b)
}
