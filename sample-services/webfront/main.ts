import { hostname } from 'node:os'
import { Type } from '@sinclair/typebox'
import { parseConfig } from '../../core/config.js'
import { InstanceAgent } from '../../registry/client/instance-agent.js'
import { buildWebfrontApp } from './app.js'

const Settings = Type.Object({
  version: Type.String({ default: 'v1.3', flag: 'version', env: 'SWITCHYARD_VERSION', description: 'version to register' }),
  instanceId: Type.Optional(Type.String({ flag: 'instance-id', env: 'SWITCHYARD_INSTANCE_ID', description: 'instance id' })),
  host: Type.String({ default: '127.0.0.1', flag: 'host', env: 'HOST', description: 'address to listen on' }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 0, flag: 'port', env: 'PORT', description: 'port (0 picks one)' }),
  advertiseHost: Type.Optional(Type.String({ flag: 'advertise-host', env: 'SWITCHYARD_ADVERTISE_HOST', description: 'host to register' })),
  routerUrl: Type.String({ default: 'http://127.0.0.1:8080', flag: 'router-url', env: 'ROUTER_URL', description: 'the router webfront calls api through' }),
  messageRouterUrl: Type.String({ default: 'http://127.0.0.1:9902', flag: 'message-router-url', env: 'MESSAGE_ROUTER_URL', description: 'the message router (publish endpoint)' }),
  registry: Type.String({ default: 'http://127.0.0.1:8761', flag: 'registry', env: 'SWITCHYARD_REGISTRY_URL', description: 'registry URL' }),
  token: Type.Optional(Type.String({ flag: 'token', env: 'SWITCHYARD_TOKEN', description: 'registrar token' })),
  drainMs: Type.Integer({ minimum: 0, default: 2_000, flag: 'drain-ms', env: 'SAMPLE_DRAIN_MS', description: 'draining time on SIGTERM' })
})

const settings = parseConfig(Settings, {}, process.env)
const instance = settings.instanceId ?? `webfront-${settings.version}-${hostname()}-${process.pid}`
const log = (event: string, detail: Record<string, unknown> = {}) =>
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), service: 'webfront', version: settings.version, event, ...detail }) + '\n')
const app = buildWebfrontApp({ version: settings.version, instance, routerUrl: settings.routerUrl, messageRouterUrl: settings.messageRouterUrl })
await app.listen({ host: settings.host, port: settings.port })
const address = app.server.address()
const port = typeof address === 'object' && address ? address.port : settings.port
const agent = new InstanceAgent({
  registryUrl: settings.registry,
  token: settings.token,
  service: 'webfront',
  version: settings.version,
  host: settings.advertiseHost ?? (settings.host === '0.0.0.0' ? '127.0.0.1' : settings.host),
  port,
  id: instance,
  onEvent: log
})
await agent.start()
log('ready', { port })
const stop = async () => {
  await agent.stop(settings.drainMs)
  await app.close()
  process.exit(0)
}
process.once('SIGTERM', () => void stop())
process.once('SIGINT', () => void stop())
