import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import { ErrorCodes, type ErrorBody } from '../../core/errors.js'

/**
 * Answers written straight onto a socket, for the requests Node hands over without a
 * response object (upgrades). Headers are the flat [name, value, ...] list `writeHead` takes.
 */
export function responseHead(status: number, statusMessage: string | undefined, headers: readonly string[]): string {
  let head = `HTTP/1.1 ${status} ${statusMessage || STATUS_CODES[status] || ''}\r\n`
  for (let index = 0; index < headers.length; index += 2) head += `${headers[index] as string}: ${headers[index + 1] as string}\r\n`
  return `${head}\r\n`
}

/** One of the router's own `{code, message}` answers, after which the connection is closed. */
export function writeRawErrorAnswer(socket: Socket, error: ErrorBody, requestId: string, version: string | undefined): void {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  const body = JSON.stringify(error)
  const headers = ['content-type', 'application/json; charset=utf-8', 'content-length', String(Buffer.byteLength(body)), 'x-request-id', requestId]
  if (version !== undefined) headers.push('x-switchyard-version', version)
  headers.push('connection', 'close')
  socket.end(responseHead(ErrorCodes[error.code], undefined, headers) + body)
}
