import type { ProxyConfig, RouteRuleConfig, UpstreamProtocol } from '../config.js'

export interface RouteRule {
  readonly name: string
  readonly service: string
  readonly pathPrefix: string | undefined
  /** lower case; `*.example.com` matches any subdomain */
  readonly host: string | undefined
  readonly stripPrefix: boolean
  readonly timeoutMs: number
  /** the rule's own timeoutMs, if it sets one: a gRPC call's deadline is capped by it, never by the default (streams may last) */
  readonly ownTimeoutMs: number | undefined
  readonly retries: number
  /** how the instances are spoken to: the rule's protocol, else its service's, else http1 */
  readonly protocol: UpstreamProtocol
}

/**
 * The listener's route rules, tried in order: the first rule whose host and path prefix
 * both match wins. A prefix matches whole path segments: `/api` matches `/api`,
 * `/api/x` and `/api?q`, never `/apix`.
 */
export class RouteRules {
  readonly rules: readonly RouteRule[]

  constructor(rules: readonly RouteRuleConfig[], defaults: Pick<ProxyConfig, 'timeouts' | 'retries'> & Partial<Pick<ProxyConfig, 'services'>>) {
    this.rules = rules.map((rule, index) => {
      const prefix = rule.match.pathPrefix === undefined || rule.match.pathPrefix === '/' ? undefined : rule.match.pathPrefix.replace(/\/+$/, '')
      return {
        name: rule.name ?? `${rule.service}-${index}`,
        service: rule.service,
        pathPrefix: prefix,
        host: rule.match.host?.toLowerCase(),
        stripPrefix: rule.stripPrefix ?? false,
        timeoutMs: rule.timeoutMs ?? defaults.timeouts.requestMs,
        ownTimeoutMs: rule.timeoutMs,
        retries: rule.retries ?? defaults.retries.max,
        protocol: rule.protocol ?? defaults.services?.[rule.service]?.protocol ?? 'http1'
      }
    })
  }

  match(host: string | undefined, path: string): RouteRule | undefined {
    for (const rule of this.rules) {
      if (rule.host !== undefined && !hostMatches(rule.host, host)) continue
      if (rule.pathPrefix !== undefined && !prefixMatches(rule.pathPrefix, path)) continue
      return rule
    }
    return undefined
  }
}

function prefixMatches(prefix: string, path: string): boolean {
  if (!path.startsWith(prefix)) return false
  const next = path.charCodeAt(prefix.length)
  // end of path, '/', or '?'
  return Number.isNaN(next) || next === 47 || next === 63
}

function hostMatches(pattern: string, hostHeader: string | undefined): boolean {
  if (hostHeader === undefined) return false
  let host = hostHeader.toLowerCase()
  const colon = host.lastIndexOf(':')
  if (colon > 0 && !host.endsWith(']')) host = host.slice(0, colon)
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1
  return host === pattern
}

/** The upstream path once the matched prefix is stripped ("/api/x?q" -> "/x?q", "/api" -> "/"). */
export function stripPrefix(path: string, prefix: string): string {
  const rest = path.slice(prefix.length)
  if (rest === '') return '/'
  return rest.charCodeAt(0) === 63 ? `/${rest}` : rest
}
