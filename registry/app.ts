import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { toErrorResponse } from '../core/error-response.js'
import { traceRequests } from '../telemetry/fastify-tracing.js'
import { currentTracing, type Tracing } from '../telemetry/tracing-sdk.js'
import { authorize } from './access/auth-hook.js'
import type { TokenSet } from './access/tokens.js'
import { RegistryMetrics } from './metrics.js'
import type { Registry } from './registry.js'
import { healthRoutes } from './routes/health.js'
import { instanceRoutes } from './routes/instances.js'
import { serviceRoutes } from './routes/services.js'
import { watchRoutes } from './routes/watch.js'
import { weightRoutes } from './routes/weights.js'
import { WatchStreams, type WatchStreamOptions } from './watch/sse-streams.js'
import { SignalBook } from '../core/signals/signal-book.js'
import { RolloutController } from './rollouts/rollout-controller.js'
import { RolloutNotifier } from './rollouts/rollout-notifier.js'
import { rolloutRoutes } from './routes/rollouts.js'
import { routerRoutes } from './routes/routers.js'
import { signalRoutes } from './routes/signals.js'
import { RouterReportSignals, type SignalSource } from './signals/signal-source.js'
import { whoamiRoutes } from './routes/whoami.js'
import { consoleRoutes } from './console/console-routes.js'

export interface RegistryAppOptions {
  registry: Registry
  tokens: TokenSet
  logger?: FastifyServerOptions['logger']
  watch?: Partial<WatchStreamOptions>
  /** request bodies larger than this are refused with 413 */
  bodyLimit?: number
  tracing?: Tracing
  signals?: {
    /** figures for rollouts and the signals endpoint; default: the routers' reports */
    source?: (book: SignalBook) => SignalSource
    /** a router silent this long is dropped (default 10 s: five missed reports) */
    routerTimeoutMs?: number
    /** the longest window kept (default 15 min) */
    maxWindowMs?: number
  }
  rollouts?: {
    /** how often active rollouts are advanced (default 1 s); 0 leaves it to the caller (tests) */
    tickMs?: number
  }
  /** the browser console's built assets (default: dist/console) */
  console?: { assetsDir?: string }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** the rollout controller (tests drive its tick with a fake clock) */
    rollouts: RolloutController
    /** what the routers reported */
    signalBook: SignalBook
  }
}

/** Keeps secrets out of logs even if a serializer someday includes headers. */
export const redactedPaths = ['req.headers.authorization', 'headers.authorization', 'request.headers.authorization', '*.token']

/**
 * The registry's HTTP API as a Fastify instance that has not started listening:
 * tests drive it with inject() or listen on port 0; server.ts owns ports and signals.
 */
export function buildRegistryApp(options: RegistryAppOptions): FastifyInstance {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 64 * 1024,
    // The schemas say exactly what is allowed: no coercing "50" into 50, no silently dropped fields.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    return503OnClosing: true,
    requestIdHeader: 'x-request-id',
    logController: new LogController({ requestIdLogLabel: 'request_id' }),
    forceCloseConnections: true
  })
  const { registry } = options
  const streams = new WatchStreams(registry, { heartbeatMs: options.watch?.heartbeatMs ?? 15_000, maxBufferedBytes: options.watch?.maxBufferedBytes ?? 8 * 1024 * 1024 })
  const metrics = new RegistryMetrics(registry, () => streams.size)

  app.decorateRequest('principal', undefined)
  traceRequests(app, options.tracing ?? currentTracing())
  // JSON only: a text/plain body gets 415, not a confusing schema error.
  app.removeContentTypeParser('text/plain')
  app.addHook('onRequest', authorize(options.tokens))
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url
    if (route === undefined || route === '/v1/watch') return
    metrics.requestDuration.observe({ method: request.method, route, code: String(reply.statusCode) }, reply.elapsedTime / 1000)
  })
  app.setErrorHandler(async (error, request, reply) => {
    const { statusCode, body } = toErrorResponse(error)
    if (statusCode >= 500) request.log.error({ err: error }, 'request failed')
    return reply.code(statusCode).send(body)
  })
  app.setNotFoundHandler(async (request, reply) => reply.code(404).send({ code: 'ROUTE_NOT_FOUND', message: `no route for ${request.method} ${request.url.split('?')[0]}` }))
  app.addHook('onClose', (_instance, done) => {
    streams.closeAll()
    done()
  })
  let preserving = false
  registry.onSweep((result) => {
    // Report self-preservation when it starts and ends, not on every sweep.
    if (result.selfPreservation !== preserving) {
      preserving = result.selfPreservation
      if (preserving) app.log.warn({ expired: result.expired, instances: registry.instanceCount }, 'self-preservation on: too many leases expired at once, evicting none')
      else if (result.rebaselined) app.log.warn({ evicted: result.evicted.length }, 'self-preservation ended after its bound: evicting the instances still expired')
      else app.log.info('self-preservation off: evicting expired instances again')
    }
    if (result.evicted.length > 0) app.log.info({ evicted: result.evicted }, 'evicted instances whose lease expired')
  })

  void app.register(healthRoutes, { registry, metrics })
  void app.register(instanceRoutes, { registry })
  void app.register(serviceRoutes, { registry })
  void app.register(weightRoutes, { registry })
  void app.register(watchRoutes, { streams })

  const clock = () => registry.now()
  const maxWindowMs = options.signals?.maxWindowMs ?? 15 * 60_000
  const book = new SignalBook({ clock, routerTimeoutMs: options.signals?.routerTimeoutMs ?? 10_000, maxWindowMs })
  const source = options.signals?.source?.(book) ?? new RouterReportSignals(book)
  const rollouts = new RolloutController({ registry, routers: book, signals: source, clock, tickMs: options.rollouts?.tickMs ?? 1_000, maxWindowMs, log: app.log })
  const notifier = new RolloutNotifier({ log: app.log })
  const unsubscribe = registry.hub.subscribe(notifier)
  app.decorate('rollouts', rollouts)
  app.decorate('signalBook', book)
  void app.register(routerRoutes, { registry, book })
  void app.register(signalRoutes, { registry, source, book, clock, maxWindowMs })
  void app.register(rolloutRoutes, { registry, book })
  void app.register(whoamiRoutes)
  void app.register(consoleRoutes, options.console ?? {})
  app.addHook('onReady', (done) => {
    if ((options.rollouts?.tickMs ?? 1_000) > 0) rollouts.start()
    done()
  })
  app.addHook('onClose', async () => {
    unsubscribe()
    await rollouts.stop()
  })
  return app
}
