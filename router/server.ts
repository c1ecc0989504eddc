import type { Server as HttpsServer } from 'node:https'
import type { FastifyInstance } from 'fastify'
import { buildAdminApp } from './admin/admin-app.js'
import { buildProxyListener } from './app.js'
import { loadProxyConfig, tlsFilesOf, type ProxyConfig, type RouterSettings } from './config.js'
import type { ProxyListener } from './http/listener.js'
import { CertificateWatch, loadKeyPair } from './http/tls-certificates.js'
import { RouteRules } from './http/route-rules.js'
import { UpgradeTunnels } from './http/upgrade-tunnels.js'
import { RouterMetrics } from './metrics.js'
import { RouteTableSource } from './table/table-source.js'
import { EndpointCatalog, type Endpoint } from './upstream/endpoint.js'
import { SignalReporter } from './signals/signal-reporter.js'
import type { PrimaryLink, Reporter } from './workers/primary-link.js'
import { RegistryEndpoints } from '../registry/client/registry-endpoints.js'
import { hostname } from 'node:os'
import { closeOnSignals } from '../lifecycle/graceful-shutdown.js'
import { startTracing } from '../telemetry/tracing.js'

export interface RunningRouter {
  proxy: FastifyInstance
  /** the HTTP/2 side of the proxy port */
  listener: ProxyListener
  /** the proxy port's certificate, when it speaks TLS: reload() reads it again (what SIGHUP does) */
  certificates: CertificateWatch | undefined
  admin: FastifyInstance
  source: RouteTableSource<Endpoint>
  metrics: RouterMetrics
  reporter: Reporter
  proxyUrl: string
  adminUrl: string
  close(): Promise<void>
}

function urlOf(app: FastifyInstance, host: string, scheme = 'http'): string {
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return `${scheme}://${host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host}:${port}`
}

/**
 * Starts the admin listener, the registry watch and the proxy listener. The proxy
 * accepts traffic at once; until the first table arrives it answers 503 and /readyz
 * says not ready, which is what load balancers in front should look at.
 * A worker of a router with --workers (router/workers/) passes `primary`: its tables come
 * from the primary, which also serves the admin port and reports.
 */
export async function startRouter(settings: RouterSettings, config?: ProxyConfig, primary?: PrimaryLink): Promise<RunningRouter> {
  const proxyConfig = config ?? (await loadProxyConfig(settings))
  const tlsFiles = tlsFilesOf(settings, proxyConfig)
  // Read before anything starts: a router whose certificate does not load does not start.
  const keyPair = tlsFiles ? loadKeyPair(tlsFiles) : undefined
  const metrics = new RouterMetrics()
  const logger = { level: settings.logLevel, redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], censor: '[redacted]' } }
  const catalog = new EndpointCatalog({
    connectTimeoutMs: proxyConfig.timeouts.connectMs,
    keepAliveMs: proxyConfig.upstream.keepAliveMs,
    connections: proxyConfig.upstream.connectionsPerInstance
  })
  primary?.shareEjections(catalog)
  const tunnels = new UpgradeTunnels(proxyConfig.upgrades, metrics)
  let connected = false
  // One endpoint list for the watch and the reports: when one finds a replica down, both move on.
  // (`proxy` below exists by the time a call fails: calls start after it is built.)
  const registry = new RegistryEndpoints(settings.registry, {
    onSwitch: (from, to, reason) => proxy.log.warn({ from, to, reason }, 'registry endpoint failed; moving to the next')
  })
  const source = new RouteTableSource({
    registryUrl: registry,
    token: settings.token,
    ...(primary ? { feed: primary.feed } : {}),
    endpointFor: catalog.endpointFor,
    retire: (endpoint) => {
      tunnels.retire(endpoint)
      catalog.retire(endpoint)
    },
    onConnectionChange: (state, error, stream) => {
      connected = state === 'connected'
      // Once per transition, never per attempt: an outage is one line, not a flood.
      // (`proxy` below exists by then: the watch starts after it is built.)
      if (connected) proxy.log.info({ registry: stream?.url, resumedAfter: stream?.resumedAfter ?? null }, 'connected to the registry watch stream')
      else proxy.log.warn({ registry: settings.registry, reason: error?.message }, 'registry unreachable; routing on the last table while reconnecting')
    },
    onApplied: (table) => {
      metrics.revision.set(table.revision)
      metrics.lastUpdate.set(Date.now() / 1000)
      reporter?.applied()
    }
  })
  const { app: proxy, listener } = buildProxyListener({ config: proxyConfig, tables: source, metrics, tunnels, logger, ...(keyPair ? { tls: keyPair } : {}) })
  const certificates =
    tlsFiles && keyPair ? new CertificateWatch({ files: tlsFiles, apply: (pair) => (proxy.server as HttpsServer).setSecureContext(pair), log: proxy.log }, keyPair) : undefined
  const onHangUp = () => void certificates?.reload()
  const admin = buildAdminApp({ tables: source, rules: new RouteRules(proxyConfig.routes, proxyConfig).rules, metrics, registryConnected: () => connected })
  if (!primary) await admin.listen({ host: settings.adminHost, port: settings.adminPort })
  const adminUrl = primary?.adminUrl ?? urlOf(admin, settings.adminHost)
  const signals = { counters: () => metrics.signalCounters(), appliedRevision: () => source.table.revision }
  const reporter: Reporter =
    primary?.reporter(signals) ??
    new SignalReporter({
      registryUrl: registry,
      token: settings.token,
      id: settings.routerId ?? `${hostname()}:${new URL(adminUrl).port}`,
      kind: 'http',
      adminUrl,
      intervalMs: settings.reportIntervalSeconds * 1000,
      ...signals,
      log: proxy.log
    })
  source.start()
  reporter.start()
  try {
    await proxy.listen({ host: settings.host, port: settings.port })
  } catch (error) {
    source.stop()
    await reporter.stop()
    await admin.close()
    throw error
  }
  const proxyApp = proxy
  const scheme = keyPair ? 'https' : 'http'
  if (certificates) {
    certificates.start()
    // SIGHUP: read the certificate again (the files are watched too; this is for where watching is not enough).
    process.on('SIGHUP', onHangUp)
  }
  proxyApp.log.info(
    { routes: proxyConfig.routes.length, registry: settings.registry, tls: keyPair !== undefined },
    `router listening on ${urlOf(proxyApp, settings.host, scheme)} (HTTP/1.1 and HTTP/2), admin on ${adminUrl}`
  )

  let closing: Promise<void> | undefined
  return {
    proxy: proxyApp,
    listener,
    certificates,
    admin,
    source,
    metrics,
    reporter,
    proxyUrl: urlOf(proxyApp, settings.host, scheme),
    adminUrl,
    close() {
      closing ??= (async () => {
        // Stop accepting, let in-flight requests and upgraded connections finish (bounded), then end the rest.
        tunnels.stop()
        if (certificates) {
          process.off('SIGHUP', onHangUp)
          certificates.stop()
        }
        const drained = proxyApp.close()
        // HTTP/2 clients get a GOAWAY: their streams under way finish, new ones go elsewhere.
        listener.closeSessions()
        // Keep-alive connections whose last request finishes after close() began become idle
        // later: close those too as they go quiet, instead of waiting out their keep-alive.
        const sweep = setInterval(() => proxyApp.server.closeIdleConnections(), 50)
        void drained.finally(() => clearInterval(sweep))
        const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), proxyConfig.drainTimeoutMs).unref())
        if ((await Promise.race([drained, timeout])) === 'timeout') {
          proxyApp.log.warn(`in-flight requests or upgraded connections still open after ${proxyConfig.drainTimeoutMs} ms; closing them`)
          proxyApp.server.closeAllConnections()
          listener.destroySessions()
          // Upgraded sockets are no longer the HTTP server's: they end with a close frame (WebSocket).
          await Promise.all([tunnels.closeAll(), catalog.destroyAll()])
        }
        source.stop()
        // A last report, so the registry counts the drained requests too.
        reporter.report()
        await reporter.stop()
        await catalog.closeAll()
        await admin.close()
      })()
      return closing
    }
  }
}

/** The foreground process: start, then drain and exit 0 on SIGTERM/SIGINT. */
export async function runRouter(settings: RouterSettings): Promise<void> {
  const tracing = await startTracing('switchyard-router')
  const running = await startRouter(settings)
  running.proxy.log.info(tracing.description)
  closeOnSignals(
    async () => {
      await running.close()
      await tracing.shutdown()
    },
    running.proxy.log,
    // With TLS, SIGHUP reloads the certificate (startRouter listens for it) instead of closing.
    running.certificates ? { keepSignals: ['SIGHUP'] } : {}
  )
}
