import t from 'tap'
import { startTestMesh } from '../helpers/router-harness.js'
import { parentOf, routeTraced, startMemoryTracing } from '../helpers/tracing-harness.js'

const exporter = await startMemoryTracing({ OTEL_PROPAGATORS: 'tracecontext,b3' })

void t.test('tracecontext,b3: a W3C request is continued and the upstream gets both traceparent and b3', async (t) => {
  const mesh = await startTestMesh()
  t.teardown(mesh.close)
  await mesh.addUpstream('api', 'v1.3')
  const traceId = '0af7651916cd43dd8448eb211c80319c'
  const { server, client, upstream } = await routeTraced(mesh, exporter, traceId, { traceparent: `00-${traceId}-b7ad6b7169203331-01` })
  t.equal(parentOf(server), 'b7ad6b7169203331', 'the server span continues the traceparent')
  t.equal(parentOf(client), server.spanContext().spanId)
  const clientSpan = client.spanContext().spanId
  t.equal(upstream.traceparent, `00-${traceId}-${clientSpan}-01`)
  t.equal(upstream.b3, `${traceId}-${clientSpan}-1`)
})

void t.test('tracecontext,b3: a b3 request is continued too, and goes on in both formats', async (t) => {
  const mesh = await startTestMesh()
  t.teardown(mesh.close)
  await mesh.addUpstream('api', 'v1.3')
  const traceId = '1af7651916cd43dd8448eb211c80319c'
  const { server, client, upstream } = await routeTraced(mesh, exporter, traceId, { b3: `${traceId}-b7ad6b7169203331-1` })
  t.equal(parentOf(server), 'b7ad6b7169203331', 'the server span continues the b3 span')
  const clientSpan = client.spanContext().spanId
  t.equal(upstream.traceparent, `00-${traceId}-${clientSpan}-01`)
  t.equal(upstream.b3, `${traceId}-${clientSpan}-1`)
})
