import type { ErrorBody } from '../../core/errors.js'

/** Errors raised before the request reached the instance (no connection was made). */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL'])
/**
 * The endpoint's pool was closed under the request (its instance just left the table), or
 * an HTTP/2 stream never left the router or was refused unprocessed (h2-upstream.ts): it was never sent.
 */
const POOL_CLOSED = new Set(['UND_ERR_CLOSED', 'UND_ERR_DESTROYED', 'H2_NOT_SENT', 'H2_REFUSED_STREAM'])

/** What an upstream failure before any response head means for the exchange. */
export interface UpstreamFailure {
  /** what the client is told when nothing else is tried */
  readonly answer: ErrorBody
  /** no connection could be made: counted as a connect error */
  readonly connectFailed: boolean
  /** the request never reached the instance, so it may be sent again whatever its method */
  readonly neverSent: boolean
  /** the instance took the request and sent no head in time: it may still be working on it */
  readonly timedOut: boolean
}

/** The code of a socket or undici error ('' when it has none). */
export function errorCode(error: Error): string {
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' ? code : ''
}

/**
 * An attempt failed before the instance sent a response head.
 * @param where the attempt's target, for the message ("api v1.3 at 127.0.0.1:3001")
 */
export function failureBeforeHead(code: string, where: string, firstByteMs: number): UpstreamFailure {
  const connectFailed = CONNECT_ERRORS.has(code)
  return {
    answer: answerBeforeHead(code, connectFailed, where, firstByteMs),
    connectFailed,
    neverSent: connectFailed || POOL_CLOSED.has(code),
    timedOut: code === 'UND_ERR_HEADERS_TIMEOUT'
  }
}

function answerBeforeHead(code: string, connectFailed: boolean, where: string, firstByteMs: number): ErrorBody {
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return { code: 'UPSTREAM_CONNECT_TIMEOUT', message: `connecting to ${where} timed out` }
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return { code: 'UPSTREAM_TIMEOUT', message: `${where} sent no response headers within ${firstByteMs} ms` }
  if (connectFailed) return { code: 'UPSTREAM_UNREACHABLE', message: `cannot connect to ${where}` }
  return { code: 'UPSTREAM_RESET', message: `the connection to ${where} failed before a response` }
}

/**
 * The upstream answer broke after its head arrived and before any of it reached the
 * client. Whatever broke it (a reset, a close before content-length was met, bad chunk
 * framing), it is the upstream's answer that failed: a 502, with the cause in the message;
 * a body that stopped coming is a 504.
 */
export function failureMidAnswer(code: string, message: string): ErrorBody {
  if (code === 'UND_ERR_BODY_TIMEOUT') return { code: 'UPSTREAM_TIMEOUT', message: 'the upstream stopped sending its response body' }
  return { code: 'UPSTREAM_RESET', message: `the upstream answer broke before its body (${code || message})` }
}
