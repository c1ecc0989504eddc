import Fastify from 'fastify'
import { hostname } from 'node:os'
import { Type } from '@sinclair/typebox'
import { parseConfig } from '../../core/config.js'
import { InstanceAgent } from '../../registry/client/instance-agent.js'
import { adapterFor } from '../../router/messages/server.js'
import { OrdersWorker } from './worker.js'

const Settings = Type.Object({
  version: Type.String({ default: 'v1', flag: 'version', env: 'SWITCHYARD_VERSION', description: 'version to register and consume for' }),
  topic: Type.String({ default: 'orders', flag: 'topic', env: 'ORDERS_TOPIC', description: 'topic whose version queue to consume' }),
  broker: Type.String({ default: 'amqp://guest:guest@127.0.0.1:5672', flag: 'broker', env: 'AMQP_URL', description: 'AMQP URL of the broker' }),
  host: Type.String({ default: '127.0.0.1', flag: 'host', env: 'HOST', description: 'address of the stats endpoint' }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 0, flag: 'port', env: 'PORT', description: 'port of the stats endpoint' }),
  advertiseHost: Type.Optional(Type.String({ flag: 'advertise-host', env: 'SWITCHYARD_ADVERTISE_HOST', description: 'host to register' })),
  registry: Type.String({ default: 'http://127.0.0.1:8761', flag: 'registry', env: 'SWITCHYARD_REGISTRY_URL', description: 'registry URL' }),
  token: Type.Optional(Type.String({ flag: 'token', env: 'SWITCHYARD_TOKEN', description: 'registrar token' }))
})

/** The orders worker as its own process (with RabbitMQ): registers, consumes, serves its counts. */
const settings = parseConfig(Settings, {}, process.env)
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
  process.exit(0)
}
process.once('SIGTERM', () => void stop())
process.once('SIGINT', () => void stop())
