import type { FastifyInstance } from 'fastify'
import type { Static } from '@sinclair/typebox'
import type { Registry } from '../registry.js'
import { InstanceParams, RegistrationBody, ServiceParams, StatusBody } from '../schemas.js'

export function instanceRoutes(app: FastifyInstance, options: { registry: Registry }, done: (error?: Error) => void): void {
  const { registry } = options

  app.post<{ Params: Static<typeof ServiceParams>; Body: Static<typeof RegistrationBody> }>(
    '/v1/services/:service/instances',
    { config: { permission: 'register' }, schema: { params: ServiceParams, body: RegistrationBody } },
    async (request, reply) => {
      const result = await registry.register(request.params.service, request.body)
      return reply.code(result.created ? 201 : 200).send({ id: result.id, leaseSeconds: result.leaseSeconds, renewSeconds: result.renewSeconds })
    }
  )

  app.put<{ Params: Static<typeof InstanceParams> }>(
    '/v1/services/:service/instances/:id/heartbeat',
    { config: { permission: 'register' }, schema: { params: InstanceParams } },
    (request, reply) => {
      registry.heartbeat(request.params.service, request.params.id)
      return reply.send({ leaseSeconds: registry.leaseSeconds, renewSeconds: registry.renewSeconds })
    }
  )

  app.put<{ Params: Static<typeof InstanceParams>; Body: Static<typeof StatusBody> }>(
    '/v1/services/:service/instances/:id/status',
    { config: { permission: 'register' }, schema: { params: InstanceParams, body: StatusBody } },
    async (request) => {
      await registry.setStatus(request.params.service, request.params.id, request.body.status)
      return { status: request.body.status, revision: registry.revision }
    }
  )

  app.delete<{ Params: Static<typeof InstanceParams> }>(
    '/v1/services/:service/instances/:id',
    { config: { permission: 'register' }, schema: { params: InstanceParams } },
    async (request, reply) => {
      await registry.deregister(request.params.service, request.params.id)
      return reply.code(204).send()
    }
  )
  // An operator's removal of an instance the registry keeps although it is known dead
  // (self-preservation holds it, or its lease has not run out yet).
  app.post<{ Params: Static<typeof InstanceParams> }>(
    '/v1/services/:service/instances/:id/evict',
    { config: { permission: 'evict' }, schema: { params: InstanceParams } },
    async (request) => registry.evict(request.params.service, request.params.id)
  )
  done()
}
