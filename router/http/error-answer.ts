import type { ServerResponse } from 'node:http'
import { ErrorCodes, type ErrorBody } from '../../core/errors.js'

/**
 * Writes one of the router's own answers (`{code, message}` JSON, the status its code
 * stands for) on the raw response. `closeConnection` is for a request whose body was left
 * unread: the rest of its bytes would otherwise be taken for the next request.
 */
export function sendErrorAnswer(response: ServerResponse, error: ErrorBody, requestId: string, version: string | undefined, closeConnection = false): void {
  const body = JSON.stringify(error)
  const headers = ['content-type', 'application/json; charset=utf-8', 'content-length', String(Buffer.byteLength(body)), 'x-request-id', requestId]
  if (version !== undefined) headers.push('x-switchyard-version', version)
  if (closeConnection) headers.push('connection', 'close')
  response.writeHead(ErrorCodes[error.code], headers)
  response.end(body)
}
