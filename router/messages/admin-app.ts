import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import { toErrorResponse } from '../../core/error-response.js'
import type { RouteTable } from '../../core/route-table.js'
import type { MessageHeaders } from './brokers/broker.js'
import { queuesOf, type MessageRouterConfig } from './config.js'
import type { MessageRouter } from './message-router.js'
import type { MessageMetrics } from './metrics.js'

export interface MessageAdminOptions {
  router: MessageRouter
  config: MessageRouterConfig
  tables: { readonly table: RouteTable<unknown>; readonly ready: boolean; readonly updatedAt: number }
  metrics: MessageMetrics
  brokerLabel: string
  maxMessageBytes?: number
}

/** Request headers that travel with a message published over HTTP. */
const CARRIED_HEADERS = ['x-switchyard-key', 'x-switchyard-version', 'x-request-id', 'traceparent', 'tracestate']

/**
 * The message router's HTTP side: health, readiness, metrics, routes, and a publish
 * endpoint so any HTTP producer can send to a topic with either broker.
 */
export function buildMessageAdminApp(options: MessageAdminOptions): FastifyInstance {
  const app = Fastify({ logger: false, forceCloseConnections: true, bodyLimit: options.maxMessageBytes ?? 1024 * 1024 })
  const { router, config, tables, metrics } = options
  const topics = new Set(config.topics.map((topic) => topic.name))

  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body))
  app.setErrorHandler(async (error, _request, reply) => {
    const { statusCode, body } = toErrorResponse(error)
    return reply.code(statusCode).send(body)
  })

  app.get('/healthz', (_request, reply) => reply.send({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    if (!tables.ready) return reply.code(503).send({ code: 'NOT_READY', message: 'waiting for the first routing table from the registry' })
    if (!router.connected) return reply.code(503).send({ code: 'NOT_READY', message: `not connected to the broker (${options.brokerLabel})` })
    return { status: 'ready', revision: tables.table.revision }
  })
  app.get('/metrics', async (_request, reply) => {
    metrics.revision.set(tables.table.revision)
    reply.header('content-type', metrics.registry.contentType)
    return metrics.registry.metrics()
  })
  app.get('/routes', (_request, reply) =>
    reply.send({
      revision: tables.table.revision,
      updatedAt: tables.updatedAt === 0 ? null : new Date(tables.updatedAt).toISOString(),
      broker: { kind: options.brokerLabel, connected: router.connected },
      topics: config.topics.map((topic) => {
        const route = tables.table.services.get(topic.service)
        const queues = queuesOf(topic.name)
        return {
          name: topic.name,
          service: topic.service,
          queue: queues.source,
          deadLetterQueue: queues.deadLetter,
          versions: (route?.versions ?? []).map((version) => ({
            name: version.name,
            weight: version.weight / 100,
            queue: queues.version(version.name),
            workers: version.endpoints.length
          }))
        }
      })
    })
  )

  app.post<{ Params: { topic: string }; Body: Buffer | undefined }>('/v1/topics/:topic/messages', async (request, reply) => {
    const topic = request.params.topic
    if (!topics.has(topic)) return reply.code(404).send({ code: 'TOPIC_NOT_FOUND', message: `topic ${JSON.stringify(topic.slice(0, 64))} is not configured` })
    const headers: MessageHeaders = {}
    for (const name of CARRIED_HEADERS) {
      const value = request.headers[name]
      if (typeof value === 'string') headers[name] = value
    }
    const messageId = typeof request.headers['x-message-id'] === 'string' ? request.headers['x-message-id'] : randomUUID()
    try {
      await router.publish(topic, {
        body: request.body ?? Buffer.alloc(0),
        headers,
        messageId,
        contentType: request.headers['content-type'],
        timestamp: Math.floor(Date.now() / 1000)
      })
    } catch (error) {
      return reply.code(503).send({ code: 'NOT_READY', message: `the message was not accepted: ${(error as Error).message}` })
    }
    return reply.code(202).send({ topic, messageId })
  })
  return app
}
