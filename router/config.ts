import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { Type, type Static } from '@sinclair/typebox'
import { reportSettings } from './signals/report-settings.js'
import { Value } from '@sinclair/typebox/value'
import { ConfigError, logLevelSetting, parseConfig } from '../core/config.js'
import { NAME_PATTERN } from '../core/names.js'
import { WORKERS_PATTERN } from './workers/worker-count.js'

/** Process settings of the HTTP router: flags, env, defaults (see core/config.ts). */
export const RouterSettings = Type.Object({
  host: Type.String({ minLength: 1, default: '0.0.0.0', flag: 'host', env: 'SWITCHYARD_ROUTER_HOST', description: 'address for proxied traffic' }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, flag: 'port', env: 'SWITCHYARD_ROUTER_PORT', description: 'port for proxied traffic' }),
  adminHost: Type.String({ minLength: 1, default: '0.0.0.0', flag: 'admin-host', env: 'SWITCHYARD_ROUTER_ADMIN_HOST', description: 'address of the admin endpoints' }),
  adminPort: Type.Integer({
    minimum: 0,
    maximum: 65535,
    default: 9901,
    flag: 'admin-port',
    env: 'SWITCHYARD_ROUTER_ADMIN_PORT',
    description: 'port of /healthz, /readyz, /metrics, /routes'
  }),
  // Optional in the type only (the default always applies): settings built in code need not name it.
  workers: Type.Optional(
    Type.String({
      pattern: WORKERS_PATTERN,
      default: '1',
      flag: 'workers',
      env: 'SWITCHYARD_ROUTER_WORKERS',
      description: 'proxy processes sharing --port, or auto (one per core); the admin port, the registry watch and the reports stay one per router'
    })
  ),
  ...reportSettings('router', 'SWITCHYARD_ROUTER_ID'),
  config: Type.Optional(Type.String({ minLength: 1, flag: 'config', env: 'SWITCHYARD_ROUTER_CONFIG', description: 'routes and proxy settings (YAML or JSON)' })),
  routes: Type.Optional(
    Type.String({ minLength: 1, flag: 'routes', env: 'SWITCHYARD_ROUTES', description: 'routes without a file: "/api=api,/web=webfront" (added after the file\'s)' })
  ),
  tlsCert: Type.Optional(
    Type.String({
      minLength: 1,
      flag: 'tls-cert',
      env: 'SWITCHYARD_TLS_CERT',
      description: 'PEM certificate (chain) of the proxy port: TLS with ALPN h2 and http/1.1; reloaded on SIGHUP or when the file changes (with --tls-key)'
    })
  ),
  tlsKey: Type.Optional(Type.String({ minLength: 1, flag: 'tls-key', env: 'SWITCHYARD_TLS_KEY', description: 'PEM private key of --tls-cert' })),
  logLevel: logLevelSetting()
})
export type RouterSettings = Static<typeof RouterSettings>

const Cidr = Type.String({ pattern: '^[0-9a-fA-F.:]+(/[0-9]{1,3})?$' })

/** How the router talks to a service's instances: HTTP/1.1, HTTP/2 cleartext (prior knowledge), or gRPC over h2c. */
const UpstreamProtocol = Type.Union([Type.Literal('http1'), Type.Literal('h2c'), Type.Literal('grpc')])

const RouteRule = Type.Object(
  {
    name: Type.Optional(Type.String({ pattern: NAME_PATTERN })),
    match: Type.Object(
      {
        pathPrefix: Type.Optional(Type.String({ pattern: '^/' })),
        host: Type.Optional(Type.String({ minLength: 1, maxLength: 253 }))
      },
      { additionalProperties: false }
    ),
    service: Type.String({ pattern: NAME_PATTERN }),
    stripPrefix: Type.Optional(Type.Boolean()),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 3_600_000 })),
    retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 5 })),
    /** overrides the service's protocol (services.NAME.protocol) for this rule */
    protocol: Type.Optional(UpstreamProtocol)
  },
  { additionalProperties: false }
)

/** The router's file: routes and how the proxy behaves. Every field has a default. */
export const ProxyFile = Type.Object(
  {
    routes: Type.Array(RouteRule, { default: [] }),
    /** per-service settings: how its instances are spoken to (default http1) */
    services: Type.Record(Type.String({ pattern: NAME_PATTERN }), Type.Object({ protocol: UpstreamProtocol }, { additionalProperties: false }), { default: {} }),
    /** certificate and key of the proxy port (relative to this file); --tls-cert/--tls-key take precedence */
    tls: Type.Optional(Type.Object({ cert: Type.String({ minLength: 1 }), key: Type.String({ minLength: 1 }) }, { additionalProperties: false })),
    /** HTTP/2 clients (h2c prior knowledge, or ALPN h2 over TLS) */
    http2: Type.Object(
      {
        /** streams one client connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS) */
        maxConcurrentStreams: Type.Integer({ minimum: 1, maximum: 10_000, default: 250 }),
        /** a client connection with no stream for this long gets a GOAWAY */
        idleTimeoutMs: Type.Integer({ minimum: 1, default: 72_000 })
      },
      { additionalProperties: false, default: {} }
    ),
    stickyKey: Type.Object(
      { header: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9-]+$' })), cookie: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.-]+$' })) },
      // No header default here: TypeBox merges an object default into a given object, so
      // { cookie } would become { header, cookie }. Without either, the header is x-switchyard-key.
      { additionalProperties: false, default: {} }
    ),
    forcedVersion: Type.Object(
      {
        allowed: Type.Boolean({ default: true }),
        /** when set, only these clients (or holders of the secret header) may force a version */
        trustedNetworks: Type.Optional(Type.Array(Cidr)),
        secretHeader: Type.Optional(Type.Object({ name: Type.String({ pattern: '^[A-Za-z0-9-]+$' }), value: Type.String({ minLength: 16 }) }, { additionalProperties: false }))
      },
      { additionalProperties: false, default: { allowed: true } }
    ),
    /** clients whose x-forwarded-* headers are kept (other clients' are replaced) */
    trustForwardedFrom: Type.Array(Cidr, { default: [] }),
    timeouts: Type.Object(
      {
        connectMs: Type.Integer({ minimum: 1, default: 2_000 }),
        firstByteMs: Type.Integer({ minimum: 1, default: 30_000 }),
        idleMs: Type.Integer({ minimum: 1, default: 60_000 }),
        requestMs: Type.Integer({ minimum: 1, default: 60_000 })
      },
      { additionalProperties: false, default: {} }
    ),
    retries: Type.Object(
      {
        max: Type.Integer({ minimum: 0, maximum: 5, default: 2 }),
        budgetRatio: Type.Number({ minimum: 0, maximum: 1, default: 0.2 }),
        minPerSecond: Type.Number({ minimum: 0, default: 5 })
      },
      { additionalProperties: false, default: {} }
    ),
    outlierDetection: Type.Object(
      {
        consecutiveFailures: Type.Integer({ minimum: 1, default: 5 }),
        baseEjectionMs: Type.Integer({ minimum: 1, default: 30_000 }),
        maxEjectionMs: Type.Integer({ minimum: 1, default: 300_000 }),
        maxEjectionPercent: Type.Integer({ minimum: 0, maximum: 100, default: 50 })
      },
      { additionalProperties: false, default: {} }
    ),
    upstream: Type.Object(
      {
        connectionsPerInstance: Type.Integer({ minimum: 1, maximum: 1024, default: 128 }),
        keepAliveMs: Type.Integer({ minimum: 1, default: 4_000 })
      },
      { additionalProperties: false, default: {} }
    ),
    /** how request paths are made canonical before route matching and forwarding (router/http/request-target.ts) */
    paths: Type.Object(
      {
        /** RFC 3986: dot-segments removed, escaped unreserved characters (%2E...) decoded, backslashes read as slashes */
        normalize: Type.Boolean({ default: true }),
        /** a run of slashes is one slash */
        mergeSlashes: Type.Boolean({ default: true }),
        /** %2F and %5C: forwarded as data, refused with 400 INVALID_PATH, or decoded into separators */
        escapedSlashes: Type.Union([Type.Literal('keep'), Type.Literal('reject'), Type.Literal('unescape')], { default: 'keep' })
      },
      { additionalProperties: false, default: {} }
    ),
    /** connections switched to another protocol (WebSocket...) by an HTTP/1.1 Upgrade (router/http/upgrade.ts) */
    upgrades: Type.Object(
      {
        /** open upgraded connections (and handshakes under way) across the listener; beyond: 503 UPGRADE_LIMIT_REACHED */
        maxConnections: Type.Integer({ minimum: 0, default: 10_000 }),
        /** no byte either way for this long: the router closes the connection */
        idleTimeoutMs: Type.Integer({ minimum: 1, default: 300_000 }),
        /** how long connections to an instance that left the table may go on before the router closes them */
        drainTimeoutMs: Type.Integer({ minimum: 0, default: 25_000 })
      },
      { additionalProperties: false, default: {} }
    ),
    weightedChoice: Type.Union([Type.Literal('smooth-round-robin'), Type.Literal('random')], { default: 'smooth-round-robin' }),
    drainTimeoutMs: Type.Integer({ minimum: 0, default: 25_000 })
  },
  { additionalProperties: false }
)
export type ProxyConfig = Static<typeof ProxyFile>
export type RouteRuleConfig = Static<typeof RouteRule>
export type UpstreamProtocol = Static<typeof UpstreamProtocol>

/** Validates a proxy config document; every mistake is listed with its path. */
export function parseProxyConfig(document: unknown, source: string): ProxyConfig {
  const withDefaults = Value.Default(ProxyFile, structuredClone(document ?? {}))
  if (!Value.Check(ProxyFile, withDefaults)) {
    const problems = [...Value.Errors(ProxyFile, withDefaults)].slice(0, 20).map((error) => `${source}${error.path || '/'}: ${error.message}`)
    throw new ConfigError(problems)
  }
  const config = withDefaults
  if (config.stickyKey.header && config.stickyKey.cookie) throw new ConfigError([`${source}/stickyKey: use either header or cookie, not both`])
  for (const [index, rule] of config.routes.entries()) {
    if (!rule.match.pathPrefix && !rule.match.host) throw new ConfigError([`${source}/routes/${index}/match: give a pathPrefix, a host or both`])
  }
  return config
}

/** "/api=api,/web=webfront" or a JSON array of rules, as SWITCHYARD_ROUTES carries them. */
export function parseRoutesShorthand(text: string): RouteRuleConfig[] {
  const trimmed = text.trim()
  if (trimmed.startsWith('[')) {
    let parsed: unknown
    try {
      parsed = JSON.parse(trimmed)
    } catch (error) {
      throw new ConfigError([`SWITCHYARD_ROUTES is not valid JSON: ${(error as Error).message}`])
    }
    return parseProxyConfig({ routes: parsed }, 'SWITCHYARD_ROUTES').routes
  }
  const rules = trimmed.split(',').map((entry) => {
    const match = /^\s*(\/[^=\s]*)=([^=\s]+)\s*$/.exec(entry)
    if (!match) throw new ConfigError([`SWITCHYARD_ROUTES entry "${entry}" is not PATH_PREFIX=SERVICE (for example /api=api)`])
    return { match: { pathPrefix: match[1] as string }, service: match[2] as string }
  })
  return parseProxyConfig({ routes: rules }, 'SWITCHYARD_ROUTES').routes
}

export async function loadProxyConfig(settings: Pick<RouterSettings, 'config' | 'routes'>): Promise<ProxyConfig> {
  let document: unknown = {}
  if (settings.config) {
    try {
      // The YAML parser is loaded only when there is a file to read (a router without one carries none).
      const { parse: parseYaml } = await import('yaml')
      document = parseYaml(await readFile(settings.config, 'utf8'))
    } catch (error) {
      throw new ConfigError([`cannot read router config ${settings.config}: ${(error as Error).message}`])
    }
  }
  const config = parseProxyConfig(document, settings.config ?? 'config')
  if (settings.routes) config.routes.push(...parseRoutesShorthand(settings.routes))
  return config
}

export interface TlsFiles {
  cert: string
  key: string
}

/**
 * The proxy port's certificate and key, if it speaks TLS: the flags (or env) when given,
 * both of them, else the config file's `tls` (paths relative to the file).
 */
export function tlsFilesOf(settings: Pick<RouterSettings, 'tlsCert' | 'tlsKey' | 'config'>, config: Pick<ProxyConfig, 'tls'>): TlsFiles | undefined {
  if (settings.tlsCert !== undefined || settings.tlsKey !== undefined) {
    if (settings.tlsCert === undefined || settings.tlsKey === undefined) throw new ConfigError(['--tls-cert and --tls-key (SWITCHYARD_TLS_CERT, SWITCHYARD_TLS_KEY) go together'])
    return { cert: settings.tlsCert, key: settings.tlsKey }
  }
  if (!config.tls) return undefined
  const base = settings.config ? dirname(settings.config) : '.'
  return { cert: resolve(base, config.tls.cert), key: resolve(base, config.tls.key) }
}

export function parseRouterSettings(flags: Readonly<Record<string, unknown>>, env: Readonly<Record<string, string | undefined>>): RouterSettings {
  return parseConfig(RouterSettings, flags, env)
}
