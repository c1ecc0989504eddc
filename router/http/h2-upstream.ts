import { constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2'
import type { Readable } from 'node:stream'

/**
 * One exchange with an HTTP/2 (h2c or gRPC) upstream on Node's http2 client, reported to
 * a handler in the shape undici's dispatch handlers have (exchange.ts drives both).
 *
 * Why Node's http2 client and not undici's (H2CClient / allowH2): undici's HTTP/2 support
 * is a layer over the same node:http2 session, and measured here it costs about three
 * times the CPU per request (unary POST + trailers through one connection, 64 in flight:
 * 1.0-1.4 vs 2.8-4.4 client CPU s per 10,000 requests). Node's client also hands over
 * what gRPC needs as it is: trailers, whether the response head ended the stream
 * (trailers-only answers), RST_STREAM codes and streams that were never sent.
 */
export interface H2UpstreamHandler {
  onConnect(abort: (reason?: Error) => void): void
  /** the final response head; `endStream`: nothing follows it (a gRPC trailers-only answer) */
  onH2Headers(status: number, headers: IncomingHttpHeaders, endStream: boolean, resume: () => void): void
  /** false: the client is not keeping up, wait for `resume` */
  onData(chunk: Buffer): boolean
  onH2Complete(trailers: IncomingHttpHeaders | undefined): void
  onError(error: Error): void
}

export interface H2RequestOptions {
  method: string
  path: string
  /** the request's headers as upstreamHeaders made them (Host becomes :authority) */
  headers: Record<string, string | string[]>
  body: Readable | null
  /** gRPC: the client's stream wants `te: trailers` end to end */
  grpc: boolean
  /** no byte either way for this long fails the stream (0: never) */
  idleMs: number
}

/** An h2 stream failure, with a code upstream-error.ts knows. */
class H2StreamError extends Error {
  constructor(
    readonly code: string,
    message: string
  ) {
    super(message)
  }
}

/** No byte either way within the idle timeout: coded as undici's timeouts, so that upstream-error.ts words it the same. */
function idleTimeout(headReceived: boolean, idleMs: number): H2StreamError {
  return headReceived ? new H2StreamError('UND_ERR_BODY_TIMEOUT', `no data for ${idleMs} ms`) : new H2StreamError('UND_ERR_HEADERS_TIMEOUT', `no response head for ${idleMs} ms`)
}

/**
 * Why a stream ended without completing. A stream that never got an id never left the
 * router (its connection failed first: the connection's error code, ECONNREFUSED...); one
 * refused with REFUSED_STREAM was not processed (RFC 9113 8.7): both are safe to retry.
 */
function streamFailure(stream: ClientHttp2Stream, error: Error | undefined): H2StreamError {
  if (stream.id === undefined) {
    const cause = (error?.cause ?? error) as { code?: unknown; message?: string } | undefined
    const code = typeof cause?.code === 'string' ? cause.code : 'H2_NOT_SENT'
    return new H2StreamError(code === 'ERR_HTTP2_STREAM_CANCEL' ? 'H2_NOT_SENT' : code, cause?.message ?? 'the stream was never sent')
  }
  const rstCode = stream.rstCode ?? constants.NGHTTP2_INTERNAL_ERROR
  if (rstCode === constants.NGHTTP2_REFUSED_STREAM) return new H2StreamError('H2_REFUSED_STREAM', 'the upstream refused the stream (REFUSED_STREAM)')
  return new H2StreamError(`H2_RST_${rstCode}`, error?.message ?? `the upstream reset the stream (code ${rstCode})`)
}

/** The request head for Node's client: Host travels as :authority, as RFC 9113 8.3.1 wants it. */
function requestHead(options: H2RequestOptions): OutgoingHttpHeaders {
  const head: OutgoingHttpHeaders = { ':method': options.method, ':path': options.path }
  const headers = options.headers
  for (const name in headers) {
    if (name === 'host') head[':authority'] = headers[name]
    else head[name] = headers[name]
  }
  if (options.grpc) head.te = 'trailers'
  return head
}

export function dispatchH2(session: ClientHttp2Session | undefined, options: H2RequestOptions, handler: H2UpstreamHandler): void {
  let stream: ClientHttp2Stream
  try {
    // undefined: the endpoint was closed under the request (its instance left): never sent, like undici's closed pool.
    if (!session) throw new H2StreamError('UND_ERR_CLOSED', 'the connection to the instance is closed')
    stream = session.request(requestHead(options), { endStream: options.body === null })
  } catch (error) {
    // A session that went away between the check and the request: the stream never left.
    handler.onConnect(() => {})
    const code = (error as { code?: unknown }).code
    handler.onError(new H2StreamError(code === 'UND_ERR_CLOSED' ? code : 'H2_NOT_SENT', (error as Error).message))
    return
  }
  const body = options.body
  let settled = false
  let headReceived = false
  let trailers: IncomingHttpHeaders | undefined
  let streamError: Error | undefined
  const settle = (): boolean => {
    if (settled) return false
    settled = true
    if (body) {
      body.unpipe(stream)
      body.destroy()
    }
    return true
  }
  const fail = (error?: Error) => {
    if (!settle()) return
    if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL)
    handler.onError(error ?? new H2StreamError('H2_ABORTED', 'the exchange was aborted'))
  }
  handler.onConnect(fail)
  if (settled) return
  const resume = () => stream.resume()
  stream.on('response', (headers, flags) => {
    if (settled) return
    headReceived = true
    handler.onH2Headers(Number(headers[':status']), headers, (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0, resume)
  })
  stream.on('data', (chunk: Buffer) => {
    if (!settled && !handler.onData(chunk)) stream.pause()
  })
  stream.on('trailers', (received) => (trailers = received))
  stream.on('end', () => {
    // A reset ends the readable side too (Node pushes its end): that is a failure, not an answer.
    if (stream.rstCode !== constants.NGHTTP2_NO_ERROR) return fail(streamFailure(stream, streamError))
    if (!settle()) return
    // The answer is complete: a request body still on its way is no longer wanted (RFC 9113 8.1).
    if (!stream.closed && stream.writable) stream.close(constants.NGHTTP2_NO_ERROR)
    handler.onH2Complete(trailers)
  })
  stream.on('error', (error) => (streamError = error))
  stream.on('close', () => {
    if (!settled) fail(streamFailure(stream, streamError))
  })
  if (options.idleMs > 0) stream.setTimeout(options.idleMs, () => fail(idleTimeout(headReceived, options.idleMs)))
  if (body) {
    body.once('error', (error) => fail(new H2StreamError('H2_BODY_FAILED', error.message)))
    // Read from the client only once the stream is open: a connection that fails first leaves the body untouched, so a retry can send it whole.
    if (!stream.pending) body.pipe(stream)
    else
      stream.once('ready', () => {
        if (!settled) body.pipe(stream)
      })
  }
}
