import t from 'tap'
import { startTestMesh } from '../helpers/router-harness.js'
import { parentOf, recordedBefore, routeTraced, startMemoryTracing, startMessagePlane } from '../helpers/tracing-harness.js'

// OTEL_PROPAGATORS=b3multi from process.env, startTracing's default.
process.env.OTEL_PROPAGATORS = 'b3multi'
const exporter = await startMemoryTracing()

void t.test('b3multi: the router continues an X-B3-* trace and passes X-B3-* headers on', async (t) => {
  const mesh = await startTestMesh()
  t.teardown(mesh.close)
  await mesh.addUpstream('api', 'v1.3')
  const traceId = '463ac35c9f6413ad48485a3953bb6124'
  const { server, client, upstream } = await routeTraced(mesh, exporter, traceId, { 'X-B3-TraceId': traceId, 'X-B3-SpanId': 'a2fb4a1d1a96d312', 'X-B3-Sampled': '1' })
  t.equal(parentOf(server), 'a2fb4a1d1a96d312', 'the server span is a child of the X-B3 span')
  t.equal(parentOf(client), server.spanContext().spanId)
  t.match(upstream, { 'x-b3-traceid': traceId, 'x-b3-spanid': client.spanContext().spanId, 'x-b3-sampled': '1' }, 'the upstream continues the client span, sampled')
  t.equal(upstream.b3, undefined, 'no single b3 header')
  t.equal(upstream.traceparent, undefined, 'no W3C header')
})

void t.test("b3multi: stale trace headers of the client never reach the upstream beside the router's", async (t) => {
  const mesh = await startTestMesh()
  t.teardown(mesh.close)
  await mesh.addUpstream('api', 'v1.3')
  const traceId = '863ac35c9f6413ad48485a3953bb6124'
  const { client, upstream } = await routeTraced(mesh, exporter, traceId, {
    'X-B3-TraceId': traceId,
    'X-B3-SpanId': 'a2fb4a1d1a96d312',
    'X-B3-ParentSpanId': '0102030405060708',
    'X-B3-Sampled': '1',
    b3: `${traceId}-a2fb4a1d1a96d312-1`,
    traceparent: `00-${traceId}-a2fb4a1d1a96d312-01`,
    'uber-trace-id': `${traceId}:a2fb4a1d1a96d312:0:1`
  })
  t.equal(upstream['x-b3-spanid'], client.spanContext().spanId, "the upstream's parent is the router's client span")
  t.equal(upstream['x-b3-parentspanid'], undefined, "the client's parent span id is not passed on")
  t.equal(upstream.b3, undefined, "the client's single b3 header is not passed on")
  t.equal(upstream.traceparent, undefined, "the client's traceparent is not passed on")
  t.equal(upstream['uber-trace-id'], undefined, "the client's Jaeger header is not passed on")
})

void t.test('b3multi with X-B3-Sampled 0: no recorded spans, the trace and the decision still travel', async (t) => {
  const mesh = await startTestMesh()
  t.teardown(mesh.close)
  const upstream = await mesh.addUpstream('api', 'v1.3')
  const traceId = '563ac35c9f6413ad48485a3953bb6124'
  const answer = await mesh.get('/api/x', { 'X-B3-TraceId': traceId, 'X-B3-SpanId': 'a2fb4a1d1a96d312', 'X-B3-Sampled': '0' })
  t.equal(answer.status, 200)
  const headers = upstream.lastRequest?.headers ?? {}
  t.equal(headers['x-b3-traceid'], traceId, 'same trace')
  t.equal(headers['x-b3-sampled'], '0', 'still not sampled')
  t.match(headers['x-b3-spanid'], /^[0-9a-f]{16}$/)
  t.not(headers['x-b3-spanid'], 'a2fb4a1d1a96d312', "the upstream's parent is the router's (unrecorded) span")
  const later = '663ac35c9f6413ad48485a3953bb6124'
  const laterHeaders = { 'X-B3-TraceId': later, 'X-B3-SpanId': 'a2fb4a1d1a96d312', 'X-B3-Sampled': '1' }
  t.same(await recordedBefore(mesh, exporter, traceId, [later, laterHeaders]), [], 'no spans recorded for the unsampled request')
})

void t.test('b3multi: a message through the message router continues the X-B3-* trace', async (t) => {
  const mesh = await startTestMesh()
  const plane = await startMessagePlane(mesh, exporter)
  t.teardown(async () => {
    await plane.close()
    await mesh.close()
  })
  const traceId = '763ac35c9f6413ad48485a3953bb6124'
  // AMQP keeps header case: a producer's X-B3-* must be read whatever its case.
  const { forwarded, consumer, producer } = await plane.route(traceId, { 'X-B3-TraceId': traceId, 'X-B3-SpanId': 'c7ad6b7169203331', 'X-B3-Sampled': '1' })
  t.equal(parentOf(consumer), 'c7ad6b7169203331', "the consumer span's parent is the X-B3 span")
  t.equal(parentOf(producer), consumer.spanContext().spanId)
  t.match(forwarded.headers, { 'x-b3-traceid': traceId, 'x-b3-spanid': producer.spanContext().spanId, 'x-b3-sampled': '1' }, 'the forwarded message carries the producer span')
  t.same(
    Object.keys(forwarded.headers).filter((name) => name.startsWith('X-B3-')),
    [],
    "the producer's own trace headers are replaced, not kept beside the router's"
  )
})
