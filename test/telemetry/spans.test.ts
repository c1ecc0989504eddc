import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base'
import t from 'tap'
import { MemoryBrokerAdapter } from '../../router/messages/brokers/memory-broker.js'
import { parseMessageRouterConfig } from '../../router/messages/config.js'
import { startMessageRouter } from '../../router/messages/server.js'
import { startTracing } from '../../telemetry/tracing-sdk.js'
import { TOKENS, waitFor } from '../helpers/registry-harness.js'
import { startTestMesh } from '../helpers/router-harness.js'

const exporter = new InMemorySpanExporter()
await startTracing('switchyard-test', { spanProcessors: [new SimpleSpanProcessor(exporter)] })

const SERVER = 1
const CLIENT = 2
const PRODUCER = 3
const CONSUMER = 4
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId

void t.test('a routed request: one server span, one client span, attributes and propagation', async (t) => {
  exporter.reset()
  const mesh = await startTestMesh()
  t.teardown(mesh.close)
  const upstream = await mesh.addUpstream('api', 'v1.3')
  const traceId = '0af7651916cd43dd8448eb211c80319c'
  const answer = await mesh.get('/api/orders?x=1', { traceparent: `00-${traceId}-b7ad6b7169203331-01`, 'x-request-id': 'req-1' })
  t.equal(answer.status, 200)
  await waitFor(() => (exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId).length >= 2 ? true : undefined), 'router spans')
  const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId)
  const server = spans.find((s) => s.kind === SERVER) as ReadableSpan
  const client = spans.find((s) => s.kind === CLIENT) as ReadableSpan
  t.equal(parentOf(server), 'b7ad6b7169203331', 'the server span continues the incoming traceparent')
  t.equal(parentOf(client), server.spanContext().spanId)
  t.match(server.attributes, {
    'http.request.method': 'GET',
    'url.path': '/api/orders',
    'http.route': '/api',
    'http.response.status_code': 200,
    'switchyard.service': 'api',
    'switchyard.version': 'v1.3',
    'switchyard.version.weight': 100,
    'switchyard.choice': 'weighted',
    'switchyard.request_id': 'req-1',
    'switchyard.retries': 0
  })
  t.equal(server.attributes['switchyard.registry.revision'], mesh.router.source.table.revision)
  t.match(client.attributes, { 'server.address': '127.0.0.1', 'server.port': upstream.port, 'switchyard.retry_count': 0, 'http.response.status_code': 200 })
  // The upstream sees the client span as its parent.
  t.equal(upstream.lastRequest?.headers.traceparent, `00-${traceId}-${client.spanContext().spanId}-01`)
})

void t.test('a retried request: each attempt is its own client span', async (t) => {
  exporter.reset()
  const mesh = await startTestMesh()
  t.teardown(mesh.close)
  await mesh.addUpstream('api', 'v1.3', (req, res) => {
    req.resume()
    res.statusCode = 503
    res.end('{}')
  })
  await mesh.addUpstream('api', 'v1.3')
  const traceId = '1af7651916cd43dd8448eb211c80319c'
  // Enough requests that at least one lands on the failing instance first.
  for (let i = 0; i < 10; i++) {
    const answer = await mesh.get('/api/x', { traceparent: `00-${traceId}-b7ad6b7169203331-01`, 'x-switchyard-key': `k${i}` })
    t.equal(answer.status, 200)
  }
  await waitFor(() => (exporter.getFinishedSpans().filter((s) => s.kind === SERVER).length >= 10 ? true : undefined), 'server spans')
  const servers = exporter.getFinishedSpans().filter((s) => s.kind === SERVER && s.attributes['switchyard.retries'] === 1)
  t.ok(servers.length > 0, 'some requests were retried')
  const retried = servers[0] as ReadableSpan
  const attempts = exporter.getFinishedSpans().filter((s) => s.kind === CLIENT && parentOf(s) === retried.spanContext().spanId)
  t.equal(attempts.length, 2, 'two attempts')
  t.same(attempts.map((a) => a.attributes['switchyard.retry_count']).sort(), [0, 1])
  const failed = attempts.find((a) => a.attributes['switchyard.retry_count'] === 0) as ReadableSpan
  t.equal(failed.attributes['http.response.status_code'], 503)
  t.equal(failed.status.code, 2, 'the failed attempt is marked as an error')
})

void t.test('a routed message: consumer span under the producer context, producer span injected downstream', async (t) => {
  exporter.reset()
  const mesh = await startTestMesh()
  const adapter = new MemoryBrokerAdapter()
  const config = parseMessageRouterConfig({ topics: [{ name: 'orders', service: 'orders-worker' }] }, 'test')
  const messages = await startMessageRouter(
    { adminHost: '127.0.0.1', adminPort: 0, registry: mesh.reg.url, token: TOKENS.reader, broker: 'memory', reportIntervalSeconds: 1, logLevel: 'silent' },
    { config, adapter }
  )
  t.teardown(async () => {
    await messages.close()
    await mesh.close()
  })
  await mesh.reg.call('POST', '/v1/services/orders-worker/instances', { token: 'registrar', body: { version: 'v1', host: '127.0.0.1', port: 1000, id: 'w1' } })
  await waitFor(() => (messages.router.connected && messages.source.table.services.get('orders-worker')?.versions[0]?.endpoints.length ? true : undefined), 'message router ready')
  const traceId = '2af7651916cd43dd8448eb211c80319c'
  const session = await adapter.connect()
  await session.publish('orders', { body: Buffer.from('{"id":1}'), headers: { traceparent: `00-${traceId}-c7ad6b7169203331-01`, 'x-request-id': 'm-1' } })
  await waitFor(() => (adapter.broker.depth('orders.v1') > 0 ? true : undefined), 'the message in orders.v1')
  const [forwarded] = adapter.broker.drain('orders.v1')
  const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId)
  const consumer = spans.find((s) => s.kind === CONSUMER) as ReadableSpan
  const producer = spans.find((s) => s.kind === PRODUCER) as ReadableSpan
  t.equal(parentOf(consumer), 'c7ad6b7169203331', "the consumer span's parent is the producer's context")
  t.equal(parentOf(producer), consumer.spanContext().spanId)
  t.match(consumer.attributes, { 'messaging.destination.name': 'orders', 'switchyard.version': 'v1' })
  t.equal(producer.attributes['messaging.destination.name'], 'orders.v1')
  t.equal(forwarded?.headers.traceparent, `00-${traceId}-${producer.spanContext().spanId}-01`, 'the forwarded message carries the producer span')
  t.equal(forwarded?.headers['x-request-id'], 'm-1')
  await session.close()
})
