import { ErrorCodes, type ErrorBody } from '../../core/errors.js'
import type { DownstreamResponse } from './downstream.js'

/**
 * Writes one of the router's own answers (`{code, message}` JSON, the status its code
 * stands for) on the raw response. `closeConnection` is for a request whose body was left
 * unread: the rest of its bytes would otherwise be taken for the next request (HTTP/1.1
 * only: an HTTP/2 stream is framed, and names no connection).
 */
export function sendErrorAnswer(response: DownstreamResponse, error: ErrorBody, requestId: string, version: string | undefined, closeConnection = false): void {
  const body = JSON.stringify(error)
  const headers = ['content-type', 'application/json; charset=utf-8', 'content-length', String(Buffer.byteLength(body)), 'x-request-id', requestId]
  if (version !== undefined) headers.push('x-switchyard-version', version)
  if (closeConnection) headers.push('connection', 'close')
  response.writeHead(ErrorCodes[error.code], headers)
  response.end(body)
}
