import type { Span } from '@opentelemetry/api'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import type { Dispatcher } from 'undici'
import type { ErrorCode } from '../../core/errors.js'
import { pickEndpoint } from '../../core/instance-picker.js'
import { recordFailure, recordSuccess, type OutlierSettings } from '../../core/outlier-detection.js'
import { RetryBudget } from '../../core/retry-budget.js'
import type { RouteTable, VersionRoute } from '../../core/route-table.js'
import { childContext, currentTracing, endSpan, extractContext, injectContext, SpanKind, type Tracing } from '../../telemetry/tracing.js'
import type { ProxyConfig } from '../config.js'
import type { RouterMetrics } from '../metrics.js'
import type { Endpoint } from '../upstream/endpoint.js'
import { addressMatches, buildBlockList, downstreamHeaders, upstreamHeaders } from './forwarding-headers.js'
import { RequestBody } from './request-body.js'
import { stripPrefix, type RouteRules } from './route-rules.js'
import { VersionChooser } from './version-choice.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** what the proxy chose, for metrics and logs once the response is done */
    routed: { service: string; version: string } | null
  }
}

export interface ProxyDependencies {
  rules: RouteRules
  /** `ready` is false until the first table from the registry is in force */
  tables: { readonly table: RouteTable<Endpoint>; readonly ready?: boolean }
  config: ProxyConfig
  metrics: RouterMetrics
  log: FastifyBaseLogger
  clock?: () => number
  random?: () => number
  tracing?: Tracing
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])
/** errors raised before a request reached the instance: safe to retry for any method */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL'])

class RouteTimeout extends Error {}
class ClientGone extends Error {}

/**
 * The answer for an upstream body that failed before its first byte reached the client
 * (Fastify sends the status line with the first chunk, so the status can still change).
 */
export function upstreamBodyFailure(error: unknown): { status: number; code: ErrorCode; message: string } | undefined {
  if (error instanceof RouteTimeout) return { status: 504, code: 'ROUTE_TIMEOUT', message: error.message }
  const code = (error as { code?: unknown } | null)?.code
  if (code === 'UND_ERR_BODY_TIMEOUT') return { status: 504, code: 'UPSTREAM_TIMEOUT', message: 'the upstream stopped sending its response body' }
  if (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET') return { status: 502, code: 'UPSTREAM_RESET', message: 'the upstream connection failed before the response body' }
  return undefined
}

type Failure = { code: ErrorCode; message: string }

/**
 * The hot path: rule -> service route -> version -> endpoint -> undici dispatch, with
 * retries to another endpoint, a retry budget, outlier detection and streaming both ways.
 */
export function createProxyHandler(deps: ProxyDependencies) {
  const { rules, tables, config, metrics, log } = deps
  const clock = deps.clock ?? Date.now
  const random = deps.random ?? Math.random
  const chooser = new VersionChooser(config, random)
  const trustForwarded = buildBlockList(config.trustForwardedFrom)
  const anyTrustedProxy = config.trustForwardedFrom.length > 0
  const outlier: OutlierSettings = config.outlierDetection
  const budgets = new Map<string, RetryBudget>()
  const budgetSettings = { ratio: config.retries.budgetRatio, minPerSecond: config.retries.minPerSecond, windowSeconds: 10 }
  const { firstByteMs, idleMs } = config.timeouts
  const tracing = deps.tracing ?? currentTracing()
  const tracer = tracing.tracer
  const onFallback = (from: VersionRoute<Endpoint>) => metrics.fallbacks.inc({ service: from.service, version: from.name })

  function refuse(reply: FastifyReply, status: number, code: ErrorCode, message: string): FastifyReply {
    metrics.unrouted.inc({ reason: code })
    return reply.code(status).send({ code, message })
  }

  return async function proxy(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const raw = request.raw
    const headers = raw.headers
    // Fastify made it from the client's x-request-id (or a new one): see app.ts genReqId.
    const requestId = request.id
    reply.header('x-request-id', requestId)
    // Tracing off costs one branch per request; on, a server span covers the whole exchange.
    let serverSpan: Span | undefined
    let unsampled: Span | undefined
    if (tracing.enabled) {
      const span = tracer.startSpan(raw.method ?? 'GET', { kind: SpanKind.SERVER }, extractContext(headers))
      if (span.isRecording()) {
        // Sampled: the full span. Not sampled (say 99 of 100 at 1%): only its context travels on.
        serverSpan = span
        span.setAttributes({
          'http.request.method': raw.method ?? 'GET',
          'url.path': (raw.url ?? '/').split('?')[0],
          'client.address': raw.socket.remoteAddress ?? '',
          'switchyard.request_id': requestId
        })
        reply.raw.once('close', () => {
          const status = reply.raw.statusCode
          span.setAttribute('http.response.status_code', status)
          endSpan(span, status >= 500 ? `HTTP ${status}` : reply.raw.writableFinished ? undefined : 'client went away')
        })
      } else {
        unsampled = span
      }
    }

    // Node's parser already refuses most smuggling shapes; these are the ones it lets by.
    const transferEncoding = headers['transfer-encoding']
    if (transferEncoding !== undefined && (headers['content-length'] !== undefined || !/^chunked$/i.test(transferEncoding.trim()))) {
      // The rest of this connection's bytes cannot be trusted either (RFC 9112 6.1): close it.
      reply.header('connection', 'close')
      return refuse(reply, 400, 'REQUEST_SMUGGLING', 'Transfer-Encoding must be exactly "chunked" and cannot come with Content-Length')
    }

    const url = raw.url ?? '/'
    const rule = rules.match(headers.host, url)
    if (!rule) return refuse(reply, 404, 'ROUTE_NOT_FOUND', `no route matches ${headers.host ?? ''}${url.split('?')[0]}`)
    const route = tables.table.services.get(rule.service)
    if (!route) {
      if (tables.ready === false) return refuse(reply, 503, 'NO_ROUTE_TABLE', 'the router has no routing table from the registry yet')
      return refuse(reply, 503, 'UNKNOWN_SERVICE', `service ${rule.service} is not known to the registry (yet)`)
    }

    const clientAddress = raw.socket.remoteAddress
    const choice = chooser.choose(route, headers, clientAddress, onFallback)
    if ('error' in choice) return refuse(reply, 503, choice.error, choice.message)
    const version = choice.version
    reply.header('x-switchyard-version', version.name)
    request.routed = { service: route.name, version: version.name }
    serverSpan?.updateName(`${raw.method ?? 'GET'} ${rule.name}`)
    serverSpan?.setAttributes({
      'http.route': rule.pathPrefix ?? '/',
      'switchyard.route': rule.name,
      'switchyard.service': route.name,
      'switchyard.version': version.name,
      'switchyard.version.weight': version.weight / 100,
      'switchyard.registry.revision': tables.table.revision,
      'switchyard.choice': choice.reason
    })

    const method = raw.method ?? 'GET'
    const path = rule.stripPrefix && rule.pathPrefix !== undefined ? stripPrefix(url, rule.pathPrefix) : url
    const hasBody = transferEncoding !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0')
    const forwarded = upstreamHeaders(headers, {
      clientAddress,
      trustForwarded: anyTrustedProxy && addressMatches(trustForwarded, clientAddress),
      requestId,
      service: route.name,
      version: version.name,
      secretHeader: chooser.secretHeader
    })

    let budget = budgets.get(route.name)
    if (!budget) budgets.set(route.name, (budget = new RetryBudget(budgetSettings)))
    budget.recordRequest(clock())

    const abort = new AbortController()
    const timer = setTimeout(() => abort.abort(new RouteTimeout(`no answer from ${route.name} ${version.name} within ${rule.timeoutMs} ms`)), rule.timeoutMs)
    const inflight = metrics.inflightOf(route.name)
    inflight.inc()
    reply.raw.once('close', () => {
      clearTimeout(timer)
      inflight.dec()
      if (!reply.raw.writableFinished) abort.abort(new ClientGone())
    })

    // undici destroys the body of a failed attempt, so its unread rest can never be drained:
    // the next request on this keep-alive connection would wait behind it for good.
    const closeIfBodyUnread = () => {
      if (hasBody && !raw.complete) reply.header('connection', 'close')
    }
    let failedOn: Endpoint | undefined
    let retries = 0
    let failure: Failure | undefined
    for (;;) {
      const now = clock()
      const endpoint = pickEndpoint(version.endpoints, now, random, failedOn)
      if (!endpoint) {
        failure ??= { code: 'NO_HEALTHY_INSTANCE', message: `version ${version.name} of ${route.name} has no healthy instance` }
        break
      }
      endpoint.inflight++
      let attemptSpan: Span | undefined
      if (unsampled) injectContext(unsampled, forwarded)
      else if (serverSpan) {
        attemptSpan = tracer.startSpan(
          method,
          {
            kind: SpanKind.CLIENT,
            attributes: {
              'http.request.method': method,
              'server.address': endpoint.instance.host,
              'server.port': endpoint.instance.port,
              'switchyard.instance': endpoint.instance.id,
              'switchyard.version': version.name,
              'switchyard.retry_count': retries
            }
          },
          childContext(serverSpan)
        )
        injectContext(attemptSpan, forwarded)
      }
      let response: Dispatcher.ResponseData
      const body = hasBody ? new RequestBody(raw) : null
      try {
        response = await endpoint.pool.request({
          path,
          method: method as Dispatcher.HttpMethod,
          headers: forwarded,
          body,
          signal: abort.signal,
          headersTimeout: firstByteMs,
          bodyTimeout: idleMs
        })
      } catch (error) {
        endpoint.inflight--
        if (attemptSpan) endSpan(attemptSpan, (error as Error).message)
        if (abort.signal.aborted) {
          const reason = abort.signal.reason
          if (reason instanceof ClientGone) return reply
          clearTimeout(timer)
          closeIfBodyUnread()
          return refuse(reply, 504, 'ROUTE_TIMEOUT', `no answer from ${route.name} ${version.name} within ${rule.timeoutMs} ms`)
        }
        const code = (error as { code?: string }).code ?? ''
        const connectFailed = CONNECT_ERRORS.has(code)
        if (connectFailed) metrics.connectErrors.inc({ service: route.name, version: version.name })
        if (recordFailure(endpoint, version.endpoints, clock(), outlier)) {
          metrics.ejections.inc({ service: route.name, version: version.name })
          log.warn({ service: route.name, version: version.name, instance: endpoint.instance.id, address: endpoint.address }, 'outlier detection ejected an instance')
        }
        failure =
          code === 'UND_ERR_CONNECT_TIMEOUT'
            ? { code: 'UPSTREAM_CONNECT_TIMEOUT', message: `connecting to ${route.name} ${version.name} at ${endpoint.address} timed out` }
            : code === 'UND_ERR_HEADERS_TIMEOUT'
              ? { code: 'UPSTREAM_TIMEOUT', message: `${route.name} ${version.name} at ${endpoint.address} sent no response headers within ${firstByteMs} ms` }
              : connectFailed
                ? { code: 'UPSTREAM_UNREACHABLE', message: `cannot connect to ${route.name} ${version.name} at ${endpoint.address}` }
                : { code: 'UPSTREAM_RESET', message: `the connection to ${route.name} ${version.name} at ${endpoint.address} failed before a response` }
        // A body undici never started reading (refused connection, connect timeout) can be sent again.
        const bodyUntouched = body === null || !body.touched
        const retryable = code !== 'UND_ERR_HEADERS_TIMEOUT' && bodyUntouched && (connectFailed || IDEMPOTENT.has(method))
        if (retryable && retries < rule.retries && budget.tryRetry(clock())) {
          retries++
          failedOn = endpoint
          metrics.retries.inc({ service: route.name, version: version.name })
          continue
        }
        if (retryable && retries < rule.retries) metrics.retryBudgetExhausted.inc({ service: route.name })
        break
      }

      const status = response.statusCode
      attemptSpan?.setAttribute('http.response.status_code', status)
      if (status >= 500) {
        if (recordFailure(endpoint, version.endpoints, clock(), outlier)) {
          metrics.ejections.inc({ service: route.name, version: version.name })
          log.warn({ service: route.name, version: version.name, instance: endpoint.instance.id, address: endpoint.address }, 'outlier detection ejected an instance')
        }
        const retryable = (status === 502 || status === 503) && IDEMPOTENT.has(method) && (body === null || !body.touched) && retries < rule.retries && version.endpoints.length > 1
        if (retryable && !budget.tryRetry(clock())) metrics.retryBudgetExhausted.inc({ service: route.name })
        else if (retryable) {
          retries++
          failedOn = endpoint
          metrics.retries.inc({ service: route.name, version: version.name })
          await response.body.dump().catch(() => {})
          endpoint.inflight--
          if (attemptSpan) endSpan(attemptSpan, `HTTP ${status}, retried`)
          continue
        }
      } else {
        recordSuccess(endpoint, clock(), outlier)
      }
      response.body.once('close', () => {
        endpoint.inflight--
        if (attemptSpan) endSpan(attemptSpan, status >= 500 ? `HTTP ${status}` : undefined)
      })
      serverSpan?.setAttribute('switchyard.retries', retries)
      reply.code(status)
      reply.headers(downstreamHeaders(response.headers))
      reply.header('x-request-id', requestId)
      reply.header('x-switchyard-version', version.name)
      return reply.send(response.body)
    }
    clearTimeout(timer)
    closeIfBodyUnread()
    const status = failure.code === 'UPSTREAM_TIMEOUT' || failure.code === 'UPSTREAM_CONNECT_TIMEOUT' ? 504 : failure.code === 'NO_HEALTHY_INSTANCE' ? 503 : 502
    return refuse(reply, status, failure.code, failure.message)
  }
}
