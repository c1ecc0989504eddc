import type { FastifyInstance } from 'fastify'
import type { Static } from '@sinclair/typebox'
import type { SignalBook } from '../../core/signals/signal-book.js'
import type { RouterReport } from '../../core/signals/router-report.js'
import type { Registry } from '../registry.js'
import { RouterParams, RouterReportBody } from '../schemas.js'

/** Reports are bigger than other writes (every service and version a router knows): 1 MiB. */
const REPORT_BODY_LIMIT = 1024 * 1024

export function routerRoutes(app: FastifyInstance, options: { registry: Registry; book: SignalBook }, done: (error?: Error) => void): void {
  const { registry, book } = options
  // Routers that reported to another replica of the same store.
  registry.onRemoteRouterReport((reporter, report) => {
    try {
      book.accept(report as RouterReport, reporter, registry.revision)
    } catch (error) {
      app.log.warn({ err: error }, 'a router report relayed by another replica was refused')
    }
  })

  app.put<{ Params: Static<typeof RouterParams>; Body: Static<typeof RouterReportBody> }>(
    '/v1/routers/:router',
    { config: { permission: 'report' }, bodyLimit: REPORT_BODY_LIMIT, schema: { params: RouterParams, body: RouterReportBody } },
    (request, reply) => {
      const reporter = request.principal?.name ?? 'unknown'
      const report = { ...request.body, id: request.params.router }
      const router = book.accept(report, reporter, registry.revision)
      registry.shareRouterReport(request.params.router, reporter, report)
      return reply.send({ router, revision: registry.revision })
    }
  )

  app.get('/v1/routers', { config: { permission: 'read' } }, (_request, reply) => {
    const revision = registry.revision
    return reply.send({
      revision,
      routers: book
        .list(revision)
        .map((router) => ({ ...router, startedAt: iso(router.startedAt), firstReportAt: iso(router.firstReportAt), lastReportAt: iso(router.lastReportAt) }))
    })
  })
  done()
}

const iso = (ms: number): string => new Date(ms).toISOString()
