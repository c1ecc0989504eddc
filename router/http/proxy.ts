import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Span } from '@opentelemetry/api'
import type { FastifyBaseLogger } from 'fastify'
import type { ErrorCode } from '../../core/errors.js'
import { RetryBudget } from '../../core/retry-budget.js'
import type { RouteTable } from '../../core/route-table.js'
import { currentTracing, endSpan, type Tracing } from '../../telemetry/tracing.js'
import type { ProxyConfig } from '../config.js'
import type { RouterMetrics } from '../metrics.js'
import type { Endpoint } from '../upstream/endpoint.js'
import { sendErrorAnswer } from './error-answer.js'
import { Exchange, systemTimers, type ExchangeSettings, type Timers } from './exchange.js'
import { acceptableRequestId, addressMatches, buildBlockList, upstreamHeaders } from './forwarding-headers.js'
import { RequestRouting } from './request-routing.js'
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
}

/** The proxy listener's request handler, on Node's own request and response objects. */
export type ProxyHandler = (request: IncomingMessage, response: ServerResponse) => void

const CHUNKED = /^chunked$/i

/**
 * The hot path: rule -> service route -> version -> (exchange) endpoint -> undici
 * dispatch. It works on Node's request and response directly, with no framework objects
 * in between, so a proxied request costs little more than the two HTTP exchanges it is.
 */
export function createProxyHandler(deps: ProxyDependencies): ProxyHandler {
  const { rules, tables, config, metrics } = deps
  const random = deps.random ?? Math.random
  const routing = new RequestRouting({ rules, tables, config, metrics, random })
  const trustForwarded = buildBlockList(config.trustForwardedFrom)
  const anyTrustedProxy = config.trustForwardedFrom.length > 0
  const budgets = new Map<string, RetryBudget>()
  const budgetSettings = { ratio: config.retries.budgetRatio, minPerSecond: config.retries.minPerSecond, windowSeconds: 10 }
  const tracing = deps.tracing ?? currentTracing()
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

  function refuse(response: ServerResponse, requestId: string, code: ErrorCode, message: string, closeConnection = false): void {
    metrics.unrouted.inc({ reason: code })
    sendErrorAnswer(response, { code, message }, requestId, undefined, closeConnection)
  }

  return function proxy(request, response) {
    const startedAt = performance.now()
    const headers = request.headers
    const method = request.method ?? 'GET'
    // The client's sane x-request-id travels on; otherwise the edge makes one.
    const requestId = acceptableRequestId(headers['x-request-id']) ?? randomUUID()
    // Tracing off costs one branch per request; on, a server span covers the whole exchange.
    let serverSpan: Span | undefined
    let unsampled: Span | undefined
    if (tracing.enabled) {
      const span = startServerSpan(tracing.tracer, request, method, requestId)
      if (span.isRecording()) {
        serverSpan = span
        response.once('close', () => {
          const status = response.statusCode
          span.setAttribute('http.response.status_code', status)
          endSpan(span, status >= 500 ? `HTTP ${status}` : response.writableFinished ? undefined : 'client went away')
        })
      } else {
        unsampled = span
      }
    }

    // Node's parser already refuses most smuggling shapes; these are the ones it lets by.
    const transferEncoding = headers['transfer-encoding']
    if (transferEncoding !== undefined && (headers['content-length'] !== undefined || !CHUNKED.test(transferEncoding.trim()))) {
      // The rest of this connection's bytes cannot be trusted either (RFC 9112 6.1): close it.
      return refuse(response, requestId, 'REQUEST_SMUGGLING', 'Transfer-Encoding must be exactly "chunked" and cannot come with Content-Length', true)
    }
    const routed = routing.route(request)
    if ('refused' in routed) return refuse(response, requestId, routed.refused, routed.message)
    const { rule, route, version } = routed
    const clientAddress = request.socket.remoteAddress
    if (serverSpan) describeRoute(serverSpan, method, routed, tables.table.revision)

    const hasBody = transferEncoding !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0')
    let budget = budgets.get(route.name)
    if (!budget) budgets.set(route.name, (budget = new RetryBudget(budgetSettings)))
    const exchange = new Exchange(settings, request, response, {
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
        replaceTraceHeaders: tracing.enabled
      }),
      hasBody,
      requestId,
      budget,
      startedAt,
      serverSpan,
      unsampled
    })
    exchange.start()
  }
}
