import Fastify, { type FastifyInstance } from 'fastify'
import type { RouteTable } from '../../core/route-table.js'
import type { RouteRule } from '../http/route-rules.js'
import type { RouterMetrics } from '../metrics.js'
import type { Endpoint } from '../upstream/endpoint.js'

export interface AdminAppOptions {
  tables: { readonly table: RouteTable<Endpoint>; readonly ready: boolean; readonly updatedAt: number }
  rules: readonly RouteRule[]
  metrics: RouterMetrics
  registryConnected: () => boolean
  clock?: () => number
}

/** The admin listener: health, readiness, metrics and the routing table in force. */
export function buildAdminApp(options: AdminAppOptions): FastifyInstance {
  // A scraper's idle keep-alive connection must not hold up shutdown.
  const app = Fastify({ logger: false, forceCloseConnections: true })
  const clock = options.clock ?? Date.now
  const { tables, metrics } = options

  app.get('/healthz', (_request, reply) => reply.send({ status: 'ok' }))

  app.get('/readyz', async (_request, reply) => {
    if (!tables.ready) return reply.code(503).send({ code: 'NOT_READY', message: 'waiting for the first routing table from the registry' })
    return { status: 'ready', revision: tables.table.revision, registryConnected: options.registryConnected() }
  })

  app.get('/metrics', async (_request, reply) => {
    metrics.revision.set(tables.table.revision)
    metrics.lastUpdate.set(tables.updatedAt / 1000)
    reply.header('content-type', metrics.registry.contentType)
    return metrics.registry.metrics()
  })

  app.get('/routes', (_request, reply) => {
    const now = clock()
    const table = tables.table
    return reply.send({
      revision: table.revision,
      updatedAt: tables.updatedAt === 0 ? null : new Date(tables.updatedAt).toISOString(),
      registryConnected: options.registryConnected(),
      rules: options.rules.map((rule) => ({
        name: rule.name,
        match: { pathPrefix: rule.pathPrefix ?? null, host: rule.host ?? null },
        service: rule.service,
        stripPrefix: rule.stripPrefix,
        timeoutMs: rule.timeoutMs,
        retries: rule.retries,
        protocol: rule.protocol
      })),
      services: [...table.services.values()].map((route) => ({
        name: route.name,
        fallbackActive: route.fallbackActive,
        versions: route.versions.map((version) => ({
          name: version.name,
          weight: version.weight / 100,
          instances: version.endpoints.map((endpoint) => ({
            id: endpoint.instance.id,
            address: endpoint.address,
            inflight: endpoint.inflight,
            ejected: endpoint.ejectedUntil > now,
            ejectedUntil: endpoint.ejectedUntil > now ? new Date(endpoint.ejectedUntil).toISOString() : null
          }))
        }))
      }))
    })
  })
  return app
}
