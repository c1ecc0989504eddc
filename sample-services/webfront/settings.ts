import { Type } from '@sinclair/typebox'
import { registryUrlSetting } from '../../core/defaults.js'
import { RouterSettings } from '../../router/config.js'
import { MessageRouterSettings } from '../../router/messages/config.js'

/** The webfront sample's settings, all from env (it is started by the local stack and compose). */
export const WebfrontSettings = Type.Object({
  version: Type.String({ default: 'v1.3', flag: 'version', env: 'SWITCHYARD_VERSION', description: 'version to register' }),
  instanceId: Type.Optional(Type.String({ flag: 'instance-id', env: 'SWITCHYARD_INSTANCE_ID', description: 'instance id' })),
  host: Type.String({ default: '127.0.0.1', flag: 'host', env: 'HOST', description: 'address to listen on' }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 0, flag: 'port', env: 'PORT', description: 'port (0 picks one)' }),
  advertiseHost: Type.Optional(Type.String({ flag: 'advertise-host', env: 'SWITCHYARD_ADVERTISE_HOST', description: 'host to register' })),
  routerUrl: Type.String({
    default: `http://127.0.0.1:${RouterSettings.properties.port.default}`,
    flag: 'router-url',
    env: 'ROUTER_URL',
    description: 'the router webfront calls api through'
  }),
  messageRouterUrl: Type.String({
    default: `http://127.0.0.1:${MessageRouterSettings.properties.adminPort.default}`,
    flag: 'message-router-url',
    env: 'MESSAGE_ROUTER_URL',
    description: 'the message router (publish endpoint)'
  }),
  registry: registryUrlSetting(),
  token: Type.Optional(Type.String({ flag: 'token', env: 'SWITCHYARD_TOKEN', description: 'registrar token' })),
  drainMs: Type.Integer({ minimum: 0, default: 2_000, flag: 'drain-ms', env: 'SAMPLE_DRAIN_MS', description: 'draining time on SIGTERM' })
})
