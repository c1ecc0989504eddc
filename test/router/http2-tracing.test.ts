import t from 'tap'
import { closeSession, h2Request, openSession, registerInstance, startH2cUpstream } from '../helpers/h2-harness.js'
import { startTestMesh } from '../helpers/router-harness.js'
import { CLIENT, parentOf, SERVER, spansOfTrace, startMemoryTracing } from '../helpers/tracing-harness.js'

const exporter = await startMemoryTracing()

void t.test('an HTTP/2 request is traced as an HTTP/1.1 one: a server span, a client span per attempt, context to the instance', async (t) => {
  const mesh = await startTestMesh({
    drainTimeoutMs: 2_000,
    routes: [
      { match: { pathPrefix: '/api' }, service: 'api' },
      { match: { pathPrefix: '/h2' }, service: 'h2svc', protocol: 'h2c' }
    ]
  })
  t.teardown(mesh.close)
  const upstream = await mesh.addUpstream('api', 'v1')
  const h2Upstream = await startH2cUpstream('v1')
  t.teardown(h2Upstream.close)
  await registerInstance(mesh, 'h2svc', 'v1', h2Upstream.port)
  const session = await openSession(mesh.proxyUrl)
  t.teardown(() => closeSession(session))

  for (const [path, traceId] of [
    ['/api/traced', '4bf92f3577b34da6a3ce929d0e0e4736'],
    ['/h2/traced', '5bf92f3577b34da6a3ce929d0e0e4737']
  ] as const) {
    const answer = await h2Request(session, path, { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } })
    t.equal(answer.status, 200, path)
    const spans = await spansOfTrace(exporter, traceId, 2)
    const server = spans.find((span) => span.kind === SERVER)
    const client = spans.find((span) => span.kind === CLIENT)
    if (!server || !client) throw new Error(`spans missing for ${path}`)
    t.equal(parentOf(server), '00f067aa0ba902b7', 'the server span continues the client trace')
    t.equal(parentOf(client), server.spanContext().spanId)
    t.match(server.attributes, { 'switchyard.version': 'v1', 'http.response.status_code': 200, 'url.path': path })
    const seen = path.startsWith('/api') ? upstream.lastRequest?.headers.traceparent : (JSON.parse(answer.body) as { headers: Record<string, string> }).headers.traceparent
    t.equal(seen, `00-${traceId}-${client.spanContext().spanId}-01`, 'the instance sees the attempt as its parent')
  }
})
