import type { FastifyInstance } from 'fastify'

/**
 * Who the presented token is: its name and role, and the services it may change (null: all).
 * The console offers only what the role may do; the secret itself is never echoed.
 */
export function whoamiRoutes(app: FastifyInstance, _options: unknown, done: (error?: Error) => void): void {
  app.get('/v1/whoami', { config: { permission: 'read' } }, (request, reply) => {
    const principal = request.principal
    // The auth hook sets a principal for every 'read' route it lets through.
    if (!principal) return reply.code(401).send({ code: 'UNAUTHENTICATED', message: 'send a token: Authorization: Bearer <token>' })
    return reply.send({ name: principal.name, role: principal.role, services: principal.services ? [...principal.services].sort() : null })
  })
  done()
}
