import { createServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { Socket } from 'node:net'
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import type { RouteTable } from '../core/route-table.js'
import type { ProxyConfig } from './config.js'
import { ProxyListener } from './http/listener.js'
import { createProxyHandler } from './http/proxy.js'
import { RouteRules } from './http/route-rules.js'
import { createUpgradeHandler } from './http/upgrade.js'
import { UpgradeTunnels } from './http/upgrade-tunnels.js'
import type { KeyPair } from './http/tls-certificates.js'
import type { RouterMetrics } from './metrics.js'
import type { Endpoint } from './upstream/endpoint.js'

export interface ProxyAppOptions {
  config: ProxyConfig
  tables: { readonly table: RouteTable<Endpoint>; readonly ready?: boolean }
  metrics: RouterMetrics
  /** upgraded connections (the router drains and ends them); one of the listener's own when not given */
  tunnels?: UpgradeTunnels
  logger?: FastifyServerOptions['logger']
  /** certificate and key: the port speaks TLS (ALPN h2 and http/1.1) instead of cleartext HTTP/1.1 and h2c */
  tls?: KeyPair
  clock?: () => number
  random?: () => number
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE']
const KEEP_ALIVE_MS = 72_000

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

/** The HTTP/2 side of the proxy port (router/http/listener.ts) beside the Fastify instance that owns the port. */
export interface ProxyApp {
  app: FastifyInstance
  listener: ProxyListener
}

/** The proxy listener as a Fastify instance (see buildProxyListener). */
export function buildProxyApp(options: ProxyAppOptions): FastifyInstance {
  return buildProxyListener(options).app
}

/**
 * The proxy listener as a Fastify instance (not yet listening). Fastify owns its life
 * cycle (listen, logger, graceful close) but not its requests: the HTTP server hands
 * every request straight to the proxy handler, which does the whole exchange on Node's
 * request and response (Fastify's per-request objects and hooks would cost about a
 * fifth of the throughput). `inject()` reaches the same handler through a catch-all
 * route that hijacks the reply. HTTP/2 connections on the same port are handed to an
 * HTTP/2 server whose requests reach the same handler (ProxyListener).
 */
export function buildProxyListener(options: ProxyAppOptions): ProxyApp {
  // ALPN: h2 first, as the server's preference; clients without ALPN get HTTP/1.1.
  const server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key, ALPNProtocols: ['h2', 'http/1.1'] }) : createServer()
  // As long as Fastify's default: clients and load balancers in front keep their connections.
  server.keepAliveTimeout = KEEP_ALIVE_MS
  const app = Fastify({
    logger: options.logger ?? false,
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    serverFactory: () => server,
    clientErrorHandler,
    forceCloseConnections: 'idle',
    return503OnClosing: false
  })
  const rules = new RouteRules(options.config.routes, options.config)
  const handler = createProxyHandler({
    rules,
    tables: options.tables,
    config: options.config,
    metrics: options.metrics,
    log: app.log,
    secure: options.tls !== undefined,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.random ? { random: options.random } : {})
  })
  server.on('request', handler)
  const listener = new ProxyListener({ server, tls: options.tls !== undefined, http2Handler: handler.http2, http2: options.config.http2 })
  server.on(
    'upgrade',
    createUpgradeHandler({
      rules,
      tables: options.tables,
      config: options.config,
      metrics: options.metrics,
      tunnels: options.tunnels ?? new UpgradeTunnels(options.config.upgrades, options.metrics),
      secure: options.tls !== undefined,
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.random ? { random: options.random } : {})
    })
  )
  app.removeAllContentTypeParsers()
  // Bodies stay unread in request.raw and are streamed to the instance as they arrive.
  app.addContentTypeParser('*', (_request, _payload, done) => done(null))
  const viaFastify = (request: FastifyRequest, reply: FastifyReply) => {
    reply.hijack()
    handler(request.raw, reply.raw)
  }
  app.route({ method: METHODS, url: '/', handler: viaFastify })
  app.route({ method: METHODS, url: '/*', handler: viaFastify })
  return { app, listener }
}
