import type { IncomingHttpHeaders } from 'node:http'
import type { Http2ServerRequest } from 'node:http2'
import type { RoutableRequest } from './request-routing.js'

const COLON = 0x3a

/**
 * An HTTP/2 request as routing, forwarding and tracing read an HTTP/1.1 one: its
 * headers without pseudo-headers, `:authority` as Host (RFC 9113 8.3.1: it takes the
 * place of Host, and wins over a Host header that disagrees), `:path` as the target.
 */
export function http2RequestView(request: Http2ServerRequest): RoutableRequest & { readonly headers: IncomingHttpHeaders } {
  const source = request.headers
  const headers: IncomingHttpHeaders = {}
  for (const name in source) if (name.charCodeAt(0) !== COLON) headers[name] = source[name]
  const authority = source[':authority']
  if (authority !== undefined) headers.host = authority
  return { url: source[':path'], headers, rawHeaders: request.rawHeaders, socket: { remoteAddress: request.stream.session?.socket.remoteAddress } }
}
