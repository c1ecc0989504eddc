import type { FastifyInstance } from 'fastify'
import type { RegistryMetrics } from '../metrics.js'
import type { Registry } from '../registry.js'

export function healthRoutes(app: FastifyInstance, options: { registry: Registry; metrics: RegistryMetrics }, done: (error?: Error) => void): void {
  const { registry, metrics } = options
  const status = () => {
    const preservation = registry.selfPreservation()
    return {
      revision: registry.revision,
      instances: registry.instanceCount,
      selfPreservation: preservation.active,
      ...(preservation.active
        ? {
            selfPreservationSince: new Date(preservation.since ?? 0).toISOString(),
            selfPreservationEndsAt: new Date(preservation.endsAt ?? 0).toISOString(),
            expiredInstancesKept: preservation.expiredInstances
          }
        : {}),
      store: registry.replicated ? 'etcd' : 'file'
    }
  }

  app.get('/healthz', { config: { permission: 'public' } }, (_request, reply) => reply.send({ status: 'ok', ...status() }))

  app.get('/readyz', { config: { permission: 'public' } }, async (_request, reply) => {
    try {
      await registry.waitDurable()
    } catch {
      return reply.code(503).send({ code: 'NOT_READY', message: 'the registry cannot write its store' })
    }
    // A replica cut off from etcd still answers reads from its last state, but a load
    // balancer should prefer one that follows the store.
    if (!registry.following) return reply.code(503).send({ code: 'NOT_READY', message: 'this replica cannot reach its store (etcd); its answers may be stale' })
    return { status: 'ready', ...status() }
  })

  app.get('/metrics', { config: { permission: 'public' } }, async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType)
    return metrics.registry.metrics()
  })
  done()
}
