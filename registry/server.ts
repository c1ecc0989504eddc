import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { buildRegistryApp, redactedPaths } from './app.js'
import { readTokensFile, TokenSet, validateAdminToken } from './access/tokens.js'
import type { RegistryConfig } from './config.js'
import { Registry } from './registry.js'
import { storeForConfig } from './store/store-for-config.js'
import type { SignalSource } from './signals/signal-source.js'
import { closeOnSignals } from '../lifecycle/graceful-shutdown.js'
import { startTracing } from '../telemetry/tracing-sdk.js'

export interface RunningRegistry {
  app: FastifyInstance
  registry: Registry
  url: string
  close(): Promise<void>
}

export interface StartOptions {
  env?: Readonly<Record<string, string | undefined>>
  /** where the one-time notice of a generated admin token goes */
  announce?: (text: string) => void
  onFatal?: (error: Error) => void
}

/** Opens the store, replays it, and starts serving. Signals are the caller's business. */
export async function startRegistryServer(config: RegistryConfig, options: StartOptions = {}): Promise<RunningRegistry> {
  const env = options.env ?? process.env
  const announce = options.announce ?? ((text: string) => process.stdout.write(text))
  const tokens = await loadTokens(config, env, announce)
  const logger = { level: config.logLevel, redact: { paths: redactedPaths, censor: '[redacted]' } }
  const repairs: string[] = []
  // etcd trouble is logged once the app (and its logger) exists
  const errors: { log?: (error: Error, what: string) => void } = {}
  const { store, description } = await storeForConfig(config, env, { onRepair: (message) => repairs.push(message), onError: (error, what) => errors.log?.(error, what) })
  const registry = await Registry.open({
    store,
    leaseSeconds: config.leaseSeconds,
    renewSeconds: config.renewSeconds,
    selfPreservationThreshold: config.selfPreservationThreshold,
    selfPreservationMinExpired: config.selfPreservationMinExpired,
    selfPreservationMaxMs: config.selfPreservationMaxSeconds * 1000,
    watchBuffer: config.historyRetention
  })
  const app = buildRegistryApp({
    registry,
    tokens,
    logger,
    watch: { heartbeatMs: config.watchHeartbeatSeconds * 1000 },
    signals: { routerTimeoutMs: config.routerTimeoutSeconds * 1000, ...(await signalSourceFor(config)) },
    rollouts: { tickMs: config.rolloutTickSeconds * 1000 }
  })
  for (const message of repairs) app.log.warn(message)
  errors.log = (error, what) => app.log.warn({ err: error }, what)
  registry.onFailure((error) => {
    app.log.fatal({ err: error }, 'the registry store failed; stopping so that a restart recovers from disk')
    options.onFatal?.(error)
  })
  const sweeper = setInterval(() => {
    registry.sweep().catch((error: unknown) => app.log.error({ err: error }, 'sweep failed'))
  }, config.evictionIntervalSeconds * 1000)
  sweeper.unref()

  await app.listen({ host: config.host, port: config.port })
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : config.port
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`
  app.log.info({ revision: registry.revision, instances: registry.instanceCount, ...description }, `registry listening on ${url}`)

  let closing: Promise<void> | undefined
  return {
    app,
    registry,
    url,
    close() {
      closing ??= (async () => {
        clearInterval(sweeper)
        await app.close()
        await registry.close()
      })()
      return closing
    }
  }
}

/** The Prometheus source when configured; loaded only then (the default reads the routers' reports). */
async function signalSourceFor(config: RegistryConfig): Promise<{ source?: () => SignalSource }> {
  if (config.signals !== 'prometheus' || config.prometheusUrl === undefined) return {}
  const { PrometheusSignals, loadPrometheusQueries } = await import('./signals/prometheus-source.js')
  const queries = await loadPrometheusQueries(config.prometheusQueries)
  const url = config.prometheusUrl
  return { source: () => new PrometheusSignals({ url, queries }) }
}

async function loadTokens(config: RegistryConfig, env: Readonly<Record<string, string | undefined>>, announce: (text: string) => void): Promise<TokenSet> {
  const tokens = new TokenSet()
  if (config.tokensFile) for (const entry of await readTokensFile(config.tokensFile)) tokens.add(entry)
  const adminToken = env.SWITCHYARD_ADMIN_TOKEN
  if (adminToken) {
    validateAdminToken(adminToken)
    tokens.add({ name: 'admin', role: 'admin', token: adminToken })
  }
  if (tokens.size === 0) {
    const generated = randomBytes(24).toString('base64url')
    tokens.add({ name: 'admin', role: 'admin', token: generated })
    announce(
      `No registry tokens are configured, so this run generated an admin token (shown once):\n` +
        `  export SWITCHYARD_TOKEN=${generated}\n` +
        `Set SWITCHYARD_ADMIN_TOKEN or --tokens-file to choose your own.\n`
    )
  }
  return tokens
}

/** The foreground process: start, then close gracefully on SIGINT/SIGTERM (exit 1 after a store failure). */
export async function runRegistryServer(config: RegistryConfig): Promise<void> {
  const tracing = await startTracing('switchyard-registry')
  // A store failure while starting just ends the process; once running, it closes first.
  let fatal = (_error: Error): void => process.exit(1)
  const running = await startRegistryServer(config, { onFatal: (error) => fatal(error) })
  running.app.log.info(tracing.description)
  const shutdown = closeOnSignals(async () => {
    await running.close()
    await tracing.shutdown()
  }, running.app.log)
  fatal = (error) => shutdown.fail(error)
}
