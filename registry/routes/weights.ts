import type { FastifyInstance } from 'fastify'
import type { Static } from '@sinclair/typebox'
import { SwitchyardError } from '../../core/errors.js'
import type { Registry } from '../registry.js'
import { ServiceParams, WeightsBody, WeightsQuery } from '../schemas.js'

/** `If-Match: 42` or `If-Match: "42"` (the ETag form GET returns). */
export function parseIfMatch(header: string | undefined): number | undefined {
  if (header === undefined) return undefined
  const match = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(header)
  if (!match) throw new SwitchyardError('INVALID_REVISION', `If-Match must be a registry revision such as "42", got ${JSON.stringify(header.slice(0, 40))}`)
  return Number(match[1])
}

export function weightRoutes(app: FastifyInstance, options: { registry: Registry }, done: (error?: Error) => void): void {
  const { registry } = options

  app.get<{ Params: Static<typeof ServiceParams> }>('/v1/services/:service/weights', { config: { permission: 'read' }, schema: { params: ServiceParams } }, (request, reply) => {
    const result = registry.weights(request.params.service)
    return reply.header('etag', `"${result.revision}"`).send(result)
  })

  app.put<{ Params: Static<typeof ServiceParams>; Body: Static<typeof WeightsBody>; Querystring: Static<typeof WeightsQuery> }>(
    '/v1/services/:service/weights',
    { config: { permission: 'set-weights' }, schema: { params: ServiceParams, body: WeightsBody, querystring: WeightsQuery } },
    async (request, reply) => {
      const ifMatch = parseIfMatch(request.headers['if-match'])
      const actor = request.principal?.name ?? 'unknown'
      const allowUnregistered = request.query.allowUnregistered === 'true'
      const result = await registry.setWeights(
        request.params.service,
        request.body.weights,
        ifMatch === undefined ? { actor, allowUnregistered } : { actor, ifMatch, allowUnregistered }
      )
      reply.header('etag', `"${result.revision}"`)
      request.log.info({ service: request.params.service, weights: result.weights, revision: result.revision, actor }, 'weights changed')
      return result
    }
  )
  done()
}
