import { hostname } from 'node:os'
import { parseConfig } from '../../core/config.js'
import { startTracing } from '../../telemetry/tracing-sdk.js'
import { eventLog, runSampleService } from '../service-lifecycle.js'
import { buildWebfrontApp } from './app.js'
import { WebfrontSettings as Settings } from './settings.js'

const settings = parseConfig(Settings, {}, process.env)
const tracing = await startTracing('webfront', { serviceVersion: settings.version })
const instanceId = settings.instanceId ?? `webfront-${settings.version}-${hostname()}-${process.pid}`
await runSampleService({
  service: 'webfront',
  version: settings.version,
  instanceId,
  listen: settings,
  registry: { url: settings.registry, token: settings.token },
  app: buildWebfrontApp({ version: settings.version, instance: instanceId, routerUrl: settings.routerUrl, messageRouterUrl: settings.messageRouterUrl }),
  tracing,
  drainMs: settings.drainMs,
  log: eventLog('webfront', settings.version)
})
