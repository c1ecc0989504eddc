import { randomUUID } from 'node:crypto'
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Span, Tracer } from '@opentelemetry/api'
import { ErrorCodes, type ErrorBody, type ErrorCode } from '../../core/errors.js'
import { pickEndpoint } from '../../core/instance-picker.js'
import { recordSuccess } from '../../core/outlier-detection.js'
import type { RouteTable } from '../../core/route-table.js'
import { currentTracing, endSpan, injectContext, type Tracing } from '../../telemetry/tracing.js'
import type { ProxyConfig } from '../config.js'
import type { RouterMetrics } from '../metrics.js'
import type { Endpoint } from '../upstream/endpoint.js'
import { acceptableRequestId, addressMatches, buildBlockList, downstreamHeaderList, upstreamHeaders } from './forwarding-headers.js'
import { responseHead, writeRawErrorAnswer } from './raw-answer.js'
import { RequestRouting, type RoutedRequest } from './request-routing.js'
import type { RouteRules } from './route-rules.js'
import { describeRoute, startServerSpan } from './server-span.js'
import { UpgradeTunnel } from './upgrade-tunnel.js'
import type { UpgradeTunnels } from './upgrade-tunnels.js'
import { errorCode, failureBeforeHead } from './upstream-error.js'
import { isWebSocket } from './websocket-frames.js'

export interface UpgradeDependencies {
  rules: RouteRules
  tables: { readonly table: RouteTable<Endpoint>; readonly ready?: boolean }
  config: ProxyConfig
  metrics: RouterMetrics
  tunnels: UpgradeTunnels
  /** the listener speaks TLS: upstreams are told x-forwarded-proto https */
  secure?: boolean
  clock?: () => number
  random?: () => number
  tracing?: Tracing
}

/** Node's `server.on('upgrade')` listener. */
export type UpgradeHandler = (request: IncomingMessage, socket: Duplex, head: Buffer) => void

/** What every handshake of one listener shares. */
interface HandshakeSettings {
  config: ProxyConfig
  metrics: RouterMetrics
  tunnels: UpgradeTunnels
  clock: () => number
  random: () => number
  tracer: Tracer
}

/** A timeout of the handshake, coded as undici's so that upstream-error.ts words it the same. */
class HandshakeTimeout extends Error {
  constructor(
    readonly code: 'UND_ERR_CONNECT_TIMEOUT' | 'UND_ERR_HEADERS_TIMEOUT',
    message: string
  ) {
    super(message)
  }
}

const ignore = () => {}

/**
 * HTTP/1.1 Upgrade (WebSocket and any other protocol): the request is routed like any
 * other (rules, forced/sticky/weighted version, instance), sent to the instance with its
 * Upgrade, and on a 101 the two sockets are joined (upgrade-tunnel.ts); any other answer
 * goes back as an ordinary answer and the connection closes. The upstream side uses
 * Node's http client, not the instance's undici pool: undici's upgrade API hands over the
 * socket only after its own bookkeeping and keeps it out of the pool's limits anyway, and
 * Node's client gives the raw socket plus the bytes that came after the 101 head.
 *
 * `Upgrade: h2c` is never passed on (a tunnel to an HTTP/2 upstream would carry requests
 * that skip the router's rules): the request is answered as an ordinary one, as RFC 9110
 * 7.8 lets a server ignore an Upgrade.
 */
export function createUpgradeHandler(deps: UpgradeDependencies): UpgradeHandler {
  const { config, metrics, tunnels } = deps
  const random = deps.random ?? Math.random
  const routing = new RequestRouting({ rules: deps.rules, tables: deps.tables, config, metrics, random })
  const trustForwarded = buildBlockList(config.trustForwardedFrom)
  const anyTrustedProxy = config.trustForwardedFrom.length > 0
  const tracing = deps.tracing ?? currentTracing()
  const settings: HandshakeSettings = { config, metrics, tunnels, clock: deps.clock ?? Date.now, random, tracer: tracing.tracer }
  const proto = deps.secure ? 'https' : 'http'

  return function upgrade(request, socket, head) {
    const client = socket as Socket
    // Node removed its own error listener when it handed the socket over.
    client.on('error', ignore)
    const startedAt = performance.now()
    const headers = request.headers
    const method = request.method ?? 'GET'
    const requestId = acceptableRequestId(headers['x-request-id']) ?? randomUUID()
    let span: Span | undefined
    let unsampled: Span | undefined
    if (tracing.enabled) {
      const started = startServerSpan(tracing.tracer, request, method, requestId)
      if (started.isRecording()) span = started.setAttribute('switchyard.upgrade', String(headers.upgrade))
      else unsampled = started
    }
    const reject = (code: ErrorCode, message: string) => {
      metrics.unrouted.inc({ reason: code })
      metrics.upgrades.inc({ result: 'rejected' })
      writeRawErrorAnswer(client, { code, message }, requestId, undefined)
      if (span) endSpan(span, ErrorCodes[code] >= 500 ? code : undefined)
    }

    const protocol = headers.upgrade
    const passOn = protocol !== undefined && protocol.trim().toLowerCase() !== 'h2c'
    // Node hands the bytes after the head over as tunnel data: a body here would reach the
    // upstream as the start of the next request if it did not switch. Only an ignored (h2c)
    // upgrade may carry one, delimited by Content-Length (curl --http2 -d sends those).
    const contentLength = headers['content-length'] ?? '0'
    if (headers['transfer-encoding'] !== undefined || (passOn && contentLength !== '0')) {
      return reject('REQUEST_SMUGGLING', 'an upgrade request cannot carry a body (h2c: with Content-Length only)')
    }
    if (!tunnels.accepting) return reject('NOT_READY', 'the router is shutting down')
    // Before the choice of version, so that a refused upgrade takes no weighted turn.
    if (!tunnels.reserve()) return reject('UPGRADE_LIMIT_REACHED', `${config.upgrades.maxConnections} upgraded connections are open already`)
    const routed = routing.route(request)
    if ('refused' in routed) {
      tunnels.release()
      return reject(routed.refused, routed.message)
    }
    if (span) describeRoute(span, method, routed, deps.tables.table.revision)

    const clientAddress = client.remoteAddress
    const forwarded = upstreamHeaders(headers, {
      clientAddress,
      host: routed.host,
      trustForwarded: anyTrustedProxy && addressMatches(trustForwarded, clientAddress),
      requestId,
      service: routed.route.name,
      version: routed.version.name,
      secretHeader: routing.chooser.secretHeader,
      replaceTraceHeaders: tracing.enabled,
      proto
    })
    if (passOn) {
      // Hop-by-hop, so upstreamHeaders dropped them: this hop upgrades too.
      forwarded.connection = 'upgrade'
      forwarded.upgrade = protocol
    }
    const context = span ?? unsampled
    if (context) injectContext(context, forwarded)
    new UpgradeHandshake(settings, client, head, routed, {
      method,
      headers: forwarded,
      requestId,
      startedAt,
      upgrade: passOn,
      bodyLength: passOn ? 0 : Number(contentLength),
      websocket: passOn && isWebSocket(protocol),
      span
    }).start()
  }
}

interface HandshakeRequest {
  method: string
  headers: Record<string, string | string[]>
  requestId: string
  /** performance.now() when the request arrived */
  startedAt: number
  /** the Upgrade is passed on (not for h2c) */
  upgrade: boolean
  /** bytes of body after the head (an ignored h2c upgrade only) */
  bodyLength: number
  websocket: boolean
  span: Span | undefined
}

/**
 * One upgrade request on its way to an instance: attempts (a refused connection is tried
 * on another instance, unless a body was sent), timeouts, and the answer.
 */
class UpgradeHandshake {
  private current: ClientRequest | undefined
  private endpoint: Endpoint | undefined
  private timer: NodeJS.Timeout | undefined
  private retries = 0
  private failure: ErrorBody | undefined
  private finished = false

  constructor(
    private readonly settings: HandshakeSettings,
    private readonly client: Socket,
    private readonly head: Buffer,
    private readonly routed: RoutedRequest,
    private readonly request: HandshakeRequest
  ) {}

  start(): void {
    this.client.once('close', this.clientGone)
    this.attempt()
  }

  private attempt(): void {
    const { settings, routed, request } = this
    const { version } = routed
    const endpoint = pickEndpoint(version.endpoints, settings.clock(), settings.random, this.endpoint)
    if (!endpoint) return this.fail(this.failure ?? { code: 'NO_HEALTHY_INSTANCE', message: `version ${version.name} of ${routed.route.name} has no healthy instance` })
    endpoint.inflight++
    this.endpoint = endpoint
    const upstream = httpRequest({
      host: endpoint.instance.host,
      port: endpoint.instance.port,
      method: request.method,
      path: routed.upstreamPath,
      headers: request.headers,
      agent: false
    })
    this.current = upstream
    const { timeouts } = settings.config
    this.arm(upstream, new HandshakeTimeout('UND_ERR_CONNECT_TIMEOUT', 'connect timeout'), timeouts.connectMs)
    upstream.once('socket', (socket) => {
      socket.once('connect', () => this.arm(upstream, new HandshakeTimeout('UND_ERR_HEADERS_TIMEOUT', 'no answer'), timeouts.firstByteMs))
    })
    upstream.on('error', (error) => this.attemptFailed(upstream, endpoint, error))
    // Without this listener Node's client refuses a 101 nobody asked for (the connection fails: 502).
    if (request.upgrade) upstream.on('upgrade', (answer: IncomingMessage, socket: Socket, head: Buffer) => this.switched(upstream, endpoint, answer, socket, head))
    upstream.on('response', (answer) => this.answered(upstream, endpoint, answer))
    if (request.bodyLength > 0) this.sendBody(upstream)
    else upstream.end()
  }

  /** Streams the body of an ignored h2c upgrade: the head's bytes, then the socket's, up to Content-Length. */
  private sendBody(upstream: ClientRequest): void {
    const { client } = this
    let remaining = this.request.bodyLength
    const take = (chunk: Buffer) => {
      const part = chunk.length > remaining ? chunk.subarray(0, remaining) : chunk
      remaining -= part.length
      if (remaining === 0) {
        // What follows the body is never read: the connection closes after the answer.
        client.off('data', take)
        client.pause()
        upstream.end(part)
      } else if (!upstream.write(part)) {
        client.pause()
        upstream.once('drain', () => client.resume())
      }
    }
    if (this.head.length > 0) take(this.head)
    if (remaining > 0) client.on('data', take)
  }

  private arm(upstream: ClientRequest, timeout: HandshakeTimeout, ms: number): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => upstream.destroy(timeout), ms)
  }

  /** Ends the current attempt; false when it was over already (or is not the current one). */
  private settle(upstream: ClientRequest, endpoint: Endpoint): boolean {
    if (upstream !== this.current || this.finished) return false
    this.current = undefined
    clearTimeout(this.timer)
    endpoint.inflight--
    return true
  }

  /** The handshake is decided: the client's close no longer aborts it. */
  private finish(): void {
    this.finished = true
    this.client.off('close', this.clientGone)
  }

  private switched(upstream: ClientRequest, endpoint: Endpoint, answer: IncomingMessage, socket: Socket, head: Buffer): void {
    if (!this.settle(upstream, endpoint)) {
      socket.destroy()
      return
    }
    this.finish()
    const { settings, routed, request, client } = this
    const { metrics, tunnels } = settings
    const service = routed.route.name
    const version = routed.version.name
    recordSuccess(endpoint, settings.clock(), settings.config.outlierDetection)
    const headers = downstreamHeaderList(latin1Buffers(answer.rawHeaders), request.requestId, version)
    headers.push('connection', 'Upgrade')
    if (answer.headers.upgrade !== undefined) headers.push('upgrade', answer.headers.upgrade)
    client.write(responseHead(101, answer.statusMessage, headers), 'latin1')
    metrics.recordRequest(service, version, 101, this.seconds())
    metrics.upgrades.inc({ service, version, result: 'upgraded' })
    const { span } = request
    span?.setAttribute('http.response.status_code', 101)
    const tunnel = new UpgradeTunnel(client, socket, { endpoint, service, version }, request.websocket, (closed) => {
      tunnels.closed(closed)
      span?.end()
    })
    tunnels.add(tunnel)
    tunnel.start(this.head, head, settings.config.upgrades.idleTimeoutMs)
  }

  /** The instance did not switch: its answer goes back as it is, then the connection closes. */
  private answered(upstream: ClientRequest, endpoint: Endpoint, answer: IncomingMessage): void {
    if (!this.settle(upstream, endpoint)) {
      answer.destroy()
      return
    }
    this.finish()
    const { settings, routed, request, client } = this
    const status = answer.statusCode ?? 502
    if (status >= 500) this.noteFailure(endpoint)
    else recordSuccess(endpoint, settings.clock(), settings.config.outlierDetection)
    const headers = downstreamHeaderList(latin1Buffers(answer.rawHeaders), request.requestId, routed.version.name)
    // Node decoded any chunked framing: without a Content-Length the close ends the body.
    headers.push('connection', 'close')
    client.write(responseHead(status, answer.statusMessage, headers), 'latin1')
    answer.pipe(client)
    answer.on('error', () => client.destroy())
    client.once('close', () => answer.destroy())
    this.done(status, 'refused')
  }

  private attemptFailed(upstream: ClientRequest, endpoint: Endpoint, error: Error): void {
    if (!this.settle(upstream, endpoint)) return
    const { settings, routed } = this
    const service = routed.route.name
    const version = routed.version.name
    const failure = failureBeforeHead(errorCode(error), `${service} ${version} at ${endpoint.address}`, settings.config.timeouts.firstByteMs)
    if (failure.connectFailed) settings.metrics.connectErrors.inc({ service, version })
    this.noteFailure(endpoint)
    this.failure = failure.answer
    // Only a connection that was never made is tried again: the upstream saw nothing.
    if (failure.connectFailed && this.retries < routed.rule.retries && this.request.bodyLength === 0) {
      this.retries++
      settings.metrics.retries.inc({ service, version })
      return this.attempt()
    }
    this.fail(failure.answer)
  }

  private fail(answer: ErrorBody): void {
    this.finish()
    writeRawErrorAnswer(this.client, answer, this.request.requestId, this.routed.version.name)
    this.done(ErrorCodes[answer.code], 'failed')
  }

  private readonly clientGone = (): void => {
    const { current, endpoint } = this
    if (current && endpoint && this.settle(current, endpoint)) current.destroy()
    this.finish()
    // Counted as the request path counts a client that left before its answer.
    this.done(499, 'abandoned')
  }

  /** The handshake ended without a tunnel. */
  private done(status: number, result: 'refused' | 'failed' | 'abandoned'): void {
    const { settings, routed, request } = this
    const service = routed.route.name
    const version = routed.version.name
    settings.tunnels.release()
    settings.metrics.recordRequest(service, version, status, this.seconds())
    settings.metrics.upgrades.inc({ service, version, result })
    if (request.span) {
      request.span.setAttribute('http.response.status_code', status)
      endSpan(request.span, status >= 500 ? `HTTP ${status}` : undefined)
    }
  }

  private noteFailure(endpoint: Endpoint): void {
    const { settings, routed } = this
    if (endpoint.countFailure(routed.version.endpoints, settings.clock(), settings.config.outlierDetection)) {
      settings.metrics.ejections.inc({ service: routed.route.name, version: routed.version.name })
    }
  }

  private seconds(): number {
    return (performance.now() - this.request.startedAt) / 1000
  }
}

/** Node's raw header strings as the bytes downstreamHeaderList reads (only for upgrade answers: off the request path). */
function latin1Buffers(raw: readonly string[]): Buffer[] {
  return raw.map((text) => Buffer.from(text, 'latin1'))
}
