import type { FastifyInstance } from 'fastify'
import type { Static } from '@sinclair/typebox'
import type { ServiceRecord } from '../../core/registry-events.js'
import type { Registry } from '../registry.js'
import { ServiceParams } from '../schemas.js'

/** A service as the REST API shows it: times as ISO-8601, versions listed. */
function serviceView(service: ServiceRecord, registry: Registry) {
  return {
    name: service.name,
    versions: Object.keys(service.weights),
    weights: service.weights,
    instances: service.instances.map((instance) => {
      const lastHeartbeat = registry.lastHeartbeat(service.name, instance.id)
      return {
        id: instance.id,
        version: instance.version,
        host: instance.host,
        port: instance.port,
        status: instance.status,
        metadata: instance.metadata,
        registeredAt: new Date(instance.registeredAt).toISOString(),
        lastHeartbeat: lastHeartbeat === undefined ? null : new Date(lastHeartbeat).toISOString()
      }
    })
  }
}

export function serviceRoutes(app: FastifyInstance, options: { registry: Registry }, done: (error?: Error) => void): void {
  const { registry } = options

  app.get('/v1/services', { config: { permission: 'read' } }, async () => {
    const snapshot = await registry.snapshot()
    return { revision: snapshot.revision, services: snapshot.services.map((service) => serviceView(service, registry)) }
  })

  app.get<{ Params: Static<typeof ServiceParams> }>('/v1/services/:service', { config: { permission: 'read' }, schema: { params: ServiceParams } }, (request, reply) => {
    const { revision, ...service } = registry.service(request.params.service)
    return reply.send({ ...serviceView(service, registry), revision })
  })

  app.get<{ Params: Static<typeof ServiceParams> }>('/v1/services/:service/history', { config: { permission: 'read' }, schema: { params: ServiceParams } }, (request, reply) => {
    const { history, revision } = registry.weightHistory(request.params.service)
    return reply.send({
      service: request.params.service,
      revision,
      history: history.map((entry) => ({ revision: entry.revision, at: new Date(entry.at).toISOString(), actor: entry.actor, from: entry.from, to: entry.to }))
    })
  })
  done()
}
