import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { request } from 'undici'
import type { InstanceRecord } from '../../core/registry-events.js'
import { RegistryModel } from '../../core/registry-model.js'
import { buildTable } from '../../core/route-table.js'
import { parseProxyConfig } from '../../router/config.js'
import { createProxyHandler } from '../../router/http/proxy.js'
import { RouteRules } from '../../router/http/route-rules.js'
import { RouterMetrics } from '../../router/metrics.js'
import { EndpointCatalog } from '../../router/upstream/endpoint.js'
import { FakeTimers } from '../helpers/fake-timers.js'
import { waitFor } from '../helpers/registry-harness.js'
import { startUpstream, type UpstreamHandler } from '../helpers/router-harness.js'

/**
 * The exchange's timeouts on a fake clock: the proxy handler gets the test's clock and
 * timers, so each deadline is checked to the millisecond and reached without a real wait.
 */

/**
 * The proxy handler on a listening node:http server, with one api v1 instance answering
 * with `handler`, on `timers`; closed when `t` ends.
 */
async function proxyOnFakeTime(
  t: Test,
  timers: FakeTimers,
  handler: UpstreamHandler,
  config: Record<string, unknown>
): Promise<{ url: string; hits: () => number; metrics: RouterMetrics }> {
  const upstream = await startUpstream('v1', 'api-v1-timed', handler)
  t.teardown(upstream.close)
  const catalog = new EndpointCatalog({ connectTimeoutMs: 1_000, keepAliveMs: 4_000, connections: 4 })
  t.teardown(() => catalog.closeAll())
  const instance: InstanceRecord = { id: upstream.id, service: 'api', version: 'v1', host: '127.0.0.1', port: upstream.port, metadata: {}, status: 'up', registeredAt: 0 }
  const model = RegistryModel.fromSnapshot({ revision: 1, services: [{ name: 'api', weights: { v1: 100 }, instances: [instance] }] })
  const proxyConfig = parseProxyConfig({ routes: [{ match: { pathPrefix: '/api' }, service: 'api' }], ...config }, 'test')
  const metrics = new RouterMetrics()
  const handle = createProxyHandler({
    rules: new RouteRules(proxyConfig.routes, proxyConfig),
    tables: { table: buildTable(model, catalog.endpointFor), ready: true },
    config: proxyConfig,
    metrics,
    log: pino({ level: 'silent' }),
    clock: timers.now,
    timers
  })
  const server: Server = createServer(handle)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  )
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits: () => upstream.hits, metrics }
}

/** An upstream that takes the request and never answers. */
const silent: UpstreamHandler = (req) => req.resume()

void t.test('no response head within firstByteMs: 504 UPSTREAM_TIMEOUT at exactly that time, not retried', async (t) => {
  const timers = new FakeTimers()
  const arrived = timers.nowMs
  const proxy = await proxyOnFakeTime(t, timers, silent, { timeouts: { firstByteMs: 200 } })
  const answer = request(`${proxy.url}/api/silent`)
  await waitFor(() => (proxy.hits() === 1 ? true : undefined), 'the request at the upstream')
  t.equal(timers.nextDue, arrived + 200, 'one timer, for the first-byte deadline (the route deadline is at 60 s)')
  timers.advance(199)
  t.equal(timers.nextDue, arrived + 200, 'a millisecond before it, still waiting')
  timers.advance(1)
  const response = await answer
  t.equal(response.statusCode, 504)
  const body: any = await response.body.json()
  t.equal(body.code, 'UPSTREAM_TIMEOUT')
  t.match(body.message, /^api v1 at 127\.0\.0\.1:\d+ sent no response headers within 200 ms$/)
  t.equal(proxy.hits(), 1, 'a timed-out request is not retried')
  t.equal(timers.nextDue, undefined, 'no timer left behind')
})

void t.test('a route deadline before the first-byte deadline: 504 ROUTE_TIMEOUT at the route deadline', async (t) => {
  const timers = new FakeTimers()
  const arrived = timers.nowMs
  const proxy = await proxyOnFakeTime(t, timers, silent, {
    timeouts: { firstByteMs: 5_000 },
    routes: [{ match: { pathPrefix: '/api' }, service: 'api', timeoutMs: 300 }]
  })
  const answer = request(`${proxy.url}/api/silent`)
  await waitFor(() => (proxy.hits() === 1 ? true : undefined), 'the request at the upstream')
  t.equal(timers.nextDue, arrived + 300, 'one timer, for the route deadline')
  timers.advance(300)
  const response = await answer
  t.equal(response.statusCode, 504)
  t.same(await response.body.json(), { code: 'ROUTE_TIMEOUT', message: 'no answer from api v1 within 300 ms' })
  t.equal(timers.nextDue, undefined, 'no timer left behind')
})

void t.test('a head in time: the timer moves on to the route deadline, which cuts the streaming answer', async (t) => {
  const timers = new FakeTimers()
  const arrived = timers.nowMs
  let upstreamClosedEarly = false
  // Server-sent events: their head goes out to the client at once, so the test sees it arrive.
  const proxy = await proxyOnFakeTime(
    t,
    timers,
    (req, res) => {
      req.resume()
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write('data: first\n\n')
      res.on('close', () => (upstreamClosedEarly = !res.writableFinished))
    },
    { timeouts: { firstByteMs: 200 }, routes: [{ match: { pathPrefix: '/api' }, service: 'api', timeoutMs: 1_000 }] }
  )
  const response = await request(`${proxy.url}/api/events`)
  t.equal(response.statusCode, 200, 'the head reached the client')
  t.equal(timers.nextDue, arrived + 200, 'the first-byte deadline is still armed')
  timers.advance(200)
  t.equal(timers.nextDue, arrived + 1_000, 'past it, with the head in, the one timer is armed for the route deadline')
  timers.advance(800)
  let received = ''
  response.body.on('data', (chunk: Buffer) => (received += String(chunk)))
  const failure = await new Promise<Error | undefined>((resolve) => {
    response.body.once('error', resolve)
    response.body.once('end', () => resolve(undefined))
  })
  t.ok(failure, 'the answer is cut, not complete')
  t.equal(received, 'data: first\n\n', 'with what was sent before the deadline')
  await waitFor(() => (upstreamClosedEarly ? true : undefined), 'the upstream request to be aborted')
  t.pass('the upstream request was aborted')
  const truncated = (await proxy.metrics.truncated.get()).values.map((value) => value.value)
  t.same(truncated, [1], 'counted as a truncated answer')
  t.equal(timers.nextDue, undefined, 'no timer left behind')
})
