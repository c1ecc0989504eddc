import type { FastifyInstance } from 'fastify'
import type { Static } from '@sinclair/typebox'
import { parseDuration } from '../../core/duration.js'
import { SwitchyardError } from '../../core/errors.js'
import type { Registry } from '../registry.js'
import { ServiceParams, SignalsQuery } from '../schemas.js'
import type { SignalSource } from '../signals/signal-source.js'

export function signalRoutes(
  app: FastifyInstance,
  options: { registry: Registry; source: SignalSource; clock: () => number; maxWindowMs: number },
  done: (error?: Error) => void
): void {
  const { registry, source, clock } = options

  app.get<{ Params: Static<typeof ServiceParams>; Querystring: Static<typeof SignalsQuery> }>(
    '/v1/services/:service/signals',
    { config: { permission: 'read' }, schema: { params: ServiceParams, querystring: SignalsQuery } },
    async (request) => {
      const windowMs = parseDuration(request.query.window ?? '60s', 'window')
      if (windowMs < 1000 || windowMs > options.maxWindowMs) {
        throw new SwitchyardError('VALIDATION_FAILED', `window must be between 1s and ${options.maxWindowMs / 1000}s`)
      }
      // An unknown service is 404 SERVICE_NOT_FOUND, not empty figures.
      registry.service(request.params.service)
      const now = clock()
      return source.signals(request.params.service, now - windowMs, now)
    }
  )
  done()
}
