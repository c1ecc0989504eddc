import type { FastifyInstance } from 'fastify'
import type { Static } from '@sinclair/typebox'
import type { WatchStreams } from '../watch/sse-streams.js'
import { WatchQuery } from '../schemas.js'

export function watchRoutes(app: FastifyInstance, options: { streams: WatchStreams }, done: (error?: Error) => void): void {
  app.get<{ Querystring: Static<typeof WatchQuery> }>('/v1/watch', { config: { permission: 'read' }, schema: { querystring: WatchQuery } }, async (request, reply) => {
    // `since` in the query wins; EventSource clients resend the last id as Last-Event-ID.
    const lastEventId = request.headers['last-event-id']
    const raw = request.query.since ?? (typeof lastEventId === 'string' && /^\d{1,15}$/.test(lastEventId) ? lastEventId : undefined)
    reply.hijack()
    await options.streams.open(reply.raw, raw === undefined ? undefined : Number(raw))
  })
  done()
}
