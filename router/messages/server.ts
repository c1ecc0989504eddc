import type { FastifyInstance } from 'fastify'
import pino, { type Logger } from 'pino'
import type { InstanceRecord } from '../../core/registry-events.js'
import { RouteTableSource } from '../table/table-source.js'
import { buildMessageAdminApp } from './admin-app.js'
import type { BrokerAdapter } from './brokers/broker.js'
import { MemoryBrokerAdapter } from './brokers/memory-broker.js'
import { RabbitMqAdapter, redactAmqpUrl } from './brokers/rabbitmq-broker.js'
import { loadMessageRouterConfig, type MessageRouterConfig, type MessageRouterSettings } from './config.js'
import { MessageRouter } from './message-router.js'
import { MessageMetrics } from './metrics.js'
import { SignalReporter } from '../signals/signal-reporter.js'
import { RegistryEndpoints } from '../../registry/client/registry-endpoints.js'
import { hostname } from 'node:os'
import { closeOnSignals } from '../../lifecycle/graceful-shutdown.js'
import { startTracing } from '../../telemetry/tracing.js'

export interface RunningMessageRouter {
  admin: FastifyInstance
  router: MessageRouter
  source: RouteTableSource<InstanceRecord>
  adapter: BrokerAdapter
  adminUrl: string
  log: Logger
  close(): Promise<void>
}

export function adapterFor(broker: string): BrokerAdapter {
  return broker === 'memory' ? new MemoryBrokerAdapter() : new RabbitMqAdapter(broker)
}

/** Starts the registry watch, the broker session loop and the admin listener. */
export async function startMessageRouter(settings: MessageRouterSettings, options: { config?: MessageRouterConfig; adapter?: BrokerAdapter } = {}): Promise<RunningMessageRouter> {
  const config = options.config ?? (await loadMessageRouterConfig(settings))
  const adapter = options.adapter ?? adapterFor(settings.broker)
  const brokerLabel = adapter.kind === 'memory' ? 'memory' : redactAmqpUrl(settings.broker)
  const log = pino({ level: settings.logLevel, name: 'message-router' })
  const metrics = new MessageMetrics()
  // One endpoint list for the watch and the reports: when one finds a replica down, both move on.
  const registry = new RegistryEndpoints(settings.registry, {
    onSwitch: (from, to, reason) => log.warn({ from, to, reason }, 'registry endpoint failed; moving to the next')
  })
  const source = new RouteTableSource<InstanceRecord>({
    registryUrl: registry,
    token: settings.token,
    endpointFor: (instance) => instance,
    onConnectionChange: (state, error, stream) => {
      if (state === 'connected') log.info({ registry: stream?.url, resumedAfter: stream?.resumedAfter ?? null }, 'connected to the registry watch stream')
      else log.warn({ registry: settings.registry, reason: error?.message }, 'registry unreachable; routing on the last table while reconnecting')
    },
    onApplied: (table) => {
      metrics.revision.set(table.revision)
      // Only fires after start(), when `router` and `reporter` below exist.
      router.onTable()
      reporter.applied()
    }
  })
  const router = new MessageRouter({ adapter, config, tables: source, metrics, log, brokerLabel })
  const admin = buildMessageAdminApp({ router, config, tables: source, metrics, brokerLabel })
  await admin.listen({ host: settings.adminHost, port: settings.adminPort })
  source.start()
  // Route only with a table: consuming before the first snapshot would park every message.
  void source.whenReady().then(() => router.start())
  const address = admin.server.address()
  const port = typeof address === 'object' && address ? address.port : settings.adminPort
  const adminUrl = `http://${settings.adminHost === '0.0.0.0' ? '127.0.0.1' : settings.adminHost}:${port}`
  log.info({ topics: config.topics, broker: brokerLabel }, `message router admin on ${adminUrl}`)
  const reporter = new SignalReporter({
    registryUrl: registry,
    token: settings.token,
    id: settings.routerId ?? `${hostname()}:${port}`,
    kind: 'messages',
    adminUrl,
    intervalMs: settings.reportIntervalSeconds * 1000,
    counters: () => metrics.signalCounters(),
    appliedRevision: () => source.table.revision,
    log
  })
  reporter.start()
  const running = router
  let closing: Promise<void> | undefined
  return {
    admin,
    router: running,
    source,
    adapter,
    adminUrl,
    log,
    close() {
      closing ??= (async () => {
        await running.stop()
        source.stop()
        reporter.report()
        await reporter.stop()
        await admin.close()
      })()
      return closing
    }
  }
}

/** The foreground process: start, then close and exit 0 on SIGTERM/SIGINT. */
export async function runMessageRouter(settings: MessageRouterSettings): Promise<void> {
  const tracing = await startTracing('switchyard-message-router')
  const running = await startMessageRouter(settings)
  closeOnSignals(async () => {
    await running.close()
    await tracing.shutdown()
  }, running.log)
}
