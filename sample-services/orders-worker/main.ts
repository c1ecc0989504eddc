import Fastify from 'fastify'
import { hostname } from 'node:os'
import { parseConfig } from '../../core/config.js'
import { InstanceAgent } from '../../registry/client/instance-agent.js'
import { adapterFor } from '../../router/messages/server.js'
import { OrdersWorker } from './worker.js'
import { startTracing } from '../../telemetry/tracing.js'
import { OrdersWorkerSettings as Settings } from './settings.js'

/** The orders worker as its own process (with RabbitMQ): registers, consumes, serves its counts. */
const settings = parseConfig(Settings, {}, process.env)
const tracing = await startTracing('orders-worker', { serviceVersion: settings.version })
const log = (event: string, detail: Record<string, unknown> = {}) =>
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), service: 'orders-worker', version: settings.version, event, ...detail }) + '\n')
const worker = new OrdersWorker(adapterFor(settings.broker), { topic: settings.topic, version: settings.version, onEvent: log })
const app = Fastify({ logger: false })
app.get('/healthz', async () => ({ status: 'ok' }))
app.get('/stats', async () => worker.stats)
await app.listen({ host: settings.host, port: settings.port })
const address = app.server.address()
const port = typeof address === 'object' && address ? address.port : settings.port
const agent = new InstanceAgent({
  registryUrl: settings.registry,
  token: settings.token,
  service: 'orders-worker',
  version: settings.version,
  host: settings.advertiseHost ?? (settings.host === '0.0.0.0' ? '127.0.0.1' : settings.host),
  port,
  id: `orders-worker-${settings.version}-${hostname()}-${process.pid}`,
  onEvent: log
})
worker.start()
await agent.start()
log('ready', { port })
const stop = async () => {
  await agent.stop(0)
  await worker.stop()
  await app.close()
  await tracing.shutdown()
  process.exit(0)
}
process.once('SIGTERM', () => void stop())
process.once('SIGINT', () => void stop())
