import { connect as netConnect } from 'node:net'
import t, { type Test } from 'tap'
import { closeSession, curl, h2Request, openSession, registerInstance, startH2cUpstream, type H2Upstream } from '../helpers/h2-harness.js'
import { get } from '../helpers/http.js'
import { metric, scrape } from '../helpers/prometheus.js'
import { waitFor } from '../helpers/registry-harness.js'
import { startTestMesh, type TestMesh } from '../helpers/router-harness.js'

async function mesh(t: Test, config: Record<string, unknown> = {}): Promise<TestMesh> {
  const started = await startTestMesh({ drainTimeoutMs: 2_000, ...config })
  t.teardown(started.close)
  return started
}

async function session(t: Test, url: string) {
  const opened = await openSession(url)
  t.teardown(() => closeSession(opened))
  return opened
}

void t.test('h2c prior knowledge and HTTP/1.1 on the same port, to an HTTP/1.1 instance', async (t) => {
  const m = await mesh(t)
  const upstream = await m.addUpstream('api', 'v1')
  const client = await session(t, m.proxyUrl)
  const answer = await h2Request(client, '/api/hello?q=1', { headers: { 'x-forwarded-for': '6.6.6.6', 'x-request-id': 'h2-request-1' } })
  t.equal(answer.status, 200)
  t.equal(answer.headers['x-switchyard-version'], 'v1')
  t.equal(answer.headers['x-request-id'], 'h2-request-1')
  const body = JSON.parse(answer.body)
  t.equal(body.path, '/api/hello?q=1')
  t.match(body.headers.host, /^127\.0\.0\.1:\d+$/, ':authority became Host')
  t.equal(body.headers['x-forwarded-for'], '127.0.0.1', 'a spoofed x-forwarded-for is replaced')
  t.equal(body.headers['x-forwarded-proto'], 'http')
  t.notOk(
    Object.keys(body.headers).some((name) => name.startsWith(':')),
    'no pseudo-header reaches the instance'
  )
  t.equal(upstream.lastRequest?.httpVersion, '1.1')

  const posted = await h2Request(client, '/api/echo', { method: 'POST', body: 'x'.repeat(100_000), headers: { 'content-type': 'text/plain' } })
  t.equal(posted.status, 200, 'a body streams through')
  t.equal(JSON.parse(posted.body).headers['content-length'], undefined, 'no content-length was sent, so none is made up')

  const http1 = await m.get('/api/hello')
  t.equal(http1.status, 200, 'HTTP/1.1 on the same port')
  t.equal(http1.json.version, 'v1')

  const viaCurl = await curl(['--http2-prior-knowledge', '--include', `${m.proxyUrl}/api/from-curl`])
  t.match(viaCurl, /^HTTP\/2 200/)
  t.match(viaCurl, /x-switchyard-version: v1/)
  t.match(viaCurl, /"path":"\/api\/from-curl"/)
  const viaCurlHttp1 = await curl(['--http1.1', '--include', `${m.proxyUrl}/api/from-curl`])
  t.match(viaCurlHttp1, /^HTTP\/1\.1 200/)
  // curl --http2 over cleartext offers Upgrade: h2c, which the router answers as HTTP/1.1.
  t.match(await curl(['--http2', '--include', `${m.proxyUrl}/api/upgrade`]), /^HTTP\/1\.1 200/)
})

void t.test('HTTP/2 requests follow the same rules: weights, forced and sticky versions, refusals, paths', async (t) => {
  const m = await mesh(t, { routes: [{ match: { pathPrefix: '/api' }, service: 'api', stripPrefix: true }] })
  await m.addUpstream('api', 'v1')
  await m.addUpstream('api', 'v2')
  await m.setWeights('api', { v1: 50, v2: 50 })
  const client = await session(t, m.proxyUrl)
  const counts: Record<string, number> = { v1: 0, v2: 0 }
  for (let index = 0; index < 100; index++) {
    const answer = await h2Request(client, '/api/x')
    counts[String(answer.headers['x-switchyard-version'])]!++
  }
  t.same(counts, { v1: 50, v2: 50 }, 'smooth weighting splits exactly')
  const forced = await Promise.all(Array.from({ length: 10 }, () => h2Request(client, '/api/x', { headers: { 'x-switchyard-version': 'v2' } })))
  t.ok(
    forced.every((answer) => answer.headers['x-switchyard-version'] === 'v2'),
    'x-switchyard-version forces a version'
  )
  const sticky = await Promise.all(Array.from({ length: 10 }, () => h2Request(client, '/api/x', { headers: { 'x-switchyard-key': 'user-42' } })))
  t.equal(new Set(sticky.map((answer) => answer.headers['x-switchyard-version'])).size, 1, 'a sticky key keeps one version')
  t.equal(JSON.parse(sticky[0]!.body).path, '/x', 'the rule strips its prefix')

  const unknown = await h2Request(client, '/api/x', { headers: { 'x-switchyard-version': 'v9' } })
  t.equal(unknown.status, 503)
  t.equal(JSON.parse(unknown.body).code, 'UNKNOWN_VERSION')
  const noRoute = await h2Request(client, '/nothing')
  t.equal(noRoute.status, 404)
  t.equal(JSON.parse(noRoute.body).code, 'ROUTE_NOT_FOUND')
  const dotted = await h2Request(client, '/api/%2e%2e/api/y')
  t.equal(JSON.parse(dotted.body).path, '/y', 'the path is normalised before matching and forwarding')
  const badEscape = await h2Request(client, '/api/%zz')
  t.equal(badEscape.status, 400)
  t.equal(JSON.parse(badEscape.body).code, 'INVALID_PATH')

  const text = await scrape(m.adminUrl)
  t.equal(metric(text, 'switchyard_requests_total', { service: 'api', code: '200' }), 121, 'HTTP/2 requests are counted like any')
  t.equal(metric(text, 'switchyard_unrouted_requests_total', { reason: 'ROUTE_NOT_FOUND' }), 1)
})

void t.test('HTTP/2 CONNECT is refused (by Node, before the proxy)', async (t) => {
  const m = await mesh(t)
  const upstream = await m.addUpstream('api', 'v1')
  const client = await session(t, m.proxyUrl)
  const connect = await h2Request(client, '', { method: 'CONNECT', headers: { ':authority': 'example.com:443' } })
  t.equal(connect.status, 405)
  t.equal(upstream.hits, 0, 'nothing reached the instance')
})

void t.test('h2c instances: HTTP/1.1 and HTTP/2 clients, trailers to HTTP/2 clients, request bodies', async (t) => {
  const m = await mesh(t, { services: { api: { protocol: 'h2c' } } })
  const upstream = await startH2cUpstream('v1')
  t.teardown(upstream.close)
  await registerInstance(m, 'api', 'v1', upstream.port)
  const client = await session(t, m.proxyUrl)
  const answer = await h2Request(client, '/api/a', { method: 'POST', body: 'hello' })
  t.equal(answer.status, 200)
  t.equal(answer.headers['x-switchyard-version'], 'v1')
  const body = JSON.parse(answer.body)
  t.equal(body.length, 5)
  t.equal(body.headers[':authority'], m.proxyUrl.slice('http://'.length), 'Host travels as :authority')
  t.equal(body.headers['x-forwarded-proto'], 'http')
  t.equal(answer.trailers?.['x-checksum'], '5', "the instance's trailers reach an HTTP/2 client")

  const http1 = await m.get('/api/b')
  t.equal(http1.status, 200, 'an HTTP/1.1 client reaches the h2c instance')
  t.equal(http1.json.path, '/api/b')
  t.equal(upstream.hits, 2)
  const routes = await m.routes()
  t.equal(routes.rules[0].protocol, 'h2c', '/routes names the protocol')
})

void t.test('an h2c instance that is down, resets or stalls', async (t) => {
  const m = await mesh(t, { services: { api: { protocol: 'h2c' } }, timeouts: { firstByteMs: 300 } })
  const resetting = await startH2cUpstream('v1', (stream) => stream.close(2))
  t.teardown(resetting.close)
  const stalling = await startH2cUpstream('v2', () => {})
  t.teardown(stalling.close)
  await registerInstance(m, 'api', 'v1', resetting.port)
  await registerInstance(m, 'api', 'v2', stalling.port)
  const client = await session(t, m.proxyUrl)
  const reset = await h2Request(client, '/api/x', { headers: { 'x-switchyard-version': 'v1' } })
  t.equal(reset.status, 502)
  t.equal(JSON.parse(reset.body).code, 'UPSTREAM_RESET')
  const stalled = await h2Request(client, '/api/x', { headers: { 'x-switchyard-version': 'v2' } })
  t.equal(stalled.status, 504)
  t.equal(JSON.parse(stalled.body).code, 'UPSTREAM_TIMEOUT')

  // A port nobody listens on: refused, and (GET) retried on no other instance.
  const closed = await startH2cUpstream('v3')
  await registerInstance(m, 'api', 'v3', closed.port)
  await closed.close()
  const refused = await h2Request(client, '/api/x', { headers: { 'x-switchyard-version': 'v3' } })
  t.equal(refused.status, 502)
  t.equal(JSON.parse(refused.body).code, 'UPSTREAM_UNREACHABLE')
})

void t.test('drain: an HTTP/2 client gets a GOAWAY, and its stream under way finishes', async (t) => {
  let release: (() => void) | undefined
  const m = await startTestMesh({ drainTimeoutMs: 5_000 })
  t.teardown(m.close)
  await m.addUpstream('api', 'v1', (request, response) => {
    request.resume()
    release = () => response.end('late answer')
  })
  const client = await openSession(m.proxyUrl)
  let goaway = false
  client.on('goaway', () => (goaway = true))
  const pending = h2Request(client, '/api/slow')
  await waitFor(() => release, 'the request reaching the instance')
  const closing = m.router.close()
  await waitFor(() => (goaway ? true : undefined), 'a GOAWAY')
  release!()
  const answer = await pending
  t.equal(answer.status, 200)
  t.equal(answer.body, 'late answer')
  await closing
  t.equal(m.router.listener.sessionCount, 0)
})

void t.test('a connection that never says which protocol it speaks is closed on shutdown', async (t) => {
  const m = await startTestMesh({ drainTimeoutMs: 5_000 })
  t.teardown(m.close)
  const socket = netConnect(Number(new URL(m.proxyUrl).port), '127.0.0.1')
  await new Promise((resolve) => socket.once('connect', resolve))
  const closedSocket = new Promise((resolve) => socket.once('close', resolve))
  const started = Date.now()
  await m.router.close()
  await closedSocket
  t.ok(Date.now() - started < 4_000, 'the router did not wait for it until its drain timeout')
})

void t.test('a preface split over several packets is still HTTP/2', async (t) => {
  const m = await mesh(t)
  await m.addUpstream('api', 'v1')
  const socket = netConnect(Number(new URL(m.proxyUrl).port), '127.0.0.1')
  t.teardown(() => socket.destroy())
  await new Promise((resolve) => socket.once('connect', resolve))
  const received: Buffer[] = []
  socket.on('data', (chunk: Buffer) => received.push(chunk))
  socket.setNoDelay(true)
  socket.write('PRI * HT')
  await new Promise((resolve) => setTimeout(resolve, 50))
  socket.write('TP/2.0\r\n\r\nSM\r\n\r\n')
  // An empty SETTINGS frame: the server answers with its own SETTINGS (type 4).
  socket.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]))
  await waitFor(() => (Buffer.concat(received).length >= 9 ? true : undefined), 'the server SETTINGS frame')
  t.equal(Buffer.concat(received)[3], 4, 'the router answered with HTTP/2 SETTINGS')
  const http1 = await get(`${m.proxyUrl}/api/still`)
  t.equal(http1.status, 200)
})

void t.test('an HTTP/2-only instance behind an http1 service: 502, not a hang', async (t) => {
  const m = await mesh(t)
  const upstream: H2Upstream = await startH2cUpstream('v1')
  t.teardown(upstream.close)
  const client = await session(t, m.proxyUrl)
  await registerInstance(m, 'api', 'v1', upstream.port)
  const answers = await Promise.all(Array.from({ length: 20 }, (_, index) => h2Request(client, `/api/${index}`)))
  // The service speaks h2c but the route says http1 (the default): an HTTP/1.1 request to an HTTP/2-only server fails.
  t.ok(answers.every((answer) => answer.status === 502))
})
