import { hostname } from 'node:os'
import { parseConfig } from '../../core/config.js'
import { InstanceAgent } from '../../registry/client/instance-agent.js'
import { buildWebfrontApp } from './app.js'
import { startTracing } from '../../telemetry/tracing.js'
import { WebfrontSettings as Settings } from './settings.js'

const settings = parseConfig(Settings, {}, process.env)
const tracing = await startTracing('webfront', { serviceVersion: settings.version })
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
  await tracing.shutdown()
  process.exit(0)
}
process.once('SIGTERM', () => void stop())
process.once('SIGINT', () => void stop())
