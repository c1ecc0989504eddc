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
  return function authorizeRequest(request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void {
    done(refusal(tokens, request, reply))
  }
}

/** Why the request may not go on, or undefined when it may (then request.principal is set). */
function refusal(tokens: TokenSet, request: FastifyRequest, reply: FastifyReply): SwitchyardError | undefined {
  const permission = request.routeOptions.config.permission
  if (permission === 'public') return undefined
  if (permission === undefined) {
    // An unmatched URL: let the 404 handler answer, but never serve an unguarded route.
    if (request.routeOptions.url === undefined) return undefined
    return new SwitchyardError('FORBIDDEN', 'this route declares no permission')
  }
  const header = request.headers.authorization
  const match = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
  if (!match) {
    reply.header('www-authenticate', 'Bearer realm="switchyard"')
    return new SwitchyardError('UNAUTHENTICATED', header === undefined ? 'send a token: Authorization: Bearer <token>' : 'the Authorization header must be "Bearer <token>"')
  }
  const principal = tokens.authenticate(match[1] as string)
  if (!principal) {
    reply.header('www-authenticate', 'Bearer realm="switchyard", error="invalid_token"')
    return new SwitchyardError('UNAUTHENTICATED', 'the token is not valid')
  }
  const service = (request.params as { service?: string } | undefined)?.service
  const decision = decide(principal, permission, service)
  if (!decision.allowed) return new SwitchyardError('FORBIDDEN', decision.reason)
  request.principal = principal
  return undefined
}
