import type { FastifyInstance } from 'fastify'
import type { RegistryMetrics } from '../metrics.js'
import type { Registry } from '../registry.js'

export function healthRoutes(app: FastifyInstance, options: { registry: Registry; metrics: RegistryMetrics }, done: (error?: Error) => void): void {
  const { registry, metrics } = options
  const status = () => ({ revision: registry.revision, instances: registry.instanceCount, selfPreservation: registry.selfPreservationActive })

  app.get('/healthz', { config: { permission: 'public' } }, (_request, reply) => reply.send({ status: 'ok', ...status() }))

  app.get('/readyz', { config: { permission: 'public' } }, async (_request, reply) => {
    try {
      await registry.waitDurable()
    } catch {
      return reply.code(503).send({ code: 'NOT_READY', message: 'the registry cannot write its store' })
    }
    return { status: 'ready', ...status() }
  })

  app.get('/metrics', { config: { permission: 'public' } }, async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType)
    return metrics.registry.metrics()
  })
  done()
}
