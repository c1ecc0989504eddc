import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Span } from '@opentelemetry/api'
import type { FastifyBaseLogger } from 'fastify'
import type { ErrorCode } from '../../core/errors.js'
import { RetryBudget } from '../../core/retry-budget.js'
import type { RouteTable, VersionRoute } from '../../core/route-table.js'
import { currentTracing, endSpan, extractContext, SpanKind, type Tracing } from '../../telemetry/tracing.js'
import type { ProxyConfig } from '../config.js'
import type { RouterMetrics } from '../metrics.js'
import type { Endpoint } from '../upstream/endpoint.js'
import { sendErrorAnswer } from './error-answer.js'
import { Exchange, systemTimers, type ExchangeSettings, type Timers } from './exchange.js'
import { acceptableRequestId, addressMatches, buildBlockList, upstreamHeaders } from './forwarding-headers.js'
import { absoluteForm, hasOneHostAtMost, normalizePath } from './request-target.js'
import { stripPrefix, type RouteRules } from './route-rules.js'
import { VersionChooser } from './version-choice.js'

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
const SLASH = 0x2f

/**
 * The hot path: rule -> service route -> version -> (exchange) endpoint -> undici
 * dispatch. It works on Node's request and response directly, with no framework objects
 * in between, so a proxied request costs little more than the two HTTP exchanges it is.
 */
export function createProxyHandler(deps: ProxyDependencies): ProxyHandler {
  const { rules, tables, config, metrics } = deps
  const random = deps.random ?? Math.random
  const chooser = new VersionChooser(config, random)
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
  const onFallback = (from: VersionRoute<Endpoint>) => metrics.fallbacks.inc({ service: from.service, version: from.name })

  function refuse(response: ServerResponse, requestId: string, code: ErrorCode, message: string, closeConnection = false): void {
    metrics.unrouted.inc({ reason: code })
    sendErrorAnswer(response, { code, message }, requestId, undefined, closeConnection)
  }

  return function proxy(request, response) {
    const startedAt = performance.now()
    const headers = request.headers
    const method = request.method ?? 'GET'
    const url = request.url ?? '/'
    // The client's sane x-request-id travels on; otherwise the edge makes one.
    const requestId = acceptableRequestId(headers['x-request-id']) ?? randomUUID()
    // Tracing off costs one branch per request; on, a server span covers the whole exchange.
    let serverSpan: Span | undefined
    let unsampled: Span | undefined
    if (tracing.enabled) {
      const span = tracing.tracer.startSpan(method, { kind: SpanKind.SERVER }, extractContext(headers))
      if (span.isRecording()) {
        // Sampled: the full span. Not sampled (say 99 of 100 at 1%): only its context travels on.
        serverSpan = span
        span.setAttributes({
          'http.request.method': method,
          'url.path': url.split('?')[0],
          'client.address': request.socket.remoteAddress ?? '',
          'switchyard.request_id': requestId
        })
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
    if (!hasOneHostAtMost(request.rawHeaders)) return refuse(response, requestId, 'MALFORMED_REQUEST', 'more than one Host header')
    let target = url
    let host = headers.host
    if (target.charCodeAt(0) !== SLASH) {
      const absolute = absoluteForm(target)
      if ('refused' in absolute) return refuse(response, requestId, 'INVALID_PATH', absolute.refused)
      target = absolute.target
      host = absolute.authority
    }
    // Rules match, and the upstream receives, the canonical path: no path trick reaches another rule.
    const path = normalizePath(target, config.paths)
    if (typeof path !== 'string') return refuse(response, requestId, 'INVALID_PATH', path.refused)
    const rule = rules.match(host, path)
    if (!rule) return refuse(response, requestId, 'ROUTE_NOT_FOUND', `no route matches ${host ?? ''}${path.split('?')[0]}`)
    const route = tables.table.services.get(rule.service)
    if (!route) {
      if (tables.ready === false) return refuse(response, requestId, 'NO_ROUTE_TABLE', 'the router has no routing table from the registry yet')
      return refuse(response, requestId, 'UNKNOWN_SERVICE', `service ${rule.service} is not known to the registry (yet)`)
    }

    const clientAddress = request.socket.remoteAddress
    const choice = chooser.choose(route, headers, clientAddress, onFallback)
    if ('error' in choice) return refuse(response, requestId, choice.error, choice.message)
    const version = choice.version
    if (serverSpan) {
      serverSpan.updateName(`${method} ${rule.name}`)
      serverSpan.setAttributes({
        'http.route': rule.pathPrefix ?? '/',
        'switchyard.route': rule.name,
        'switchyard.service': route.name,
        'switchyard.version': version.name,
        'switchyard.version.weight': version.weight / 100,
        'switchyard.registry.revision': tables.table.revision,
        'switchyard.choice': choice.reason
      })
    }

    const hasBody = transferEncoding !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0')
    let budget = budgets.get(route.name)
    if (!budget) budgets.set(route.name, (budget = new RetryBudget(budgetSettings)))
    const exchange = new Exchange(settings, request, response, {
      rule,
      route,
      version,
      method,
      path: rule.stripPrefix && rule.pathPrefix !== undefined ? stripPrefix(path, rule.pathPrefix) : path,
      headers: upstreamHeaders(headers, {
        clientAddress,
        host,
        trustForwarded: anyTrustedProxy && addressMatches(trustForwarded, clientAddress),
        requestId,
        service: route.name,
        version: version.name,
        secretHeader: chooser.secretHeader,
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
