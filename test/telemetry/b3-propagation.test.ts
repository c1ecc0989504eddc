import t from 'tap'
import { startTracing } from '../../telemetry/tracing-sdk.js'
import { startTestMesh } from '../helpers/router-harness.js'
import { parentOf, recordedBefore, routeTraced, startMemoryTracing, startMessagePlane } from '../helpers/tracing-harness.js'

// OTEL_PROPAGATORS=b3 given through startTracing's `env`, which wins over process.env.
process.env.OTEL_PROPAGATORS = 'tracecontext'

await t.test('an unknown propagator name is refused with the names that work', async (t) => {
  await t.rejects(startTracing('switchyard-test', { env: { OTEL_PROPAGATORS: 'b3,zipkin' }, spanProcessors: [] }), {
    message: 'OTEL_PROPAGATORS=b3,zipkin: zipkin is not supported: use tracecontext, baggage, b3, b3multi, jaeger or none'
  })
})

const exporter = await startMemoryTracing({ OTEL_PROPAGATORS: 'b3' })

void t.test('b3: the router continues a b3 trace and passes the single b3 header on', async (t) => {
  const mesh = await startTestMesh()
  t.teardown(mesh.close)
  await mesh.addUpstream('api', 'v1.3')
  const traceId = '80f198ee56343ba864fe8b2a57d3eff7'
  const { server, client, upstream } = await routeTraced(mesh, exporter, traceId, { b3: `${traceId}-e457b5a2e4d86bd1-1` })
  t.equal(parentOf(server), 'e457b5a2e4d86bd1', 'the server span is a child of the b3 span')
  t.equal(parentOf(client), server.spanContext().spanId)
  t.equal(upstream.b3, `${traceId}-${client.spanContext().spanId}-1`, 'the upstream continues the client span, sampled')
  t.equal(upstream.traceparent, undefined, 'no W3C header: process.env said tracecontext, the env option said b3')
})

void t.test('b3 with sampled 0: no recorded spans, the trace and the decision still travel', async (t) => {
  const mesh = await startTestMesh()
  t.teardown(mesh.close)
  const upstream = await mesh.addUpstream('api', 'v1.3')
  const traceId = '90f198ee56343ba864fe8b2a57d3eff7'
  const answer = await mesh.get('/api/x', { b3: `${traceId}-e457b5a2e4d86bd1-0` })
  t.equal(answer.status, 200)
  const b3 = String(upstream.lastRequest?.headers.b3)
  const [forwardedTrace, forwardedSpan, sampled] = b3.split('-')
  t.equal(forwardedTrace, traceId, 'same trace')
  t.equal(sampled, '0', 'still not sampled')
  t.match(forwardedSpan, /^[0-9a-f]{16}$/)
  t.not(forwardedSpan, 'e457b5a2e4d86bd1', "the upstream's parent is the router's (unrecorded) span")
  const later = 'a0f198ee56343ba864fe8b2a57d3eff7'
  t.same(await recordedBefore(mesh, exporter, traceId, [later, { b3: `${later}-e457b5a2e4d86bd1-1` }]), [], 'no spans recorded for the unsampled request')
})

void t.test('b3: a message through the message router continues the b3 trace', async (t) => {
  const mesh = await startTestMesh()
  const plane = await startMessagePlane(mesh, exporter)
  t.teardown(async () => {
    await plane.close()
    await mesh.close()
  })
  const traceId = 'b0f198ee56343ba864fe8b2a57d3eff7'
  const { forwarded, consumer, producer } = await plane.route(traceId, { b3: `${traceId}-c7ad6b7169203331-1` })
  t.equal(parentOf(consumer), 'c7ad6b7169203331', "the consumer span's parent is the b3 span")
  t.equal(parentOf(producer), consumer.spanContext().spanId)
  t.equal(forwarded.headers.b3, `${traceId}-${producer.spanContext().spanId}-1`, 'the forwarded message carries the producer span in b3')
})
