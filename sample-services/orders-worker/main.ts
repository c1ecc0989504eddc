import Fastify from 'fastify'
import { hostname } from 'node:os'
import { parseConfig } from '../../core/config.js'
import { adapterFor } from '../../router/messages/server.js'
import { startTracing } from '../../telemetry/tracing.js'
import { eventLog, runSampleService } from '../service-lifecycle.js'
import { OrdersWorkerSettings as Settings } from './settings.js'
import { OrdersWorker } from './worker.js'

/** The orders worker as its own process (with RabbitMQ): registers, consumes, serves its counts. */
const settings = parseConfig(Settings, {}, process.env)
const tracing = await startTracing('orders-worker', { serviceVersion: settings.version })
const log = eventLog('orders-worker', settings.version)
const worker = new OrdersWorker(adapterFor(settings.broker), { topic: settings.topic, version: settings.version, rejectRate: settings.rejectRate, onEvent: log })
const app = Fastify({ logger: false })
app.get('/healthz', (_request, reply) => reply.send({ status: 'ok' }))
app.get('/stats', (_request, reply) => reply.send(worker.stats))
await runSampleService({
  service: 'orders-worker',
  version: settings.version,
  instanceId: `orders-worker-${settings.version}-${hostname()}-${process.pid}`,
  listen: settings,
  registry: { url: settings.registry, token: settings.token },
  app,
  tracing,
  // Messages wait in its queue, not on a connection: nothing to drain before deregistering.
  drainMs: 0,
  log,
  start: () => worker.start(),
  stop: () => worker.stop()
})
