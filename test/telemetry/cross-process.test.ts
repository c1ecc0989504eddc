import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { request } from 'undici'
import { startOtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js'
import { cliPath, freePort, spawnNode, type SpawnedProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/registry-harness.js'

const sample = (name: string) => fileURLToPath(new URL(`../../dist/sample-services/${name}/main.js`, import.meta.url))
const TOKEN = 'trace-test-admin-token-0123456789'

async function readyz(url: string): Promise<boolean> {
  return request(`${url}/readyz`).then(
    async (r) => {
      await r.body.dump()
      return r.statusCode === 200
    },
    () => false
  )
}

void t.test('webfront -> router -> api, and an order through the message router, each one trace across processes', async (t) => {
  const receiver = await startOtlpReceiver()
  const dataDir = await mkdtemp(join(tmpdir(), 'switchyard-trace-'))
  const processes: SpawnedProcess[] = []
  t.teardown(async () => {
    await Promise.all(processes.map((p) => p.kill('SIGKILL')))
    await receiver.close()
    await rm(dataDir, { recursive: true, force: true })
  })
  const [registryPort, routerPort, adminPort, messagePort] = [await freePort(), await freePort(), await freePort(), await freePort()]
  const registryUrl = `http://127.0.0.1:${registryPort}`
  const routerUrl = `http://127.0.0.1:${routerPort}`
  const messageUrl = `http://127.0.0.1:${messagePort}`
  const env = {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
    OTEL_SERVICE_NAME: '',
    SWITCHYARD_ADMIN_TOKEN: TOKEN,
    SWITCHYARD_TOKEN: TOKEN,
    SWITCHYARD_REGISTRY_URL: registryUrl,
    SWITCHYARD_LOG_LEVEL: 'warn'
  }
  const start = (args: string[], extra: Record<string, string> = {}) => {
    const child = spawnNode(args, { ...env, ...extra })
    processes.push(child)
    return child
  }
  start([cliPath, 'registry', '--host', '127.0.0.1', '--port', String(registryPort), '--data-dir', dataDir])
  await waitFor(() => readyz(registryUrl).then((ok) => (ok ? true : undefined)), 'registry', 30_000)
  start([sample('api')], { SWITCHYARD_VERSION: 'v1.3', SWITCHYARD_INSTANCE_ID: 'api-1' })
  start([sample('webfront')], { SWITCHYARD_VERSION: 'v1.3', SWITCHYARD_INSTANCE_ID: 'web-1', ROUTER_URL: routerUrl, MESSAGE_ROUTER_URL: messageUrl })
  start([sample('message-plane')], { SWITCHYARD_MESSAGE_ROUTER_ADMIN_HOST: '127.0.0.1', SWITCHYARD_MESSAGE_ROUTER_ADMIN_PORT: String(messagePort), ORDERS_WORKER_VERSIONS: 'v1' })
  start([cliPath, 'router', '--host', '127.0.0.1', '--port', String(routerPort), '--admin-port', String(adminPort), '--routes', '/api=api,/=webfront'])
  await waitFor(() => readyz(`http://127.0.0.1:${adminPort}`).then((ok) => (ok ? true : undefined)), 'router', 30_000)
  await waitFor(() => readyz(messageUrl).then((ok) => (ok ? true : undefined)), 'message router', 30_000)
  await waitFor(
    async () => {
      const routes = (await (await request(`http://127.0.0.1:${adminPort}/routes`)).body.json()) as { services: { name: string; versions: { instances: unknown[] }[] }[] }
      const count = (name: string) => routes.services.find((s) => s.name === name)?.versions.reduce((sum, v) => sum + v.instances.length, 0) ?? 0
      return count('api') > 0 && count('webfront') > 0 && count('orders-worker') > 0 ? true : undefined
    },
    'router routes to api, webfront and orders-worker',
    30_000
  )

  // A request from outside, with its own trace context, enters through the router.
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
  const page = await request(`${routerUrl}/api-call`, { headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, 'x-request-id': 'trace-test-1' } })
  t.equal(page.statusCode, 200)
  const answer = (await page.body.json()) as { api: { status: number } }
  t.equal(answer.api.status, 200)

  const spansOf = (service: string) => receiver.spans.filter((span) => span.traceId === traceId && span.service === service)
  await waitFor(
    () => (spansOf('api').length > 0 && spansOf('webfront').length > 0 && spansOf('switchyard-router').length >= 4 ? true : undefined),
    'spans of all three services',
    30_000
  )
  const inTrace = receiver.spans.filter((span) => span.traceId === traceId)
  const byId = new Map(inTrace.map((span) => [span.spanId, span]))
  const routerServer = spansOf('switchyard-router').filter((span) => span.kind === 2)
  const routerClient = spansOf('switchyard-router').filter((span) => span.kind === 3)
  t.equal(routerServer.length, 2, 'one router server span per request (edge -> webfront, webfront -> api)')
  t.equal(routerClient.length, 2, 'one client span per upstream attempt')
  const webfront = spansOf('webfront')[0] as ReceivedSpan
  const api = spansOf('api')[0] as ReceivedSpan
  // Chain: edge -> router(server) -> router(client) -> webfront -> router(server) -> router(client) -> api
  const edgeServer = routerServer.find((span) => span.parentSpanId === '00f067aa0ba902b7')
  t.ok(edgeServer, 'the router continues the caller trace')
  t.equal(byId.get(webfront.parentSpanId ?? '')?.kind, 3, 'webfront is a child of a router client span')
  t.equal(byId.get(byId.get(webfront.parentSpanId ?? '')?.parentSpanId ?? '')?.spanId, edgeServer?.spanId)
  const apiParent = byId.get(api.parentSpanId ?? '')
  t.equal(apiParent?.service, 'switchyard-router')
  t.equal(byId.get(apiParent?.parentSpanId ?? '')?.kind, 2)
  t.equal(byId.get(byId.get(apiParent?.parentSpanId ?? '')?.parentSpanId ?? '')?.service, 'webfront', 'api -> router -> webfront: one trace of 3 services')
  const apiRoute = routerServer.find((span) => span.attributes['switchyard.service'] === 'api')
  t.match(apiRoute?.attributes, { 'switchyard.version': 'v1.3', 'switchyard.version.weight': 100, 'switchyard.choice': 'weighted', 'http.response.status_code': 200 })
  t.equal(edgeServer?.attributes['switchyard.request_id'], 'trace-test-1')

  // An order: webfront -> message router (consumer, producer) -> worker, one trace.
  const orderTrace = 'a1b2c3d4e5f60718293a4b5c6d7e8f90'
  const order = await request(`${routerUrl}/orders`, { method: 'POST', headers: { traceparent: `00-${orderTrace}-1111111111111111-01` } })
  t.equal(order.statusCode, 202)
  await order.body.dump()
  const orderSpans = () => receiver.spans.filter((span) => span.traceId === orderTrace)
  await waitFor(() => (orderSpans().some((span) => span.name === 'orders.v1 process') ? true : undefined), 'the worker span of the order', 30_000)
  const spans = orderSpans()
  const ids = new Map(spans.map((span) => [span.spanId, span]))
  const worker = spans.find((span) => span.name === 'orders.v1 process') as ReceivedSpan
  const producer = ids.get(worker.parentSpanId ?? '')
  t.equal(producer?.name, 'orders.v1 publish', 'the worker continues the producer span')
  const consumer = ids.get(producer?.parentSpanId ?? '')
  t.equal(consumer?.name, 'orders process', 'the publish is a child of the consumer span')
  t.equal(ids.get(consumer?.parentSpanId ?? '')?.service, 'webfront', "the consumer's parent is the producer's context (webfront)")
})

void t.test('OTEL_TRACES_EXPORTER=jaeger sends Thrift batches to a Jaeger HTTP endpoint', async (t) => {
  const receiver = await startOtlpReceiver()
  const dataDir = await mkdtemp(join(tmpdir(), 'switchyard-jaeger-'))
  t.teardown(async () => {
    await receiver.close()
    await rm(dataDir, { recursive: true, force: true })
  })
  const port = await freePort()
  const registry = spawnNode([cliPath, 'registry', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, '--log-level', 'warn'], {
    SWITCHYARD_ADMIN_TOKEN: TOKEN,
    OTEL_TRACES_EXPORTER: 'jaeger',
    OTEL_EXPORTER_JAEGER_ENDPOINT: `${receiver.url}/api/traces`
  })
  t.teardown(() => registry.kill('SIGKILL'))
  await waitFor(() => readyz(`http://127.0.0.1:${port}`).then((ok) => (ok ? true : undefined)), 'registry', 30_000)
  await waitFor(() => (receiver.others.some((batch) => batch.path === '/api/traces') ? true : undefined), 'a Jaeger batch', 30_000)
  const batch = receiver.others.find((b) => b.path === '/api/traces')
  t.match(batch?.contentType, /thrift/)
  t.ok((batch?.bytes ?? 0) > 0)
  t.equal(await registry.kill('SIGTERM'), 0)
})
