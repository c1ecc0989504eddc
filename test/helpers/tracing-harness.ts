import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import type { IncomingHttpHeaders } from 'node:http'
import { MemoryBrokerAdapter } from '../../router/messages/brokers/memory-broker.js'
import type { MessageHeaders, OutgoingMessage } from '../../router/messages/brokers/broker.js'
import { parseMessageRouterConfig } from '../../router/messages/config.js'
import { startMessageRouter } from '../../router/messages/server.js'
import { startTracing } from '../../telemetry/tracing-sdk.js'
import { TOKENS, waitFor } from './registry-harness.js'
import type { TestMesh } from './router-harness.js'

export const SERVER = 1
export const CLIENT = 2
export const PRODUCER = 3
export const CONSUMER = 4

export const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId

/** Tracing on for this process (once per process), every finished span kept in memory. */
export async function startMemoryTracing(env?: Readonly<Record<string, string | undefined>>): Promise<InMemorySpanExporter> {
  const exporter = new InMemorySpanExporter()
  await startTracing('switchyard-test', { spanProcessors: [new SimpleSpanProcessor(exporter)], ...(env ? { env } : {}) })
  return exporter
}

/** The finished spans of one trace, once there are at least `count` of them. */
export function spansOfTrace(exporter: InMemorySpanExporter, traceId: string, count: number): Promise<ReadableSpan[]> {
  return waitFor(() => {
    const spans = exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId)
    return spans.length >= count ? spans : undefined
  }, `${count} spans of trace ${traceId}`)
}

/**
 * Sends GET /api/x through the mesh's router with `headers` and returns the router's server
 * and client spans of `traceId` and the headers the (single) api upstream received.
 */
export async function routeTraced(
  mesh: TestMesh,
  exporter: InMemorySpanExporter,
  traceId: string,
  headers: Record<string, string>
): Promise<{ server: ReadableSpan; client: ReadableSpan; upstream: IncomingHttpHeaders }> {
  const answer = await mesh.get('/api/x', headers)
  if (answer.status !== 200) throw new Error(`the router answered ${answer.status}: ${answer.text}`)
  const spans = await spansOfTrace(exporter, traceId, 2)
  const server = spans.find((span) => span.kind === SERVER)
  const client = spans.find((span) => span.kind === CLIENT)
  const upstream = mesh.upstreams[0]?.lastRequest?.headers
  if (!server || !client || !upstream) throw new Error('a server span, a client span and an upstream request were expected')
  return { server, client, upstream }
}

/**
 * What was recorded for `traceId` once a later, sampled request (`later`, a trace id and its
 * headers) has been routed and recorded: a barrier, so that "nothing" is not just "not yet".
 */
export async function recordedBefore(mesh: TestMesh, exporter: InMemorySpanExporter, traceId: string, later: [string, Record<string, string>]): Promise<ReadableSpan[]> {
  await routeTraced(mesh, exporter, ...later)
  return exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId)
}

export interface MessagePlane {
  /**
   * Publishes to topic `orders` and returns the message as the router forwarded it to
   * `orders.v1`, with the router's consumer and producer spans of `traceId`.
   */
  route(traceId: string, headers: MessageHeaders): Promise<{ forwarded: OutgoingMessage; consumer: ReadableSpan; producer: ReadableSpan }>
  close(): Promise<void>
}

/** A message router on the in-memory broker, routing topic `orders` to orders-worker v1 (registered in the mesh's registry). */
export async function startMessagePlane(mesh: TestMesh, exporter: InMemorySpanExporter): Promise<MessagePlane> {
  const adapter = new MemoryBrokerAdapter()
  const config = parseMessageRouterConfig({ topics: [{ name: 'orders', service: 'orders-worker' }] }, 'test')
  const messages = await startMessageRouter(
    { adminHost: '127.0.0.1', adminPort: 0, registry: mesh.reg.url, token: TOKENS.reader, broker: 'memory', reportIntervalSeconds: 1, logLevel: 'silent' },
    { config, adapter }
  )
  await mesh.reg.call('POST', '/v1/services/orders-worker/instances', { token: 'registrar', body: { version: 'v1', host: '127.0.0.1', port: 1000, id: 'w1' } })
  await waitFor(() => (messages.router.connected && messages.source.table.services.get('orders-worker')?.versions[0]?.endpoints.length ? true : undefined), 'message router ready')
  const session = await adapter.connect()
  return {
    async route(traceId, headers) {
      await session.publish('orders', { body: Buffer.from('{"id":1}'), headers })
      await waitFor(() => (adapter.broker.depth('orders.v1') > 0 ? true : undefined), 'the message in orders.v1')
      const [forwarded] = adapter.broker.drain('orders.v1')
      const spans = await spansOfTrace(exporter, traceId, 2)
      const consumer = spans.find((span) => span.kind === CONSUMER)
      const producer = spans.find((span) => span.kind === PRODUCER)
      if (!forwarded || !consumer || !producer) throw new Error('a forwarded message, a consumer span and a producer span were expected')
      return { forwarded, consumer, producer }
    },
    async close() {
      await session.close()
      await messages.close()
    }
  }
}
