import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { RouteTable } from '../core/route-table.js'
import type { ProxyConfig } from './config.js'
import { acceptableRequestId } from './http/forwarding-headers.js'
import { createProxyHandler, upstreamBodyFailure } from './http/proxy.js'
import { RouteRules } from './http/route-rules.js'
import type { RouterMetrics } from './metrics.js'
import type { Endpoint } from './upstream/endpoint.js'

export interface ProxyAppOptions {
  config: ProxyConfig
  tables: { readonly table: RouteTable<Endpoint>; readonly ready?: boolean }
  metrics: RouterMetrics
  logger?: FastifyServerOptions['logger']
  clock?: () => number
  random?: () => number
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE']

/** Answers malformed HTTP (Node's parser errors) in switchyard's JSON error format. */
function clientErrorHandler(error: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  const smuggling = ['HPE_UNEXPECTED_CONTENT_LENGTH', 'HPE_INVALID_TRANSFER_ENCODING', 'HPE_INVALID_CONTENT_LENGTH', 'HPE_INVALID_CHUNK_SIZE'].includes(error.code ?? '')
  const body = JSON.stringify(
    smuggling
      ? { code: 'REQUEST_SMUGGLING', message: 'conflicting or invalid Content-Length / Transfer-Encoding' }
      : { code: 'MALFORMED_REQUEST', message: `malformed HTTP request (${error.code ?? 'parse error'})` }
  )
  const status = error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request'
  socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
}

/**
 * The proxy listener as a Fastify instance (not yet listening). Every method and path
 * reaches one handler; bodies are never parsed, only streamed.
 */
export function buildProxyApp(options: ProxyAppOptions): FastifyInstance {
  const app = Fastify({
    logger: options.logger ?? false,
    // One log line per request would cost more than the proxying; metrics count requests.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    // The request id is the client's sane x-request-id or a new one; log lines carry it.
    requestIdHeader: false,
    genReqId: (request) => acceptableRequestId(request.headers['x-request-id']) ?? randomUUID(),
    clientErrorHandler,
    forceCloseConnections: 'idle',
    return503OnClosing: false
  })
  const rules = new RouteRules(options.config.routes, options.config)
  const { metrics } = options

  app.decorateRequest('routed', null)
  app.removeAllContentTypeParsers()
  // Bodies stay unread in request.raw and are streamed to the instance as they arrive.
  app.addContentTypeParser('*', (_request, _payload, done) => done(null))

  app.addHook('onResponse', async (request, reply) => {
    const routed = request.routed
    if (!routed) return
    metrics.recordRequest(routed.service, routed.version, reply.statusCode, reply.elapsedTime / 1000)
  })
  app.setErrorHandler(async (error, request, reply) => {
    if (reply.sent || reply.raw.headersSent) return
    // A failed upstream body stream already copied the upstream's headers (content-type,
    // content-length, content-encoding...) onto the raw response: they are not ours to send.
    const requestId = reply.getHeader('x-request-id')
    const version = reply.getHeader('x-switchyard-version')
    for (const name of reply.raw.getHeaderNames()) reply.raw.removeHeader(name)
    for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name)
    if (requestId !== undefined) reply.header('x-request-id', requestId)
    if (version !== undefined) reply.header('x-switchyard-version', version)
    const upstream = upstreamBodyFailure(error)
    if (upstream) return reply.code(upstream.status).send({ code: upstream.code, message: upstream.message })
    request.log.error({ err: error }, 'proxy error')
    return reply.code(500).send({ code: 'INTERNAL', message: 'internal error' })
  })

  const handler = createProxyHandler({
    rules,
    tables: options.tables,
    config: options.config,
    metrics,
    log: app.log,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.random ? { random: options.random } : {})
  })
  app.route({ method: METHODS, url: '/', handler })
  app.route({ method: METHODS, url: '/*', handler })
  return app
}
