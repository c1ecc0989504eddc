import type { IncomingMessage } from 'node:http'
import t from 'tap'
import WebSocket from 'ws'
import { parentOf, SERVER, spansOfTrace, startMemoryTracing } from '../helpers/tracing-harness.js'
import { addWebSocketUpstream, startTestMesh } from '../helpers/router-harness.js'

const exporter = await startMemoryTracing()

void t.test('an upgrade is one server span, from the handshake to the close, whose context the upstream receives', async (t) => {
  const mesh = await startTestMesh({ drainTimeoutMs: 2_000 })
  t.teardown(mesh.close)
  const upstream = await addWebSocketUpstream(mesh, 'api', 'v1')
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const seen = new Promise<IncomingMessage>((resolve) => upstream.wss.once('connection', (_socket, request) => resolve(request)))
  const client = new WebSocket(`${mesh.proxyUrl.replace(/^http/, 'ws')}/api/live`, { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } })
  await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject))
  const request = await seen
  t.equal(exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId).length, 0, 'the span stays open while the connection is')
  client.close(1000)
  const [span] = await spansOfTrace(exporter, traceId, 1)
  if (!span) throw new Error('no span')
  t.equal(span.kind, SERVER)
  t.equal(span.name, 'GET api-0')
  t.equal(parentOf(span), '00f067aa0ba902b7', 'it continues the incoming trace')
  t.match(span.attributes, {
    'switchyard.upgrade': 'websocket',
    'switchyard.service': 'api',
    'switchyard.version': 'v1',
    'switchyard.choice': 'weighted',
    'http.response.status_code': 101,
    'url.path': '/api/live'
  })
  t.equal(request.headers.traceparent, `00-${traceId}-${span.spanContext().spanId}-01`, 'the upstream sees the span as its parent')
})
