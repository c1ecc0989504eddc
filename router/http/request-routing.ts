import type { IncomingHttpHeaders } from 'node:http'
import type { ErrorCode } from '../../core/errors.js'
import type { ChoiceReason } from '../../core/version-choice.js'
import type { RouteTable, ServiceRoute, VersionRoute } from '../../core/route-table.js'
import type { ProxyConfig } from '../config.js'
import type { RouterMetrics } from '../metrics.js'
import type { Endpoint } from '../upstream/endpoint.js'
import { absoluteForm, hasOneHostAtMost, normalizePath } from './request-target.js'
import { stripPrefix, type RouteRule, type RouteRules } from './route-rules.js'
import { VersionChooser } from './version-choice.js'

/** Where a request goes: its rule, service and version, and the path the instance receives. */
export interface RoutedRequest {
  rule: RouteRule
  route: ServiceRoute<Endpoint>
  version: VersionRoute<Endpoint>
  reason: ChoiceReason
  /** the host the request is for (Host header, or the authority of an absolute-form target) */
  host: string | undefined
  /** canonical, with the rule's prefix stripped where it says so */
  upstreamPath: string
}

/**
 * What routing reads of a client request: Node's IncomingMessage for HTTP/1.1, a view
 * without pseudo-headers (router/http/http2-request.ts) for HTTP/2.
 */
export interface RoutableRequest {
  readonly url?: string | undefined
  readonly headers: IncomingHttpHeaders
  readonly rawHeaders: readonly string[]
  readonly socket: { readonly remoteAddress?: string | undefined }
}

/** The router answers the request itself, with this code. */
export interface RoutingRefusal {
  refused: ErrorCode
  message: string
}

export interface RoutingDependencies {
  rules: RouteRules
  /** `ready` is false until the first table from the registry is in force */
  tables: { readonly table: RouteTable<Endpoint>; readonly ready?: boolean }
  config: ProxyConfig
  metrics: RouterMetrics
  random: () => number
}

/**
 * Target -> rule -> service route -> version, shared by plain requests (proxy.ts) and
 * upgrades (upgrade.ts) so that both follow the same rules, weights and forced/sticky
 * versions. Framing checks (smuggling) stay with the callers: they differ.
 */
export class RequestRouting {
  readonly chooser: VersionChooser
  private readonly onFallback: (from: VersionRoute<Endpoint>) => void

  constructor(private readonly deps: RoutingDependencies) {
    this.chooser = new VersionChooser(deps.config, deps.random)
    this.onFallback = (from) => deps.metrics.fallbacks.inc({ service: from.service, version: from.name })
  }

  route(request: RoutableRequest): RoutedRequest | RoutingRefusal {
    const { rules, tables, config } = this.deps
    if (!hasOneHostAtMost(request.rawHeaders)) return { refused: 'MALFORMED_REQUEST', message: 'more than one Host header' }
    const headers = request.headers
    let target = request.url ?? '/'
    let host = headers.host
    if (target.charCodeAt(0) !== SLASH) {
      const absolute = absoluteForm(target)
      if ('refused' in absolute) return { refused: 'INVALID_PATH', message: absolute.refused }
      target = absolute.target
      host = absolute.authority
    }
    // Rules match, and the upstream receives, the canonical path: no path trick reaches another rule.
    const path = normalizePath(target, config.paths)
    if (typeof path !== 'string') return { refused: 'INVALID_PATH', message: path.refused }
    const rule = rules.match(host, path)
    if (!rule) return { refused: 'ROUTE_NOT_FOUND', message: `no route matches ${host ?? ''}${path.split('?')[0]}` }
    const route = tables.table.services.get(rule.service)
    if (!route) {
      if (tables.ready === false) return { refused: 'NO_ROUTE_TABLE', message: 'the router has no routing table from the registry yet' }
      return { refused: 'UNKNOWN_SERVICE', message: `service ${rule.service} is not known to the registry (yet)` }
    }
    const choice = this.chooser.choose(route, headers, request.socket.remoteAddress, this.onFallback)
    if ('error' in choice) return { refused: choice.error, message: choice.message }
    return {
      rule,
      route,
      version: choice.version,
      reason: choice.reason,
      host,
      upstreamPath: rule.stripPrefix && rule.pathPrefix !== undefined ? stripPrefix(path, rule.pathPrefix) : path
    }
  }
}

const SLASH = 0x2f
