import { Type } from '@sinclair/typebox'
import { registryUrlSetting } from '../../core/defaults.js'

/** The orders worker's settings, all from env (it is started by the local stack and compose). */
export const OrdersWorkerSettings = Type.Object({
  version: Type.String({ default: 'v1', flag: 'version', env: 'SWITCHYARD_VERSION', description: 'version to register and consume for' }),
  topic: Type.String({ default: 'orders', flag: 'topic', env: 'ORDERS_TOPIC', description: 'topic whose version queue to consume' }),
  broker: Type.String({ default: 'amqp://guest:guest@127.0.0.1:5672', flag: 'broker', env: 'AMQP_URL', description: 'AMQP URL of the broker' }),
  host: Type.String({ default: '127.0.0.1', flag: 'host', env: 'HOST', description: 'address of the stats endpoint' }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 0, flag: 'port', env: 'PORT', description: 'port of the stats endpoint' }),
  advertiseHost: Type.Optional(Type.String({ flag: 'advertise-host', env: 'SWITCHYARD_ADVERTISE_HOST', description: 'host to register' })),
  rejectRate: Type.Number({
    minimum: 0,
    maximum: 1,
    default: 0,
    flag: 'reject-rate',
    env: 'ORDERS_REJECT_RATE',
    description: 'share of orders to reject (0..1), to demo a bad release'
  }),
  registry: registryUrlSetting(),
  token: Type.Optional(Type.String({ flag: 'token', env: 'SWITCHYARD_TOKEN', description: 'registrar token' }))
})
