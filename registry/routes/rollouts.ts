import type { FastifyInstance } from 'fastify'
import type { Static } from '@sinclair/typebox'
import { nextDecisionAt, type RolloutState } from '../../core/rollout/rollout-machine.js'
import type { SignalBook } from '../../core/signals/signal-book.js'
import type { Registry } from '../registry.js'
import { RolloutBody, RolloutCommandParams, ServiceParams } from '../schemas.js'

/** A rollout as the API shows it: its state plus what it waits for now. */
function rolloutView(rollout: RolloutState, book: SignalBook, now: number) {
  const due = nextDecisionAt(rollout)
  return {
    ...rollout,
    step: rollout.stepIndex + 1,
    routersBehind: rollout.awaitingRevision === null ? [] : book.behind(rollout.awaitingRevision).map((router) => router.id),
    nextDecisionInSeconds: due === null ? null : Math.max(0, Math.round((due - now) / 100) / 10)
  }
}

export function rolloutRoutes(app: FastifyInstance, options: { registry: Registry; book: SignalBook }, done: (error?: Error) => void): void {
  const { registry, book } = options

  app.post<{ Params: Static<typeof ServiceParams>; Body: Static<typeof RolloutBody> }>(
    '/v1/services/:service/rollout',
    { config: { permission: 'set-weights' }, schema: { params: ServiceParams, body: RolloutBody } },
    async (request, reply) => {
      const actor = request.principal?.name ?? 'unknown'
      const rollout = await registry.startRollout(request.params.service, request.body, actor)
      request.log.info({ service: rollout.service, canary: rollout.spec.canary, baseline: rollout.spec.baseline, steps: rollout.spec.steps, actor }, 'rollout started')
      return reply.code(201).send(rolloutView(rollout, book, registry.now()))
    }
  )

  app.get<{ Params: Static<typeof ServiceParams> }>('/v1/services/:service/rollout', { config: { permission: 'read' }, schema: { params: ServiceParams } }, (request, reply) =>
    reply.send(rolloutView(registry.rollout(request.params.service), book, registry.now()))
  )

  app.post<{ Params: Static<typeof RolloutCommandParams> }>(
    '/v1/services/:service/rollout/:command',
    { config: { permission: 'set-weights' }, schema: { params: RolloutCommandParams } },
    async (request) => {
      const actor = request.principal?.name ?? 'unknown'
      const rollout = await registry.commandRollout(request.params.service, request.params.command, actor)
      request.log.info({ service: rollout.service, command: request.params.command, actor }, `rollout ${request.params.command}`)
      return rolloutView(rollout, book, registry.now())
    }
  )

  app.get('/v1/rollouts', { config: { permission: 'read' } }, (_request, reply) => {
    const now = registry.now()
    return reply.send({ rollouts: registry.rolloutList().map((rollout) => rolloutView(rollout, book, now)) })
  })
  done()
}
