import http from 'node:http'
import type { Socket } from 'node:net'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { Client, request } from 'undici'
import type { InstanceRecord } from '../../core/registry-events.js'
import { RegistryModel } from '../../core/registry-model.js'
import { buildTable } from '../../core/route-table.js'
import type { FastifyInstance } from 'fastify'
import { buildProxyApp, type ProxyAppOptions } from '../../router/app.js'
import { parseProxyConfig } from '../../router/config.js'
import { RouterMetrics } from '../../router/metrics.js'
import { EndpointCatalog } from '../../router/upstream/endpoint.js'
import { scrapedMetric } from '../helpers/prometheus.js'
import { waitFor } from '../helpers/registry-harness.js'
import { startTestMesh, startUpstream, type TestMesh, type Upstream, type UpstreamHandler } from '../helpers/router-harness.js'

/**
 * The exchange on Node's request/response with undici's dispatch handler: what the
 * rewrite changed (Expect answered at the edge, informational answers, the response head
 * held back until the first body byte, aborts both ways, the drained 5xx of a retry) and
 * the inject() path of the Fastify app.
 */

const KiB = 1024
const MiB = 1024 * KiB

interface Received {
  status: number
  rawHeaders: string[]
  body: string
  /** the message ended normally (every byte its framing announced arrived) */
  complete: boolean
  /** the response stream failed (the connection was cut mid-answer) */
  error: Error | undefined
  /** 1xx statuses the client saw before the answer */
  informational: number[]
}

/**
 * A request through node:http, which exposes what undici hides: raw header lines, 1xx
 * answers, and whether a body ended normally or was cut. `send` writes the request body;
 * with `expect: 100-continue` it runs only once the server said 100 Continue.
 */
function exchange(url: string, options: { method?: string; headers?: http.OutgoingHttpHeaders; send?: (request: http.ClientRequest) => void } = {}): Promise<Received> {
  return new Promise((resolve, reject) => {
    const informational: number[] = []
    const send = options.send ?? ((req: http.ClientRequest) => req.end())
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false })
    req.on('information', (info) => informational.push(info.statusCode))
    req.on('error', reject)
    req.on('response', (res) => {
      const chunks: Buffer[] = []
      let error: Error | undefined
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('error', (failure) => (error = failure))
      res.on('close', () =>
        resolve({ status: res.statusCode ?? 0, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString('latin1'), complete: res.complete, error, informational })
      )
    })
    if (options.headers?.expect === undefined) send(req)
    else req.once('continue', () => send(req))
  })
}

/** Every value of the header `name` in a raw [name, value, ...] list, whatever its case. */
function headerValues(rawHeaders: readonly string[], name: string): string[] {
  const values: string[] = []
  for (let index = 0; index < rawHeaders.length; index += 2) if (rawHeaders[index]?.toLowerCase() === name) values.push(rawHeaders[index + 1] as string)
  return values
}

/** A mesh, closed when `t` ends, whose service api has one instance of v1.3 answering with `handler`. */
async function meshWith(t: Test, handler: UpstreamHandler, config: Record<string, unknown> = {}): Promise<{ mesh: TestMesh; upstream: Upstream }> {
  const mesh = await startTestMesh(config)
  t.teardown(mesh.close)
  return { mesh, upstream: await mesh.addUpstream('api', 'v1.3', handler) }
}

/** Writes raw bytes on the upstream side of a connection, then destroys the socket: the answer ends wherever those bytes do. */
function writeThenDestroy(socket: Socket, bytes: string): void {
  socket.write(bytes, () => socket.destroy())
}

void t.test('Expect: 100-continue is answered by the router, the upstream gets the body without it', async (t) => {
  const { mesh, upstream } = await meshWith(t, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ expect: req.headers.expect ?? null, length: req.headers['content-length'] ?? null, body: Buffer.concat(chunks).toString() }))
    })
  })
  const body = 'payload-'.repeat(25_000)
  const answer = await exchange(`${mesh.proxyUrl}/api/upload`, {
    method: 'POST',
    headers: { expect: '100-continue', 'content-type': 'text/plain', 'content-length': String(body.length) },
    send: (req) => req.end(body)
  })
  t.equal(answer.informational.filter((status) => status === 100).length, 1, 'the client got 100 Continue once')
  t.equal(answer.status, 200, "then the upstream's answer")
  t.ok(answer.complete)
  const echo = JSON.parse(answer.body)
  t.equal(echo.expect, null, 'the upstream saw no Expect header')
  t.equal(echo.length, String(body.length))
  t.equal(echo.body.length, body.length, 'the upstream got the whole body')
  t.ok(echo.body === body, 'byte for byte')
  t.equal(upstream.hits, 1)
})

void t.test('103 Early Hints before the answer: the client gets the final answer', async (t) => {
  const { mesh } = await meshWith(t, (req, res) => {
    req.resume()
    res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' })
    res.setHeader('content-type', 'text/plain')
    res.end('after the hints')
  })
  for (let i = 0; i < 3; i++) {
    const answer = await exchange(`${mesh.proxyUrl}/api/hinted`)
    t.equal(answer.status, 200, `request ${i}: the final status`)
    t.equal(answer.body, 'after the hints', `request ${i}: the final body`)
    t.ok(answer.complete)
    t.same(answer.informational, [], 'informational answers are not passed on')
  }
  const plain = await mesh.get('/api/hinted')
  t.equal(plain.status, 200, 'undici clients too')
  t.equal(plain.text, 'after the hints')
})

void t.test('the upstream connection breaks after the response head', async (t) => {
  // forwarding.test.ts covers a chunked head from node:http followed by a reset; these are
  // heads with a Content-Length, written and cut at the byte level, with and without
  // `connection: close` (undici reads the end of a close-delimited connection differently).
  const { mesh, upstream } = await meshWith(t, (req, res) => {
    req.resume()
    if (req.url === '/api/fine') return void res.end('fine')
    if (req.url === '/api/bad-framing') return writeThenDestroy(req.socket, 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-upstream: yes\r\n\r\nZZZ\r\n')
    const close = req.url?.includes('/close/') ? 'connection: close\r\n' : ''
    const head = `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n${close}x-upstream: yes\r\n\r\n`
    if (req.url?.endsWith('/head-only')) writeThenDestroy(req.socket, head)
    else writeThenDestroy(req.socket, head + 'x'.repeat(20))
  })

  for (const mode of ['keep-alive', 'close']) {
    const headOnly = await exchange(`${mesh.proxyUrl}/api/${mode}/head-only`)
    t.equal(headOnly.status, 502, `${mode}: no body byte yet, so the router can still answer 502`)
    t.equal(JSON.parse(headOnly.body).code, 'UPSTREAM_RESET', `${mode}: code UPSTREAM_RESET`)
    t.same(headerValues(headOnly.rawHeaders, 'x-upstream'), [], `${mode}: none of the held-back head reached the client`)
    t.ok(headOnly.complete, `${mode}: the 502 itself is complete`)

    const partial = await exchange(`${mesh.proxyUrl}/api/${mode}/partial`)
    t.equal(partial.status, 200, `${mode}: a body byte went out, so the status stands`)
    t.equal(partial.body, 'x'.repeat(20), `${mode}: the bytes sent before the break arrived`)
    t.notOk(partial.complete, `${mode}: the client sees a truncated answer, not a complete one`)
    t.ok(partial.error, `${mode}: reading the body fails`)
  }
  // Not a reset but the same situation: the head arrived, the body cannot be read, nothing went out yet.
  const badFraming = await exchange(`${mesh.proxyUrl}/api/bad-framing`)
  t.equal(badFraming.status, 502, 'a malformed chunk size before any body byte: 502, a bad gateway, not a 500 of the router')
  t.match(JSON.parse(badFraming.body).code, /^UPSTREAM_/, 'an UPSTREAM_* code')
  t.same(headerValues(badFraming.rawHeaders, 'x-upstream'), [])

  t.equal(upstream.hits, 5, 'none of them was retried (the upstream had answered)')
  const labels = { service: 'api', version: 'v1.3' }
  await waitFor(async () => ((await scrapedMetric(mesh.adminUrl, 'switchyard_responses_truncated_total', labels)) === 2 ? true : undefined), 'two truncated answers in /metrics')
  t.pass('/metrics counts the two cut answers as truncated (the 502s are not)')
  const after = await mesh.get('/api/fine')
  t.equal(after.status, 200, 'the next request is answered')
  t.equal(after.text, 'fine')
})

void t.test('a client that goes away before the answer', async (t) => {
  let release: (() => void) | undefined
  let upstreamClosedEarly = false
  const { mesh } = await meshWith(t, (req, res) => {
    req.resume()
    if (!req.url?.endsWith('/held')) return void res.end('next')
    // answers only when told to; notes whether its connection went first
    release = () => res.end('too late')
    res.on('close', () => (upstreamClosedEarly = !res.writableFinished))
  })
  const labels = { service: 'api', version: 'v1.3' }

  const req = http.request(`${mesh.proxyUrl}/api/held`, { agent: false })
  req.on('error', () => {})
  req.end()
  await waitFor(() => release, 'the request at the upstream')
  t.equal(await scrapedMetric(mesh.adminUrl, 'switchyard_requests_in_flight', { service: 'api' }), 1, 'one request in flight')

  req.destroy()
  await waitFor(() => (upstreamClosedEarly ? true : undefined), 'the router to abort the upstream request')
  t.pass('the upstream saw its request closed before it answered')
  await waitFor(async () => ((await scrapedMetric(mesh.adminUrl, 'switchyard_requests_total', { ...labels, code: '499' })) === 1 ? true : undefined), 'a 499 in /metrics')
  t.pass('/metrics counts the request as 499 for api v1.3')
  t.equal(await scrapedMetric(mesh.adminUrl, 'switchyard_requests_in_flight', { service: 'api' }), 0, 'nothing in flight any more')
  release?.()

  const next = await mesh.get('/api/next')
  t.equal(next.status, 200, 'the next request is answered')
  t.equal(next.text, 'next')
  t.equal(await scrapedMetric(mesh.adminUrl, 'switchyard_requests_total', { ...labels, code: '499' }), 1, 'still one 499')
  t.equal(await scrapedMetric(mesh.adminUrl, 'switchyard_requests_total', { ...labels, code: '200' }), 1)
})

void t.test('a 503 with a body is retried on the other instance, and the connection stays usable', (t) => {
  for (const size of [16 * KiB, MiB]) {
    void t.test(`${size / KiB} KiB of 503 body`, async (t) => {
      const mesh = await startTestMesh()
      t.teardown(mesh.close)
      const good = await mesh.addUpstream('api', 'v1.3')
      const bad = await mesh.addUpstream('api', 'v1.3', (req, res) => {
        req.resume()
        res.writeHead(503, { 'content-type': 'application/octet-stream', 'content-length': size })
        res.end(Buffer.alloc(size, 'e'))
      })
      let badConnections = 0
      bad.server.on('connection', () => badConnections++)
      let clientConnections = 0
      mesh.router.proxy.server.on('connection', () => clientConnections++)

      // one connection to the router: every request follows the previous one on it
      const client = new Client(mesh.proxyUrl, { pipelining: 1 })
      t.teardown(() => client.destroy())
      let requests = 0
      while (bad.hits < 3 && requests < 60) {
        requests++
        const response = await client.request({ path: `/api/r${requests}`, method: 'GET' })
        const body: any = await response.body.json()
        t.equal(response.statusCode, 200, `GET ${requests}: 200`)
        t.equal(body.id, good.id, `GET ${requests}: answered by the good instance`)
      }
      t.equal(bad.hits, 3, `the 503 instance was tried 3 times in ${requests} requests`)
      t.equal(good.hits, requests, 'the good instance answered every request')
      t.equal(clientConnections, 1, 'all of them on one client connection')
      t.equal(await scrapedMetric(mesh.adminUrl, 'switchyard_retries_total', { service: 'api', version: 'v1.3' }), 3, 'one retry per 503')
      if (size <= 64 * KiB) t.equal(badConnections, 1, 'a small 503 body is read to its end and its upstream connection reused')
      else t.ok(badConnections >= 3, `a large one is abandoned: a new upstream connection per attempt (${badConnections})`)
    })
  }
  t.end()
})

void t.test('a route timeout while the answer streams cuts it, and the route keeps working', async (t) => {
  const routes = [
    { match: { pathPrefix: '/slow' }, service: 'api', timeoutMs: 300 },
    { match: { pathPrefix: '/api' }, service: 'api' }
  ]
  let stalledClosedEarly = false
  const { mesh } = await meshWith(
    t,
    (req, res) => {
      req.resume()
      if (!req.url?.endsWith('/stall')) return void res.end('fine')
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 1000 })
      res.write('y'.repeat(100))
      res.on('close', () => (stalledClosedEarly = !res.writableFinished))
    },
    { routes }
  )
  const started = Date.now()
  const cut = await exchange(`${mesh.proxyUrl}/slow/stall`)
  t.equal(cut.status, 200, 'the head had gone out')
  t.equal(cut.body, 'y'.repeat(100), 'with the bytes sent before the timeout')
  t.notOk(cut.complete, 'the answer is cut, not complete')
  t.ok(Date.now() - started >= 250, 'cut by the route timeout')
  await waitFor(() => (stalledClosedEarly ? true : undefined), 'the upstream request to be aborted')
  t.pass('the stalled upstream request was aborted')
  t.equal(await scrapedMetric(mesh.adminUrl, 'switchyard_responses_truncated_total', { service: 'api', version: 'v1.3' }), 1, 'counted as a truncated answer')

  for (const path of ['/slow/after', '/api/after']) {
    const after = await mesh.get(path)
    t.equal(after.status, 200, `${path} afterwards: 200`)
    t.equal(after.text, 'fine')
  }
})

/**
 * The proxy app alone (not listening, reached with inject()), built as router/server.ts
 * builds it, on a table with one api v1 instance: `upstream`. Closed when `t` ends.
 */
function proxyAppFor(
  t: Test,
  upstream: Upstream,
  options: { metrics?: RouterMetrics; config?: Record<string, unknown>; logger?: ProxyAppOptions['logger'] } = {}
): FastifyInstance {
  t.teardown(upstream.close)
  const catalog = new EndpointCatalog({ connectTimeoutMs: 1_000, keepAliveMs: 4_000, connections: 4 })
  t.teardown(() => catalog.closeAll())
  const instance: InstanceRecord = { id: upstream.id, service: 'api', version: 'v1', host: '127.0.0.1', port: upstream.port, metadata: {}, status: 'up', registeredAt: 0 }
  const model = RegistryModel.fromSnapshot({ revision: 1, services: [{ name: 'api', weights: { v1: 100 }, instances: [instance] }] })
  const tables = { table: buildTable(model, catalog.endpointFor), ready: true }
  const config = parseProxyConfig({ routes: [{ match: { pathPrefix: '/api' }, service: 'api' }], ...options.config }, 'test')
  const app = buildProxyApp({ config, tables, metrics: options.metrics ?? new RouterMetrics(), ...(options.logger ? { logger: options.logger } : {}) })
  t.teardown(() => app.close())
  return app
}

void t.test('buildProxyApp().inject() reaches the same handler', async (t) => {
  const upstream = await startUpstream('v1', 'api-v1-inject', (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ path: req.url, method: req.method, body: Buffer.concat(chunks).toString(), version: req.headers['x-switchyard-version'] }))
    })
  })
  const metrics = new RouterMetrics()
  const app = proxyAppFor(t, upstream, { metrics })

  const routed = await app.inject({ method: 'GET', url: '/api/x?q=1' })
  t.equal(routed.statusCode, 200)
  t.same(routed.json(), { path: '/api/x?q=1', method: 'GET', body: '', version: 'v1' }, "the upstream's answer")
  t.equal(routed.headers['x-switchyard-version'], 'v1')
  t.match(routed.headers['x-request-id'], /^[0-9a-f-]{36}$/)

  const posted = await app.inject({ method: 'POST', url: '/api/p', headers: { 'content-type': 'text/plain', 'x-request-id': 'inject-1' }, payload: 'hello body' })
  t.equal(posted.statusCode, 200)
  t.equal(posted.json().body, 'hello body', 'a request body is streamed through too')
  t.equal(posted.headers['x-request-id'], 'inject-1')

  const unrouted = await app.inject({ method: 'GET', url: '/nowhere' })
  t.equal(unrouted.statusCode, 404)
  t.equal(unrouted.json().code, 'ROUTE_NOT_FOUND')
  t.match(unrouted.headers['content-type'], /^application\/json/)
  t.equal(upstream.hits, 2)
  const counted = (await metrics.requests.get()).values.filter((value) => value.labels.service === 'api' && value.labels.code === '200')
  t.same(
    counted.map((value) => value.value),
    [2],
    'both routed requests are counted once they end'
  )
  t.same(
    (await metrics.inflight.get()).values.map((value) => value.value),
    [0],
    'nothing left in flight'
  )
})

void t.test("the router's x-request-id, x-switchyard-version and the upstream's Date, once each", async (t) => {
  const upstreamDate = 'Wed, 21 Oct 2015 07:28:00 GMT'
  const { mesh } = await meshWith(t, (req, res) => {
    req.resume()
    res.setHeader('X-Request-ID', 'upstream-made')
    res.setHeader('X-Switchyard-Version', 'bogus')
    res.setHeader('Date', upstreamDate)
    res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; Path=/'])
    res.setHeader('content-type', 'text/plain')
    res.end('ok')
  })
  for (const clientId of [undefined, 'client-id-7']) {
    const answer = await exchange(`${mesh.proxyUrl}/api/h`, { headers: clientId ? { 'x-request-id': clientId } : {} })
    const what = clientId ? 'with a client id' : 'without a client id'
    t.equal(answer.status, 200)
    t.equal(answer.body, 'ok')
    const ids = headerValues(answer.rawHeaders, 'x-request-id')
    t.equal(ids.length, 1, `${what}: one x-request-id`)
    if (clientId) t.equal(ids[0], clientId, "the client's id")
    else t.match(ids[0], /^[0-9a-f-]{36}$/, "the router's id")
    t.same(headerValues(answer.rawHeaders, 'x-switchyard-version'), ['v1.3'], `${what}: the real version, once`)
    t.same(headerValues(answer.rawHeaders, 'date'), [upstreamDate], `${what}: one Date, the upstream's`)
    t.same(headerValues(answer.rawHeaders, 'set-cookie'), ['a=1; Path=/', 'b=2; Path=/'], `${what}: repeated headers stay separate`)
  }
})

void t.test('the ejection log line names the request that tipped it over', async (t) => {
  const upstream = await startUpstream('v1', 'api-v1-failing', (req, res) => {
    req.resume()
    res.statusCode = 500
    res.end('no')
  })
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  const app = proxyAppFor(t, upstream, { config: { outlierDetection: { maxEjectionPercent: 100 } }, logger: { level: 'warn', stream } })
  for (let index = 1; index <= 5; index++) {
    const answer = await app.inject({ method: 'GET', url: '/api/x', headers: { 'x-request-id': `failing-${index}` } })
    t.equal(answer.statusCode, 500, `attempt ${index}: the upstream's 500 is passed on`)
  }
  const ejected = await waitFor(() => lines.find((line) => line.msg === 'outlier detection ejected an instance'), 'the ejection log line')
  t.match(ejected, { service: 'api', version: 'v1', instance: upstream.id, request_id: 'failing-5' }, 'with the request id of the fifth failure')
})

void t.test('server-sent events: the head reaches the client before the first event', async (t) => {
  let sendEvent: (() => void) | undefined
  const { mesh } = await meshWith(t, (req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.flushHeaders()
    sendEvent = () => res.end('data: hello\n\n')
  })
  // Bounded: with the head held back this would wait for an event that never comes.
  const answer = await Promise.race([
    request(`${mesh.proxyUrl}/api/events`),
    new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('no head within 5 s')), 5_000).unref())
  ])
  t.equal(answer.statusCode, 200, 'the head arrived while the upstream still holds its first event')
  t.match(answer.headers['content-type'], /^text\/event-stream/)
  t.equal(answer.headers['x-switchyard-version'], 'v1.3')
  t.ok(sendEvent, 'the upstream is waiting to send')
  sendEvent?.()
  t.equal(await answer.body.text(), 'data: hello\n\n', 'then the event')
})
