import type { Http2ServerResponse, OutgoingHttpHeaders } from 'node:http2'
import type { ErrorBody } from '../../core/errors.js'
import { ErrorCodes } from '../../core/errors.js'
import { encodeGrpcMessage, grpcStatusOfError } from '../../core/grpc.js'

/**
 * The client's response as the proxy writes it: Node's ServerResponse (HTTP/1.1) or the
 * HTTP/2 compatibility response, which takes the same calls (writeHead with a flat
 * [name, value, ...] list included).
 */
export interface DownstreamResponse {
  readonly headersSent: boolean
  statusCode: number
  readonly writableFinished: boolean
  writeHead(status: number, headers: string[]): unknown
  flushHeaders(): void
  write(chunk: Buffer): boolean
  end(body?: string): unknown
  destroy(): unknown
  on(event: 'close', listener: () => void): unknown
  once(event: 'close' | 'drain', listener: () => void): unknown
}

/** A flat [name, value, ...] list as Node's http2 headers object (repeated names as arrays). */
function headerObject(status: number, list: readonly string[]): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ':status': status }
  for (let index = 0; index < list.length; index += 2) {
    const name = list[index] as string
    const value = list[index + 1] as string
    const prior = out[name]
    out[name] = prior === undefined ? value : Array.isArray(prior) ? [...prior, value] : [String(prior), value]
  }
  return out
}

/**
 * An answer that is only a head (HEADERS with END_STREAM): gRPC's trailers-only form,
 * which a gRPC client reads as the call's status. The compatibility API cannot send it
 * (its head never ends the stream), so it goes on the stream itself.
 */
export function respondHeadOnly(response: Http2ServerResponse, status: number, head: readonly string[]): void {
  response.statusCode = status
  response.stream.respond(headerObject(status, head), { endStream: true })
}

/**
 * One of the router's own answers to a gRPC call: HTTP 200, trailers-only, with the gRPC
 * status its code stands for (UNAVAILABLE when no version has an instance...) and the
 * message in grpc-message. A gRPC client reads a bare HTTP status as a protocol error.
 * Returns the gRPC status sent.
 */
export function sendGrpcError(response: DownstreamResponse, h2: Http2ServerResponse | undefined, error: ErrorBody, requestId: string, version: string | undefined): number {
  const status = grpcStatusOfError(error.code, ErrorCodes[error.code])
  const head = ['content-type', 'application/grpc', 'grpc-status', String(status), 'grpc-message', encodeGrpcMessage(`${error.code}: ${error.message}`), 'x-request-id', requestId]
  if (version !== undefined) head.push('x-switchyard-version', version)
  if (h2) {
    respondHeadOnly(h2, 200, head)
  } else {
    // gRPC over HTTP/1.1 is not gRPC, but the closest a client can read: the status in the head.
    head.push('content-length', '0')
    response.writeHead(200, head)
    response.end()
  }
  return status
}

/** The gRPC status at the end of an answer that already began (DEADLINE_EXCEEDED, UNAVAILABLE...), as trailers. */
export function endWithGrpcStatus(response: Http2ServerResponse, status: number, message: string): void {
  response.addTrailers({ 'grpc-status': String(status), 'grpc-message': encodeGrpcMessage(message) })
  response.end()
}
