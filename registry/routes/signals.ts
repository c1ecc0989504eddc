import type { FastifyInstance } from 'fastify'
import type { Static } from '@sinclair/typebox'
import { parseDuration } from '../../core/duration.js'
import { SwitchyardError } from '../../core/errors.js'
import type { Registry } from '../registry.js'
import { ServiceParams, SignalSeriesQuery, SignalsQuery } from '../schemas.js'
import type { SignalBook } from '../../core/signals/signal-book.js'
import type { ServiceSignals } from '../../core/signals/figures.js'
import type { SignalSource } from '../signals/signal-source.js'

export function signalRoutes(
  app: FastifyInstance,
  options: { registry: Registry; source: SignalSource; book: SignalBook; clock: () => number; maxWindowMs: number },
  done: (error?: Error) => void
): void {
  const { registry, source, clock } = options
  /** A `window` query within what the registry keeps. */
  const windowOf = (value: string): number => {
    const windowMs = parseDuration(value, 'window')
    if (windowMs < 1000 || windowMs > options.maxWindowMs) {
      throw new SwitchyardError('VALIDATION_FAILED', `window must be between 1s and ${options.maxWindowMs / 1000}s`)
    }
    return windowMs
  }

  app.get<{ Params: Static<typeof ServiceParams>; Querystring: Static<typeof SignalsQuery> }>(
    '/v1/services/:service/signals',
    { config: { permission: 'read' }, schema: { params: ServiceParams, querystring: SignalsQuery } },
    async (request) => {
      const windowMs = windowOf(request.query.window ?? '60s')
      // An unknown service is 404 SERVICE_NOT_FOUND, not empty figures.
      registry.service(request.params.service)
      const now = clock()
      return source.signals(request.params.service, now - windowMs, now)
    }
  )

  // Every service with traffic at once (the console's overview: observed beside configured
  // shares for 200 services in one call). Always from the routers' reports, whatever the
  // configured source: one Prometheus query set per service every 2 s would be too many.
  app.get<{ Querystring: Static<typeof SignalsQuery> }>('/v1/signals', { config: { permission: 'read' }, schema: { querystring: SignalsQuery } }, (request) => {
    const windowMs = windowOf(request.query.window ?? '10s')
    const now = clock()
    const services: Record<string, ServiceSignals['versions']> = {}
    for (const service of options.book.servicesWithTraffic()) services[service] = options.book.signals(service, now - windowMs, now).versions
    return { windowMs, source: 'routers', services }
  })

  // The figures step by step (the console's charts on opening): at most MAX_POINTS steps of
  // at least 1 s within the kept window, the last ending now.
  app.get<{ Params: Static<typeof ServiceParams>; Querystring: Static<typeof SignalSeriesQuery> }>(
    '/v1/services/:service/signals/series',
    { config: { permission: 'read' }, schema: { params: ServiceParams, querystring: SignalSeriesQuery } },
    async (request) => {
      const windowMs = windowOf(request.query.window ?? '300s')
      const stepMs = parseDuration(request.query.step ?? '2s', 'step')
      if (stepMs < 1000 || stepMs > windowMs) throw new SwitchyardError('VALIDATION_FAILED', 'step must be at least 1s and at most the window')
      if (windowMs / stepMs > MAX_POINTS) throw new SwitchyardError('VALIDATION_FAILED', `at most ${MAX_POINTS} steps: make the step longer or the window shorter`)
      registry.service(request.params.service)
      // Whole steps, the last ending at this second's end: every router report lands in exactly one.
      const end = Math.floor(clock() / 1000) * 1000
      const steps = Math.floor(windowMs / stepMs)
      const points = source.series ? await source.series(request.params.service, end - steps * stepMs, end, stepMs) : []
      return { service: request.params.service, source: source.name, stepMs, history: source.series !== undefined, points }
    }
  )
  done()
}

const MAX_POINTS = 300
