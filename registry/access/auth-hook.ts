import type { FastifyReply, FastifyRequest } from 'fastify'
import { SwitchyardError } from '../../core/errors.js'
import { decide, type Permission } from './permissions.js'
import type { Principal, TokenSet } from './tokens.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** what the route requires; routes without one are refused */
    permission?: Permission
  }
  interface FastifyRequest {
    principal: Principal | undefined
  }
}

/**
 * Runs before the body is read: an unauthenticated request learns nothing about what
 * it sent, and a forbidden one changes nothing.
 */
export function authorize(tokens: TokenSet) {
  return async function authorizeRequest(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const permission = request.routeOptions.config.permission
    if (permission === 'public') return
    if (permission === undefined) {
      // An unmatched URL: let the 404 handler answer, but never serve an unguarded route.
      if (request.routeOptions.url === undefined) return
      throw new SwitchyardError('FORBIDDEN', 'this route declares no permission')
    }
    const header = request.headers.authorization
    const match = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
    if (!match) {
      reply.header('www-authenticate', 'Bearer realm="switchyard"')
      throw new SwitchyardError('UNAUTHENTICATED', header === undefined ? 'send a token: Authorization: Bearer <token>' : 'the Authorization header must be "Bearer <token>"')
    }
    const principal = tokens.authenticate(match[1] as string)
    if (!principal) {
      reply.header('www-authenticate', 'Bearer realm="switchyard", error="invalid_token"')
      throw new SwitchyardError('UNAUTHENTICATED', 'the token is not valid')
    }
    const service = (request.params as { service?: string } | undefined)?.service
    const decision = decide(principal, permission, service)
    if (!decision.allowed) throw new SwitchyardError('FORBIDDEN', decision.reason)
    request.principal = principal
  }
}
