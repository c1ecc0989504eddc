import type { IncomingHttpHeaders } from 'node:http'
import type { Http2ServerResponse } from 'node:http2'
import type { Readable } from 'node:stream'
import type { Span, Tracer } from '@opentelemetry/api'
import type { FastifyBaseLogger } from 'fastify'
import type { Dispatcher } from 'undici'
import { ErrorCodes, type ErrorBody } from '../../core/errors.js'
import { GrpcStatus, grpcStatusOfError, grpcStatusOfHttp, isGrpcServerFailure, parseGrpcStatus } from '../../core/grpc.js'
import { pickEndpoint } from '../../core/instance-picker.js'
import { recordSuccess, type OutlierSettings } from '../../core/outlier-detection.js'
import type { RetryBudget } from '../../core/retry-budget.js'
import type { ServiceRoute, VersionRoute } from '../../core/route-table.js'
import { childContext, endSpan, injectContext, SpanKind } from '../../telemetry/tracing.js'
import type { UpstreamProtocol } from '../config.js'
import type { RouterMetrics } from '../metrics.js'
import type { Endpoint } from '../upstream/endpoint.js'
import { endWithGrpcStatus, respondHeadOnly, sendGrpcError, type DownstreamResponse } from './downstream.js'
import { sendErrorAnswer } from './error-answer.js'
import { downstreamHeaderList, forwardedTrailers, h2DownstreamHeaderList } from './forwarding-headers.js'
import { dispatchH2, type H2UpstreamHandler } from './h2-upstream.js'
import { RequestBody } from './request-body.js'
import { retryAfterFailure, retryAfterStatus, type RetryFacts } from './retry-decision.js'
import type { RouteRule } from './route-rules.js'
import { errorCode, failureBeforeHead, failureMidAnswer } from './upstream-error.js'

/** The exchange's timer, injected so that timeouts can be tested on a fake clock. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

export const systemTimers: Timers = { setTimeout, clearTimeout }

/** What every exchange of one listener shares. */
export interface ExchangeSettings {
  metrics: RouterMetrics
  log: FastifyBaseLogger
  /** ms timestamps; the timers below must run on the same clock */
  clock: () => number
  timers: Timers
  random: () => number
  tracer: Tracer
  outlier: OutlierSettings
  firstByteMs: number
  idleMs: number
}

/** Where the router decided to send one request, before any attempt. */
export interface ExchangePlan {
  rule: RouteRule
  route: ServiceRoute<Endpoint>
  version: VersionRoute<Endpoint>
  method: string
  path: string
  headers: Record<string, string | string[]>
  hasBody: boolean
  requestId: string
  budget: RetryBudget
  /** performance.now() when the request arrived */
  startedAt: number
  serverSpan: Span | undefined
  /** the context of an unsampled request: only passed on, never recorded */
  unsampled: Span | undefined
  /** how the instances are spoken to (the rule's protocol) */
  protocol: UpstreamProtocol
  /** the client's request is a gRPC call (content-type application/grpc): the router's own answers are gRPC statuses */
  grpcCall: boolean
  /** the call's deadline from its grpc-timeout, in ms from arrival (gRPC routes) */
  deadlineMs: number | undefined
  /** the client's response when it came over HTTP/2 (trailers, head-only answers) */
  h2: Http2ServerResponse | undefined
}

/** The client's request body: Node's IncomingMessage, or the HTTP/2 compatibility request. */
export type ClientBody = Readable & { readonly complete: boolean }

/** A 5xx body read and thrown away before a retry, so its connection stays usable; past this, the connection is dropped instead. */
const DRAIN_LIMIT = 64 * 1024
/** Status recorded for a request whose client left before any answer (as nginx logs it). */
const CLIENT_CLOSED = 499

class ExchangeEnded extends Error {}

/** No response head within firstByteMs: reported like undici's own headers timeout. */
class FirstByteTimeout extends Error {
  readonly code = 'UND_ERR_HEADERS_TIMEOUT'
}

/** A server-sent events answer, from the head `downstreamHeaderList` made (lower-case names). */
function isEventStream(head: readonly string[]): boolean {
  for (let index = 0; index < head.length; index += 2) {
    if (head[index] === 'content-type') return (head[index + 1] as string).toLowerCase().startsWith('text/event-stream')
  }
  return false
}

/**
 * One upstream attempt of an exchange: the undici dispatch handler (undici 7's own
 * callback interface, which it calls without wrapping), or the HTTP/2 one
 * (h2-upstream.ts), that hands each event to the exchange, tagged with the attempt it
 * belongs to.
 */
class UpstreamAttempt implements Dispatcher.DispatchHandler, H2UpstreamHandler {
  abortUpstream: ((reason: Error) => void) | undefined
  /** upstream status once its head arrived; 0 before */
  status = 0
  /** the client's response head, held back until the first body byte (until then the answer can still become a 502/504) */
  head: string[] | undefined
  /** an HTTP/2 head that ended the stream (gRPC trailers-only): the client gets it in the same form */
  headOnly = false
  resume: (() => void) | undefined
  /** a 5xx being read to its end before the exchange retries elsewhere */
  draining = false
  drained = 0
  settled = false
  /** an abort decided before undici handed over its abort function */
  pendingAbort: Error | undefined
  /** clock time by which the response head must have arrived */
  firstByteDeadline = 0

  constructor(
    readonly exchange: Exchange,
    readonly endpoint: Endpoint,
    readonly span: Span | undefined,
    readonly body: RequestBody | null
  ) {}

  onConnect(abort: (reason?: Error) => void): void {
    this.abortUpstream = abort
    if (this.exchange.ended) abort(new ExchangeEnded())
    else if (this.pendingAbort) abort(this.pendingAbort)
  }
  onHeaders(status: number, rawHeaders: Buffer[], resume: () => void): boolean {
    return this.exchange.upstreamHeaders(this, status, rawHeaders, resume)
  }
  onData(chunk: Buffer): boolean {
    return this.exchange.upstreamData(this, chunk)
  }
  onComplete(): void {
    this.exchange.upstreamComplete(this, undefined)
  }
  onH2Headers(status: number, headers: IncomingHttpHeaders, endStream: boolean, resume: () => void): void {
    this.exchange.upstreamHeaders(this, status, headers, resume, endStream)
  }
  onH2Complete(trailers: IncomingHttpHeaders | undefined): void {
    this.exchange.upstreamComplete(this, trailers)
  }
  onError(error: Error): void {
    this.exchange.upstreamError(this, error)
  }
}

/**
 * One client request on its way through the proxy: attempts against endpoints of the
 * chosen version (retrying elsewhere on connection failures and retryable 5xx, within the
 * retry budget), the route timeout, and the upstream answer streamed straight onto the
 * client's response with backpressure both ways.
 */
export class Exchange {
  /** the answer is complete, or nobody waits for it any more (client gone, route timeout) */
  ended = false
  private attempt: UpstreamAttempt | undefined
  private retries = 0
  private failedOn: Endpoint | undefined
  private failure: ErrorBody | undefined
  /** one timer per exchange, armed for the earliest of the route deadline and the current attempt's first-byte deadline */
  private timer: unknown
  private timerFor: UpstreamAttempt | 'route' = 'route'
  private routeDeadline = 0
  /** a gRPC route's call status: from the upstream's head or trailers, or the router's own answer */
  private grpcStatus: number | undefined
  private readonly inflight

  constructor(
    private readonly settings: ExchangeSettings,
    private readonly request: ClientBody,
    private readonly response: DownstreamResponse,
    private readonly plan: ExchangePlan
  ) {
    this.inflight = settings.metrics.inflightOf(plan.route.name)
  }

  start(): void {
    const { plan } = this
    this.inflight.inc()
    this.response.on('close', this.onClose)
    const now = this.settings.clock()
    this.routeDeadline = now + (plan.protocol === 'grpc' ? grpcDeadline(plan) : plan.rule.timeoutMs)
    plan.budget.recordRequest(now)
    this.dispatch()
    if (!this.ended) this.armTimer()
  }

  /**
   * The first-byte timeout is kept here rather than handed to undici: undici keeps one
   * timer per connection and re-creates it whenever the value changes between the head
   * and the body phase, which at full load is two timer objects per request that live
   * long enough to be promoted and fill the old generation.
   */
  private armTimer(): void {
    let due = this.routeDeadline
    let target: UpstreamAttempt | 'route' = 'route'
    const attempt = this.attempt
    if (attempt && attempt.status === 0 && !attempt.settled && attempt.firstByteDeadline < due) {
      due = attempt.firstByteDeadline
      target = attempt
    }
    this.timerFor = target
    // A gRPC call without a deadline (streams may last): nothing to time.
    if (due === Infinity) return
    this.timer = this.settings.timers.setTimeout(this.onTimer, Math.max(0, due - this.settings.clock()))
  }

  private readonly onTimer = (): void => {
    if (this.ended) return
    const target = this.timerFor
    if (target === 'route') return this.routeTimeout()
    if (target === this.attempt && target.status === 0 && !target.settled) {
      const timeout = new FirstByteTimeout(`no response head within ${this.settings.firstByteMs} ms`)
      if (target.abortUpstream) target.abortUpstream(timeout)
      else target.pendingAbort = timeout
    }
    if (!this.ended) this.armTimer()
  }

  private dispatch(): void {
    const { plan, settings } = this
    const endpoint = pickEndpoint(plan.version.endpoints, settings.clock(), settings.random, this.failedOn)
    if (!endpoint) {
      this.failure ??= { code: 'NO_HEALTHY_INSTANCE', message: `version ${plan.version.name} of ${plan.route.name} has no healthy instance` }
      return this.answerFailure(this.failure)
    }
    endpoint.inflight++
    let span: Span | undefined
    if (plan.unsampled) injectContext(plan.unsampled, plan.headers)
    else if (plan.serverSpan) {
      span = settings.tracer.startSpan(
        plan.method,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            'http.request.method': plan.method,
            'server.address': endpoint.instance.host,
            'server.port': endpoint.instance.port,
            'switchyard.instance': endpoint.instance.id,
            'switchyard.version': plan.version.name,
            'switchyard.retry_count': this.retries
          }
        },
        childContext(plan.serverSpan)
      )
      injectContext(span, plan.headers)
    }
    const attempt = new UpstreamAttempt(this, endpoint, span, plan.hasBody ? new RequestBody(this.request) : null)
    const protocol = plan.protocol
    // gRPC: a server may send its head only with its first message, as late as the call wants.
    attempt.firstByteDeadline = protocol === 'grpc' ? Infinity : settings.clock() + settings.firstByteMs
    this.attempt = attempt
    if (protocol !== 'http1') {
      const grpc = protocol === 'grpc'
      const options = { method: plan.method, path: plan.path, headers: plan.headers, body: attempt.body, grpc, idleMs: grpc ? 0 : settings.idleMs }
      return dispatchH2(endpoint.h2, options, attempt)
    }
    endpoint.pool.dispatch(
      {
        path: plan.path,
        method: plan.method as Dispatcher.HttpMethod,
        headers: plan.headers,
        body: attempt.body,
        // undici's own head timeout is only a backstop (see armTimer); equal to the idle
        // timeout where possible, so that a connection's timer is refreshed, not re-created.
        headersTimeout: Math.max(settings.firstByteMs, settings.idleMs),
        bodyTimeout: settings.idleMs
      },
      attempt
    )
  }

  /** `raw`: undici's raw header bytes, or an HTTP/2 upstream's headers object; `headOnly`: the HTTP/2 head ended the stream */
  upstreamHeaders(attempt: UpstreamAttempt, status: number, raw: Buffer[] | IncomingHttpHeaders, resume: () => void, headOnly = false): boolean {
    // Informational answers (103 Early Hints...) are not passed on; the final one follows.
    if (status < 200) return true
    const { plan, settings } = this
    const { endpoint } = attempt
    attempt.status = status
    attempt.span?.setAttribute('http.response.status_code', status)
    if (status >= 500) {
      this.noteFailure(endpoint)
      if (!this.ended && retryAfterStatus(status, this.retryFacts(attempt), plan.version.endpoints.length) && this.retryGranted(endpoint)) {
        // Read to its end and thrown away (keeping the connection), then the next attempt.
        attempt.draining = true
        return true
      }
    } else if (plan.protocol !== 'grpc') {
      // A gRPC call's outcome is its grpc-status, known at its end (judgeGrpcCall).
      recordSuccess(endpoint, settings.clock(), settings.outlier)
    }
    plan.serverSpan?.setAttribute('switchyard.retries', this.retries)
    // Nobody waits for it any more (client gone, route timeout): no head to build.
    if (this.ended) return true
    attempt.resume = resume
    if (!Array.isArray(raw)) return this.h2Head(attempt, status, raw, headOnly)
    const head = downstreamHeaderList(raw, plan.requestId, plan.version.name)
    if (isEventStream(head)) {
      // Server-sent events: the client learns the stream is open from the head, which may
      // come long before the first event, so it goes out now.
      this.response.writeHead(status, head)
      this.response.flushHeaders()
    } else {
      attempt.head = head
    }
    return true
  }

  /** An HTTP/2 upstream's head: a gRPC call's goes out at once (the client waits for its metadata), a head-only answer at completion. */
  private h2Head(attempt: UpstreamAttempt, status: number, headers: IncomingHttpHeaders, headOnly: boolean): boolean {
    const { plan } = this
    const head = h2DownstreamHeaderList(headers, plan.requestId, plan.version.name)
    if (headOnly) {
      if (plan.protocol === 'grpc') this.grpcStatus = parseGrpcStatus(headers['grpc-status'])
      attempt.head = head
      attempt.headOnly = true
    } else if (plan.protocol === 'grpc' || isEventStream(head)) {
      this.response.writeHead(status, head)
      this.response.flushHeaders()
    } else {
      attempt.head = head
    }
    return true
  }

  upstreamData(attempt: UpstreamAttempt, chunk: Buffer): boolean {
    if (attempt.draining) {
      attempt.drained += chunk.length
      if (attempt.drained > DRAIN_LIMIT) attempt.abortUpstream?.(new ExchangeEnded())
      return true
    }
    if (this.ended) return false
    const { response } = this
    if (attempt.head) {
      response.writeHead(attempt.status, attempt.head)
      attempt.head = undefined
    }
    if (response.write(chunk)) return true
    if (attempt.resume) response.once('drain', attempt.resume)
    return false
  }

  /** `trailers`: an HTTP/2 upstream's (gRPC's grpc-status and grpc-message among them) */
  upstreamComplete(attempt: UpstreamAttempt, trailers: IncomingHttpHeaders | undefined): void {
    if (!this.settle(attempt)) return
    if (attempt.draining) {
      if (attempt.span) endSpan(attempt.span, `HTTP ${attempt.status}, retried`)
      if (!this.ended) this.dispatch()
      return
    }
    if (attempt.span) endSpan(attempt.span, attempt.status >= 500 ? `HTTP ${attempt.status}` : undefined)
    if (this.ended) return
    this.finish()
    const { plan, response } = this
    if (plan.protocol === 'grpc') {
      if (trailers) this.grpcStatus = parseGrpcStatus(trailers['grpc-status'])
      this.judgeGrpcCall(attempt)
    }
    if (attempt.head) {
      if (attempt.headOnly && plan.h2) return respondHeadOnly(plan.h2, attempt.status, attempt.head)
      response.writeHead(attempt.status, attempt.head)
    }
    // An HTTP/1.1 client would need chunked encoding and TE: trailers for them: only HTTP/2 clients get trailers.
    if (trailers) plan.h2?.addTrailers(forwardedTrailers(trailers))
    response.end()
  }

  /**
   * Outlier detection for a gRPC call answered with HTTP 200: its grpc-status decides
   * (UNAVAILABLE, INTERNAL... count as a 5xx would; a 200 without grpc-status is broken,
   * UNKNOWN to the client). HTTP 5xx answers were counted at their head.
   */
  private judgeGrpcCall(attempt: UpstreamAttempt): void {
    if (attempt.status >= 500) return
    const status = this.grpcStatus ?? grpcStatusOfHttp(attempt.status)
    if (isGrpcServerFailure(status)) this.noteFailure(attempt.endpoint)
    else recordSuccess(attempt.endpoint, this.settings.clock(), this.settings.outlier)
  }

  upstreamError(attempt: UpstreamAttempt, error: Error): void {
    if (!this.settle(attempt)) return
    if (attempt.span) endSpan(attempt.span, error.message)
    if (attempt.draining) {
      // The 5xx being thrown away failed or was cut short: the retry goes ahead anyway.
      if (!this.ended) this.dispatch()
      return
    }
    if (this.ended) return
    const { plan, settings } = this
    if (attempt.status !== 0) {
      // Cut short by the upstream after its head (a reset, a crash, an idle body): the instance failed this request.
      this.noteFailure(attempt.endpoint)
      return this.failMidAnswer(error)
    }

    const { endpoint } = attempt
    const failure = failureBeforeHead(errorCode(error), `${plan.route.name} ${plan.version.name} at ${endpoint.address}`, settings.firstByteMs)
    if (failure.connectFailed) settings.metrics.connectErrors.inc({ service: plan.route.name, version: plan.version.name })
    this.noteFailure(endpoint)
    this.failure = failure.answer
    if (retryAfterFailure(failure, this.retryFacts(attempt)) && this.retryGranted(endpoint)) return this.dispatch()
    this.answerFailure(failure.answer)
  }

  private retryFacts(attempt: UpstreamAttempt): RetryFacts {
    // A body undici never started reading (refused connection, connect timeout) can be sent again.
    return { method: this.plan.method, bodyReplayable: attempt.body === null || !attempt.body.touched, retries: this.retries, maxRetries: this.plan.rule.retries }
  }

  /** A retry the decision allows, if the service's retry budget has room for it (counted either way). */
  private retryGranted(endpoint: Endpoint): boolean {
    const { plan, settings } = this
    if (!plan.budget.tryRetry(settings.clock())) {
      settings.metrics.retryBudgetExhausted.inc({ service: plan.route.name })
      return false
    }
    this.retries++
    this.failedOn = endpoint
    settings.metrics.retries.inc({ service: plan.route.name, version: plan.version.name })
    return true
  }

  /** The first settlement of an attempt releases its endpoint; later ones are ignored. */
  private settle(attempt: UpstreamAttempt): boolean {
    if (attempt.settled) return false
    attempt.settled = true
    attempt.endpoint.inflight--
    return true
  }

  private noteFailure(endpoint: Endpoint): void {
    const { plan, settings } = this
    const versionEndpoints = plan.version.endpoints
    if (!endpoint.countFailure(versionEndpoints, settings.clock(), settings.outlier)) return
    settings.metrics.ejections.inc({ service: plan.route.name, version: plan.version.name })
    // The request that tipped it over, so that the line joins its trace.
    const trace = plan.serverSpan?.spanContext()
    const request = { request_id: plan.requestId, ...(trace ? { trace_id: trace.traceId, span_id: trace.spanId } : {}) }
    settings.log.warn(
      { service: plan.route.name, version: plan.version.name, instance: endpoint.instance.id, address: endpoint.address, ...request },
      'outlier detection ejected an instance'
    )
  }

  /** The upstream answer broke after its head arrived. */
  private failMidAnswer(error: Error): void {
    this.finish()
    const { response } = this
    const failure = failureMidAnswer(errorCode(error), error.message)
    // Bytes of it already reached the client: cut the connection so it sees a truncated answer, not a complete one.
    if (response.headersSent) return this.cut(failure)
    this.answer(failure)
  }

  /**
   * Ends an answer whose first bytes are out: the client must see it broken, and the
   * metrics count it. A gRPC call over HTTP/2 ends with the failure as its status
   * (trailers); anything else loses its connection (HTTP/1.1) or stream (HTTP/2).
   */
  private cut(failure: ErrorBody): void {
    const { plan } = this
    this.settings.metrics.truncated.inc({ service: plan.route.name, version: plan.version.name })
    if (plan.grpcCall && plan.h2 && !plan.h2.writableEnded) {
      this.grpcStatus = grpcStatusOfError(failure.code, ErrorCodes[failure.code])
      return endWithGrpcStatus(plan.h2, this.grpcStatus, `${failure.code}: ${failure.message}`)
    }
    this.response.destroy()
  }

  private answerFailure(failure: ErrorBody): void {
    this.finish()
    this.answer(failure)
  }

  private answer(failure: ErrorBody): void {
    const { plan } = this
    if (plan.grpcCall) {
      this.grpcStatus = sendGrpcError(this.response, plan.h2, failure, plan.requestId, plan.version.name)
      return
    }
    // undici dropped the unread rest of a failed attempt's body: it can never be drained (an HTTP/2 stream needs no draining).
    const bodyUnread = plan.hasBody && !this.request.complete && plan.h2 === undefined
    sendErrorAnswer(this.response, failure, plan.requestId, plan.version.name, bodyUnread)
  }

  private finish(): void {
    this.ended = true
    this.settings.timers.clearTimeout(this.timer)
  }

  private routeTimeout(): void {
    this.finish()
    this.attempt?.abortUpstream?.(new ExchangeEnded())
    const { plan, response } = this
    const failure: ErrorBody =
      plan.protocol === 'grpc'
        ? { code: 'ROUTE_TIMEOUT', message: `the call's deadline passed (${grpcDeadline(plan)} ms) before ${plan.route.name} ${plan.version.name} finished` }
        : { code: 'ROUTE_TIMEOUT', message: `no answer from ${plan.route.name} ${plan.version.name} within ${plan.rule.timeoutMs} ms` }
    // Part of the answer is out: all that can be said now is that it is incomplete.
    if (response.headersSent) this.cut(failure)
    else this.answer(failure)
  }

  private readonly onClose = (): void => {
    const { plan, response } = this
    const clientLeft = !this.ended
    if (clientLeft) {
      // The client went away first: stop the upstream work done for it.
      this.finish()
      this.attempt?.abortUpstream?.(new ExchangeEnded())
    }
    this.inflight.dec()
    const status = response.headersSent ? response.statusCode : CLIENT_CLOSED
    const seconds = (performance.now() - plan.startedAt) / 1000
    if (plan.protocol !== 'grpc') return this.settings.metrics.recordRequest(plan.route.name, plan.version.name, status, seconds)
    // A call without a grpc-status of its own (a plain HTTP answer) has the one a gRPC client would read from its HTTP status.
    const grpcStatus = clientLeft ? GrpcStatus.CANCELLED : (this.grpcStatus ?? grpcStatusOfHttp(status))
    this.settings.metrics.recordGrpcCall(plan.route.name, plan.version.name, grpcStatus, seconds)
  }
}

/** A gRPC call's deadline: its grpc-timeout, capped by its rule's own timeoutMs; none without either (streams may last). */
function grpcDeadline(plan: ExchangePlan): number {
  const own = plan.rule.ownTimeoutMs ?? Infinity
  return plan.deadlineMs === undefined ? own : Math.min(plan.deadlineMs, own)
}
