import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { traceRequests } from '../../telemetry/fastify-tracing.js'
import { currentTracing } from '../../telemetry/tracing-sdk.js'

export interface ApiSettings {
  service: string
  version: string
  instance: string
  /** extra latency per request, for canary demos */
  latencyMs: number
  /** share of requests answered 500 */
  errorRate: number
  random?: () => number
}

/** The demo upstream ("atseashop/api"): answers who it is and what it was asked. */
export function buildApiApp(settings: ApiSettings): FastifyInstance {
  const app = Fastify({ logger: false, forceCloseConnections: 'idle' })
  traceRequests(app, currentTracing())
  const random = settings.random ?? Math.random
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => {
    // Count the body without keeping it: uploads of any size pass through.
    let bytes = 0
    payload.on('data', (chunk: Buffer) => (bytes += chunk.length))
    payload.on('end', () => done(null, bytes))
    payload.on('error', done)
  })
  app.get('/healthz', (_request, reply) => reply.send({ status: 'ok' }))
  const handler = async (request: FastifyRequest, reply: FastifyReply) => {
    if (settings.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, settings.latencyMs))
    if (settings.errorRate > 0 && random() < settings.errorRate) {
      return reply.code(500).send({ service: settings.service, version: settings.version, instance: settings.instance, error: 'injected failure' })
    }
    return {
      service: settings.service,
      version: settings.version,
      instance: settings.instance,
      method: request.method,
      path: request.url,
      requestId: request.headers['x-request-id'] ?? null,
      ...(typeof request.body === 'number' ? { receivedBytes: request.body } : {})
    }
  }
  app.all('/', handler)
  app.all('/*', handler)
  return app
}
