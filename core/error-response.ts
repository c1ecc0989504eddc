import { ErrorCodes, SwitchyardError, type ErrorBody, type ErrorCode } from './errors.js'

interface FrameworkError {
  code?: unknown
  statusCode?: unknown
  message?: unknown
  validation?: unknown
  validationContext?: unknown
}

/** Framework errors (Fastify's FST_* codes) mapped to switchyard's stable codes. */
const frameworkCodes: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'VALIDATION_FAILED',
  FST_ERR_VALIDATION: 'VALIDATION_FAILED',
  FST_ERR_NOT_FOUND: 'ROUTE_NOT_FOUND'
}

/**
 * Turns anything thrown while serving a request into a status and a `{code, message}`
 * body. Unknown errors become a bare INTERNAL: their messages may hold details that
 * callers have no business seeing.
 */
export function toErrorResponse(error: unknown): { statusCode: number; body: ErrorBody } {
  if (error instanceof SwitchyardError) return { statusCode: error.statusCode, body: error.toJSON() }
  const candidate = (typeof error === 'object' && error !== null ? error : {}) as FrameworkError
  const mapped = typeof candidate.code === 'string' ? frameworkCodes[candidate.code] : undefined
  if (mapped) {
    let message = typeof candidate.message === 'string' ? candidate.message : mapped
    if (mapped === 'VALIDATION_FAILED' && candidate.validation !== undefined) message = `invalid request ${message}`
    return { statusCode: ErrorCodes[mapped], body: { code: mapped, message } }
  }
  if (candidate.validation !== undefined) {
    return { statusCode: 400, body: { code: 'VALIDATION_FAILED', message: `invalid request ${String(candidate.message)}` } }
  }
  if (candidate instanceof SyntaxError || (typeof candidate.statusCode === 'number' && candidate.statusCode === 400)) {
    return { statusCode: 400, body: { code: 'MALFORMED_JSON', message: `request body is not valid JSON: ${String(candidate.message)}` } }
  }
  const status = typeof candidate.statusCode === 'number' ? candidate.statusCode : 500
  if (status === 413) return { statusCode: 413, body: { code: 'BODY_TOO_LARGE', message: 'request body is too large' } }
  if (status === 415) return { statusCode: 415, body: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'send the request body as application/json' } }
  return { statusCode: 500, body: { code: 'INTERNAL', message: 'internal error' } }
}
