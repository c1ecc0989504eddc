import Fastify, { type FastifyInstance } from 'fastify'
import { Counter, Gauge, Registry as MetricsRegistry, collectDefaultMetrics } from 'prom-client'
import { mergeMetrics, type MetricsJson } from './metrics-merge.js'
import { mergeRoutes, type RoutesView } from './routes-merge.js'
import { requestsIn } from './signal-totals.js'
import type { WorkerPool } from './worker-pool.js'

/** The primary's own metrics: its process, and how its workers fare. */
export class PrimaryMetrics {
  readonly registry = new MetricsRegistry()

  constructor(pool: WorkerPool) {
    collectDefaultMetrics({ register: this.registry })
    const registers = [this.registry]
    new Gauge({
      name: 'switchyard_router_workers',
      help: 'Worker processes of this router listening on the proxy port now (--workers)',
      registers,
      collect() {
        this.set(pool.members().filter((member) => member.listening).length)
      }
    })
    let counted = 0
    new Counter({
      name: 'switchyard_router_worker_restarts_total',
      help: 'Workers started in place of one that exited',
      registers,
      collect() {
        this.inc(pool.restarts - counted)
        counted = pool.restarts
      }
    })
  }
}

export interface PrimaryAdminOptions {
  pool: WorkerPool
  metrics: PrimaryMetrics
  registryConnected: () => boolean
}

/**
 * The admin listener of a router with --workers, on the primary: the same endpoints as a
 * single-process router's (router/admin/admin-app.ts), answered for the whole router
 * from every worker's part, and /workers.
 */
export function buildPrimaryAdminApp(options: PrimaryAdminOptions): FastifyInstance {
  const app = Fastify({ logger: false, forceCloseConnections: true })
  const { pool } = options

  app.get('/healthz', (_request, reply) => reply.send({ status: 'ok' }))

  app.get('/readyz', async (_request, reply) => {
    if (!pool.ready()) return reply.code(503).send({ code: 'NOT_READY', message: 'waiting for the first routing table in every worker' })
    return { status: 'ready', revision: pool.appliedRevision(), registryConnected: options.registryConnected(), workers: pool.members().length }
  })

  app.get('/metrics', async (_request, reply) => {
    await pool.ask('metrics')
    // A worker that did not answer in time counts with its last answer: a total never dips.
    const workers = pool.members().flatMap((member) => (member.metrics ? [member.metrics] : []))
    const parts: MetricsJson[] = [...workers, await pool.retired(), await options.metrics.registry.getMetricsAsJSON()]
    const merged = mergeMetrics(parts)
    reply.header('content-type', merged.contentType)
    return merged.metrics()
  })

  app.get('/routes', async (_request, reply) => {
    const answers = [...(await pool.ask('routes')).values()].filter((body): body is RoutesView => typeof body === 'object' && body !== null)
    const merged = mergeRoutes(answers)
    if (!merged) return reply.code(503).send({ code: 'NOT_READY', message: 'no router worker answered' })
    return { ...merged, registryConnected: options.registryConnected() }
  })

  app.get('/workers', () => ({
    workers: pool.members().map((member) => ({
      slot: member.slot,
      pid: member.pid,
      startedAt: new Date(member.startedAt).toISOString(),
      listening: member.listening,
      appliedRevision: member.appliedRevision,
      requests: requestsIn(member.counters),
      restarts: pool.restartsOf(member.slot)
    })),
    restarts: pool.restarts
  }))
  return app
}
