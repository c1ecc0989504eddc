import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import type { Span } from '@opentelemetry/api'
import type { FastifyBaseLogger } from 'fastify'
import type { ErrorCode } from '../../core/errors.js'
import { isGrpcContentType, parseGrpcTimeout } from '../../core/grpc.js'
import { RetryBudget } from '../../core/retry-budget.js'
import type { RouteTable } from '../../core/route-table.js'
import { currentTracing, endSpan, type Tracing } from '../../telemetry/tracing.js'
import type { ProxyConfig } from '../config.js'
import type { RouterMetrics } from '../metrics.js'
import type { Endpoint } from '../upstream/endpoint.js'
import { sendGrpcError, type DownstreamResponse } from './downstream.js'
import { sendErrorAnswer } from './error-answer.js'
import { Exchange, systemTimers, type ClientBody, type ExchangeSettings, type Timers } from './exchange.js'
import { acceptableRequestId, addressMatches, buildBlockList, upstreamHeaders } from './forwarding-headers.js'
import { http2RequestView } from './http2-request.js'
import { RequestRouting, type RoutableRequest } from './request-routing.js'
import type { RouteRules } from './route-rules.js'
import { describeRoute, startServerSpan } from './server-span.js'

export interface ProxyDependencies {
  rules: RouteRules
  /** `ready` is false until the first table from the registry is in force */
  tables: { readonly table: RouteTable<Endpoint>; readonly ready?: boolean }
  config: ProxyConfig
  metrics: RouterMetrics
  log: FastifyBaseLogger
  /** ms timestamps, and timers on the same clock (tests pass fake ones) */
  clock?: () => number
  timers?: Timers
  random?: () => number
  tracing?: Tracing
  /** the listener speaks TLS: upstreams are told x-forwarded-proto https */
  secure?: boolean
}

/** The proxy listener's request handler, on Node's own request and response objects. */
export type ProxyHandler = (request: IncomingMessage, response: ServerResponse) => void

/** The same for HTTP/2 requests (h2c prior knowledge, or TLS with ALPN h2), on Node's compatibility objects. */
export type Http2ProxyHandler = (request: Http2ServerRequest, response: Http2ServerResponse) => void

const CHUNKED = /^chunked$/i

/** One client request once its protocol's own checks passed: what routing and the exchange need. */
interface ClientCall {
  /** what routing reads: the request itself (HTTP/1.1) or a view without pseudo-headers (HTTP/2) */
  routable: RoutableRequest
  body: ClientBody
  response: DownstreamResponse
  /** the HTTP/2 response, for trailers and head-only answers */
  h2: Http2ServerResponse | undefined
  method: string
  requestId: string
  startedAt: number
  hasBody: boolean
  /** a gRPC call (HTTP/2 with content-type application/grpc): the router's own answers are gRPC statuses */
  grpc: boolean
  serverSpan: Span | undefined
  unsampled: Span | undefined
}

/**
 * The hot path: rule -> service route -> version -> (exchange) endpoint -> undici
 * dispatch (or Node's http2 client for h2c and gRPC services). It works on Node's request
 * and response directly, with no framework objects in between, so a proxied request costs
 * little more than the two HTTP exchanges it is. HTTP/2 requests take the same path after
 * their own entry (`.http2`): same rules, version choice, metrics, tracing and headers.
 */
export function createProxyHandler(deps: ProxyDependencies): ProxyHandler & { http2: Http2ProxyHandler } {
  const { rules, tables, config, metrics } = deps
  const random = deps.random ?? Math.random
  const routing = new RequestRouting({ rules, tables, config, metrics, random })
  const trustForwarded = buildBlockList(config.trustForwardedFrom)
  const anyTrustedProxy = config.trustForwardedFrom.length > 0
  const budgets = new Map<string, RetryBudget>()
  const budgetSettings = { ratio: config.retries.budgetRatio, minPerSecond: config.retries.minPerSecond, windowSeconds: 10 }
  const tracing = deps.tracing ?? currentTracing()
  const proto = deps.secure ? 'https' : 'http'
  const settings: ExchangeSettings = {
    metrics,
    log: deps.log,
    clock: deps.clock ?? Date.now,
    timers: deps.timers ?? systemTimers,
    random,
    tracer: tracing.tracer,
    outlier: config.outlierDetection,
    firstByteMs: config.timeouts.firstByteMs,
    idleMs: config.timeouts.idleMs
  }

  function refuse(call: Pick<ClientCall, 'response' | 'h2' | 'grpc' | 'requestId'>, code: ErrorCode, message: string, closeConnection = false): void {
    metrics.unrouted.inc({ reason: code })
    if (call.grpc) sendGrpcError(call.response, call.h2, { code, message }, call.requestId, undefined)
    else sendErrorAnswer(call.response, { code, message }, call.requestId, undefined, closeConnection)
  }

  /** Tracing off costs one branch per request; on, a server span covers the whole exchange. */
  function startSpan(request: RoutableRequest, response: DownstreamResponse, method: string, requestId: string): Span {
    const span = startServerSpan(tracing.tracer, request, method, requestId)
    if (span.isRecording()) {
      response.once('close', () => {
        const status = response.statusCode
        span.setAttribute('http.response.status_code', status)
        endSpan(span, status >= 500 ? `HTTP ${status}` : response.writableFinished ? undefined : 'client went away')
      })
    }
    return span
  }

  function forward(call: ClientCall): void {
    const { routable, method, requestId, serverSpan } = call
    const routed = routing.route(routable)
    if ('refused' in routed) return refuse(call, routed.refused, routed.message)
    const { rule, route, version } = routed
    const clientAddress = routable.socket.remoteAddress
    if (serverSpan) describeRoute(serverSpan, method, routed, tables.table.revision)

    let budget = budgets.get(route.name)
    if (!budget) budgets.set(route.name, (budget = new RetryBudget(budgetSettings)))
    const headers = routable.headers
    const exchange = new Exchange(settings, call.body, call.response, {
      rule,
      route,
      version,
      method,
      path: routed.upstreamPath,
      headers: upstreamHeaders(headers, {
        clientAddress,
        host: routed.host,
        trustForwarded: anyTrustedProxy && addressMatches(trustForwarded, clientAddress),
        requestId,
        service: route.name,
        version: version.name,
        secretHeader: routing.chooser.secretHeader,
        replaceTraceHeaders: tracing.enabled,
        proto
      }),
      hasBody: call.hasBody,
      requestId,
      budget,
      startedAt: call.startedAt,
      serverSpan,
      unsampled: call.unsampled,
      protocol: rule.protocol,
      grpcCall: call.grpc,
      deadlineMs: rule.protocol === 'grpc' ? parseGrpcTimeout(headers['grpc-timeout']) : undefined,
      h2: call.h2
    })
    exchange.start()
  }

  function proxy(request: IncomingMessage, response: ServerResponse): void {
    const startedAt = performance.now()
    const headers = request.headers
    const method = request.method ?? 'GET'
    // The client's sane x-request-id travels on; otherwise the edge makes one.
    const requestId = acceptableRequestId(headers['x-request-id']) ?? randomUUID()
    let serverSpan: Span | undefined
    let unsampled: Span | undefined
    if (tracing.enabled) {
      const span = startSpan(request, response, method, requestId)
      if (span.isRecording()) serverSpan = span
      else unsampled = span
    }

    // Node's parser already refuses most smuggling shapes; these are the ones it lets by.
    const transferEncoding = headers['transfer-encoding']
    if (transferEncoding !== undefined && (headers['content-length'] !== undefined || !CHUNKED.test(transferEncoding.trim()))) {
      // The rest of this connection's bytes cannot be trusted either (RFC 9112 6.1): close it.
      const call = { response, h2: undefined, grpc: false, requestId }
      return refuse(call, 'REQUEST_SMUGGLING', 'Transfer-Encoding must be exactly "chunked" and cannot come with Content-Length', true)
    }
    const hasBody = transferEncoding !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0')
    forward({ routable: request, body: request, response, h2: undefined, method, requestId, startedAt, hasBody, grpc: false, serverSpan, unsampled })
  }

  /**
   * HTTP/2: HTTP/2's framing leaves no room for smuggling (nghttp2 refuses connection
   * headers, a bad content-length or a malformed field before the request gets here);
   * pseudo-headers are set aside (:authority stands for Host), and the rest is the same.
   * (CONNECT never gets here: Node's compatibility layer answers it 405 itself.)
   */
  function proxyH2(request: Http2ServerRequest, h2: Http2ServerResponse): void {
    const startedAt = performance.now()
    const routable = http2RequestView(request)
    const headers = routable.headers
    const method = request.method
    const response = h2 as unknown as DownstreamResponse
    const requestId = acceptableRequestId(headers['x-request-id']) ?? randomUUID()
    const grpc = isGrpcContentType(headers['content-type'])
    let serverSpan: Span | undefined
    let unsampled: Span | undefined
    if (tracing.enabled) {
      const span = startSpan(routable, response, method, requestId)
      if (span.isRecording()) serverSpan = span
      else unsampled = span
    }
    const hasBody = !request.stream.endAfterHeaders
    forward({ routable, body: request, response, h2, method, requestId, startedAt, hasBody, grpc, serverSpan, unsampled })
  }

  return Object.assign(proxy, { http2: proxyH2 })
}
