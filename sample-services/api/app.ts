import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { WebSocketServer } from 'ws'
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
  acceptChat(app, settings)
  return app
}

/**
 * WebSocket on any path ending in /chat (`ws://localhost:8080/api/chat` through the
 * router): every message comes back as JSON naming the version and instance that
 * answered, so a canary's upgrades can be told apart. Other upgrades are refused with 404.
 */
function acceptChat(app: FastifyInstance, settings: ApiSettings): void {
  const chats = new WebSocketServer({ noServer: true, perMessageDeflate: false })
  app.server.on('upgrade', (request, socket, head) => {
    const path = (request.url ?? '').split('?')[0] ?? ''
    if (!path.endsWith('/chat') || request.headers.upgrade?.toLowerCase() !== 'websocket') {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
      return
    }
    chats.handleUpgrade(request, socket, head, (chat) => {
      chat.on('message', (data) => chat.send(JSON.stringify({ service: settings.service, version: settings.version, instance: settings.instance, echo: String(data) })))
    })
  })
  // Fastify closes only HTTP connections: the chats are told the service is going away,
  // and those whose peer does not answer the close within 2 s are cut.
  app.addHook('onClose', (_app, done) => {
    for (const chat of chats.clients) chat.close(1001, 'going away')
    const cut = setTimeout(() => {
      for (const chat of chats.clients) chat.terminate()
    }, 2_000)
    chats.close(() => {
      clearTimeout(cut)
      done()
    })
  })
}
