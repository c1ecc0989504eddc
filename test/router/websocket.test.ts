import type { IncomingMessage } from 'node:http'
import { connect as netConnect, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { scrape, metric, scrapedMetric } from '../helpers/prometheus.js'
import { waitFor } from '../helpers/registry-harness.js'
import { addWebSocketUpstream, startTestMesh, type TestMesh, type WebSocketUpstream } from '../helpers/router-harness.js'

/** A client connection through the router, with its close recorded from the start. */
interface Client {
  socket: WebSocket
  /** the 101 answer's headers */
  headers: IncomingMessage['headers']
  version: string
  closed: Promise<{ code: number; reason: string }>
}

/** The router's answer when it did not switch. */
interface Refusal {
  status: number
  headers: IncomingMessage['headers']
  body: string
}

// Every test ends its connections before the mesh closes; a short drain keeps a failed test from hanging.
const MESH = { drainTimeoutMs: 2_000 }

/** A mesh (torn down with the test) whose service api has one echoing WebSocket instance of v1. */
async function echoMesh(
  t: Test,
  config: Record<string, unknown> = {},
  options?: Parameters<typeof addWebSocketUpstream>[3]
): Promise<{ mesh: TestMesh; upstream: WebSocketUpstream }> {
  const mesh = await startTestMesh({ ...MESH, ...config })
  t.teardown(mesh.close)
  return { mesh, upstream: await addWebSocketUpstream(mesh, 'api', 'v1', options) }
}

function wsUrl(mesh: TestMesh, path: string): string {
  return `${mesh.proxyUrl.replace(/^http/, 'ws')}${path}`
}

function closedOf(socket: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })))
}

function connect(mesh: TestMesh, path = '/api/socket', headers: Record<string, string> = {}): Promise<Client | Refusal> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(wsUrl(mesh, path), { headers })
    const closed = closedOf(socket)
    let upgradeHeaders: IncomingMessage['headers'] = {}
    socket.once('upgrade', (response) => (upgradeHeaders = response.headers))
    socket.once('open', () => resolve({ socket, headers: upgradeHeaders, version: String(upgradeHeaders['x-switchyard-version']), closed }))
    socket.once('unexpected-response', (_request, response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => (body += chunk))
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }))
    })
    socket.once('error', reject)
  })
}

async function open(mesh: TestMesh, path?: string, headers?: Record<string, string>): Promise<Client> {
  const answer = await connect(mesh, path, headers)
  if (!('socket' in answer)) throw new Error(`not upgraded: ${answer.status} ${answer.body}`)
  return answer
}

async function refused(mesh: TestMesh, path?: string, headers?: Record<string, string>): Promise<Refusal> {
  const answer = await connect(mesh, path, headers)
  if ('socket' in answer) throw new Error('upgraded')
  return answer
}

function echo(client: Client, text: string): Promise<string> {
  return new Promise((resolve) => {
    client.socket.once('message', (data: Buffer) => resolve(data.toString()))
    client.socket.send(text)
  })
}

async function closeClient(client: Client): Promise<void> {
  client.socket.close(1000)
  await client.closed
}

/** Sends raw bytes to the router and reads until it closes the connection. */
function rawExchange(mesh: TestMesh, text: string): Promise<string> {
  const { port } = new URL(mesh.proxyUrl)
  return new Promise((resolve, reject) => {
    const socket = netConnect(Number(port), '127.0.0.1', () => socket.write(text))
    let answer = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => (answer += chunk))
    socket.on('close', () => resolve(answer))
    socket.on('error', reject)
  })
}

/** The upstream's next connection with its upgrade request. */
function nextConnection(upstream: WebSocketUpstream): Promise<{ socket: WebSocket; request: IncomingMessage }> {
  return new Promise((resolve) => upstream.wss.once('connection', (socket, request) => resolve({ socket, request })))
}

void t.test('echo through the router; the 101 names the version; the upstream sees the forwarding headers', async (t) => {
  const { mesh, upstream } = await echoMesh(t)
  const arrived = nextConnection(upstream)
  const client = await open(mesh, '/api/socket?room=1', { 'x-request-id': 'ws-req-1', 'x-switchyard-service': 'evil', 'x-forwarded-for': '203.0.113.9' })
  t.equal(client.version, 'v1', '101 carries x-switchyard-version')
  t.equal(client.headers['x-request-id'], 'ws-req-1')
  t.equal(String(client.headers.upgrade).toLowerCase(), 'websocket')
  t.ok(client.headers['sec-websocket-accept'], "the upstream's handshake answer is passed on")
  const { request } = await arrived
  t.equal(request.url, '/api/socket?room=1')
  t.equal(request.headers['x-switchyard-service'], 'api', 'a spoofed router header is replaced')
  t.equal(request.headers['x-switchyard-version'], 'v1')
  t.equal(request.headers['x-forwarded-for'], '127.0.0.1', "an untrusted client's x-forwarded-for is replaced")
  t.equal(request.headers['x-request-id'], 'ws-req-1')
  t.equal(await echo(client, 'hello'), 'hello')
  const big = 'x'.repeat(300_000)
  t.equal(await echo(client, big), big, 'a message larger than a socket chunk')
  await closeClient(client)
})

void t.test('a route that matches nothing, and a service without a table, answer as requests do', async (t) => {
  const mesh = await startTestMesh(MESH)
  t.teardown(mesh.close)
  const missing = await refused(mesh, '/nowhere')
  t.equal(missing.status, 404)
  t.equal(JSON.parse(missing.body).code, 'ROUTE_NOT_FOUND')
  t.equal(missing.headers.connection, 'close')
  const unknown = await refused(mesh, '/api/socket')
  t.equal(unknown.status, 503)
  t.equal(JSON.parse(unknown.body).code, 'UNKNOWN_SERVICE')
  t.equal(await scrapedMetric(mesh.adminUrl, 'switchyard_upgrades_total', { result: 'rejected' }), 2)
})

void t.test('version choice: weights split upgrades, a forced version and a sticky key hold', async (t) => {
  const { mesh } = await echoMesh(t)
  await addWebSocketUpstream(mesh, 'api', 'v2')
  await mesh.setWeights('api', { v1: 50, v2: 50 })

  const counts = new Map<string, number>()
  for (let index = 0; index < 100; index++) {
    const client = await open(mesh)
    counts.set(client.version, (counts.get(client.version) ?? 0) + 1)
    await closeClient(client)
  }
  t.same(Object.fromEntries(counts), { v1: 50, v2: 50 }, 'smooth round-robin splits 100 upgrades exactly')

  await mesh.setWeights('api', { v1: 100, v2: 0 })
  const forced = await open(mesh, '/api/socket', { 'x-switchyard-version': 'v2' })
  t.equal(forced.version, 'v2', 'a version at 0% is reached on purpose')
  t.equal(await echo(forced, 'dark'), 'dark')
  await closeClient(forced)
  const unknownVersion = await refused(mesh, '/api/socket', { 'x-switchyard-version': 'v9' })
  t.equal(unknownVersion.status, 503)
  t.equal(JSON.parse(unknownVersion.body).code, 'UNKNOWN_VERSION')

  await mesh.setWeights('api', { v1: 50, v2: 50 })
  for (const key of ['user-1', 'user-2', 'user-3', 'user-4']) {
    const plain = await mesh.get('/api/x', { 'x-switchyard-key': key })
    const versions = new Set<string>()
    for (let index = 0; index < 5; index++) {
      const client = await open(mesh, '/api/socket', { 'x-switchyard-key': key })
      versions.add(client.version)
      await closeClient(client)
    }
    t.same([...versions], [plain.headers['x-switchyard-version']], `key ${key}: every upgrade on the version its plain requests get`)
  }
})

void t.test("the upstream's refusal goes back as an ordinary answer", async (t) => {
  const mesh = await startTestMesh(MESH)
  t.teardown(mesh.close)
  await addWebSocketUpstream(mesh, 'api', 'v1', {
    verifyClient: (_info, done) => done(false, 403, 'no entry', { 'x-reason': 'token missing' })
  })
  const answer = await refused(mesh)
  t.equal(answer.status, 403)
  t.equal(answer.headers['x-reason'], 'token missing', "the upstream's headers")
  t.equal(answer.headers['x-switchyard-version'], 'v1')
  t.equal(answer.headers.connection, 'close')
  t.equal(answer.body, 'no entry')
  const text = await scrape(mesh.adminUrl)
  t.equal(metric(text, 'switchyard_upgrades_total', { service: 'api', version: 'v1', result: 'refused' }), 1)
  t.equal(metric(text, 'switchyard_requests_total', { service: 'api', version: 'v1', code: '403' }), 1, 'the handshake counts as a request')
})

void t.test('close codes and reasons pass both ways', async (t) => {
  const { mesh, upstream } = await echoMesh(t)

  const fromClient = nextConnection(upstream)
  const first = await open(mesh)
  const server = await fromClient
  const serverSaw = closedOf(server.socket)
  first.socket.close(4000, 'client says bye')
  t.same(await serverSaw, { code: 4000, reason: 'client says bye' }, 'the upstream sees the close the client sent')
  await first.closed

  const fromUpstream = nextConnection(upstream)
  const second = await open(mesh)
  ;(await fromUpstream).socket.close(4001, 'server says bye')
  t.same(await second.closed, { code: 4001, reason: 'server says bye' }, 'the client sees the close the upstream sent')
})

void t.test('a side that goes away without a close frame: the other side gets 1001', async (t) => {
  const { mesh, upstream } = await echoMesh(t)

  const arrived = nextConnection(upstream)
  const client = await open(mesh)
  t.equal(await echo(client, 'before'), 'before')
  ;(await arrived).socket.terminate()
  t.same(await client.closed, { code: 1001, reason: 'upstream went away' }, 'the upstream died: the client sees a close')

  const again = nextConnection(upstream)
  const second = await open(mesh)
  const server = await again
  const serverSaw = closedOf(server.socket)
  second.socket.terminate()
  t.same(await serverSaw, { code: 1001, reason: 'client went away' }, 'the client died: the upstream sees a close')
  await waitFor(async () => ((await scrapedMetric(mesh.adminUrl, 'switchyard_upgraded_connections')) === 0 ? true : undefined), 'no open upgraded connection')
})

void t.test('the gauge of open upgraded connections goes up and down', async (t) => {
  const { mesh } = await echoMesh(t)
  const labels = { service: 'api', version: 'v1' }
  const clients = [await open(mesh), await open(mesh), await open(mesh)]
  t.equal(await scrapedMetric(mesh.adminUrl, 'switchyard_upgraded_connections', labels), 3)
  t.equal(await scrapedMetric(mesh.adminUrl, 'switchyard_upgrades_total', { ...labels, result: 'upgraded' }), 3)
  await closeClient(clients[0] as Client)
  await waitFor(async () => ((await scrapedMetric(mesh.adminUrl, 'switchyard_upgraded_connections', labels)) === 2 ? true : undefined), 'gauge at 2')
  await Promise.all(clients.slice(1).map(closeClient))
  await waitFor(async () => ((await scrapedMetric(mesh.adminUrl, 'switchyard_upgraded_connections', labels)) === 0 ? true : undefined), 'gauge at 0')
  t.pass('the gauge came back to 0')
})

void t.test('at maxConnections the router answers 503 UPGRADE_LIMIT_REACHED; a freed place is taken again', async (t) => {
  const { mesh } = await echoMesh(t, { upgrades: { maxConnections: 2 } })
  const first = await open(mesh)
  const second = await open(mesh)
  const limited = await refused(mesh)
  t.equal(limited.status, 503)
  t.equal(JSON.parse(limited.body).code, 'UPGRADE_LIMIT_REACHED')
  t.equal((await mesh.get('/api/plain')).status, 200, 'plain requests are not limited')
  await closeClient(first)
  const third = await waitFor(async () => {
    const answer = await connect(mesh)
    return 'socket' in answer ? answer : undefined
  }, 'a place once a connection closed')
  t.equal(await echo(third, 'in'), 'in')
  await Promise.all([closeClient(second), closeClient(third)])
  t.equal(await scrapedMetric(mesh.adminUrl, 'switchyard_unrouted_requests_total', { reason: 'UPGRADE_LIMIT_REACHED' }), 1)
})

void t.test('a connection without a byte either way for idleTimeoutMs is closed with 1001', async (t) => {
  const idleTimeoutMs = 400
  const { mesh } = await echoMesh(t, { upgrades: { idleTimeoutMs } })
  const busy = await open(mesh)
  const idle = await open(mesh)
  const openedAt = Date.now()
  // Traffic for three idle periods keeps one of them open.
  let echoed = 0
  while (Date.now() - openedAt < 3 * idleTimeoutMs) if ((await echo(busy, 'tick')) === 'tick') echoed++
  t.ok(echoed > 0, `${echoed} echoes over three idle periods`)
  t.same(await idle.closed, { code: 1001, reason: 'idle timeout' })
  t.ok(Date.now() - openedAt >= idleTimeoutMs - 50, 'not before its idle timeout')
  t.equal(busy.socket.readyState, WebSocket.OPEN, 'the busy connection is still open')
  await closeClient(busy)
})

void t.test('drain: an instance that deregisters gets no new upgrades; its connections end with 1001 after drainTimeoutMs', async (t) => {
  const drainTimeoutMs = 600
  const { mesh, upstream: leaving } = await echoMesh(t, { upgrades: { drainTimeoutMs } })
  const old = await open(mesh)
  const staying = await addWebSocketUpstream(mesh, 'api', 'v1')
  const answer = await mesh.reg.call('DELETE', `/v1/services/api/instances/${leaving.id}`, { token: 'registrar' })
  t.equal(answer.status, 204)
  await mesh.waitForRevision(mesh.reg.registry.revision)
  const deregisteredAt = Date.now()

  const arrived = nextConnection(staying)
  const fresh = await open(mesh)
  await arrived
  t.equal(leaving.wss.clients.size, 1, 'the new upgrade went to the instance that stays')
  t.equal(staying.wss.clients.size, 1)
  t.equal(await echo(old, 'still here'), 'still here', 'the old connection goes on while draining')
  t.same(await old.closed, { code: 1001, reason: 'going away' })
  t.ok(Date.now() - deregisteredAt >= drainTimeoutMs - 100, `closed after the drain timeout (${Date.now() - deregisteredAt} ms)`)
  t.equal(await echo(fresh, 'unaffected'), 'unaffected')
  await closeClient(fresh)
})

void t.test('shutdown: open connections end with 1001 after the router drain timeout', async (t) => {
  const { mesh } = await echoMesh(t, { drainTimeoutMs: 500 })
  const client = await open(mesh)
  const startedAt = Date.now()
  const closing = mesh.router.close()
  t.equal(await echo(client, 'during drain'), 'during drain', 'the connection goes on during the drain')
  t.same(await client.closed, { code: 1001, reason: 'going away' })
  t.ok(Date.now() - startedAt >= 400, 'not before the drain timeout')
  await closing
})

void t.test('upgrade framing the router refuses or ignores', async (t) => {
  const { mesh, upstream } = await echoMesh(t)
  const host = new URL(mesh.proxyUrl).host
  const upgradeHead = `GET /api/socket HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n`

  for (const [name, framing] of [
    ['Content-Length', 'Content-Length: 35\r\n\r\nGET /api/admin HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['Transfer-Encoding', 'Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n']
  ] as const) {
    const answer = await rawExchange(mesh, upgradeHead + framing)
    t.match(answer, /^HTTP\/1\.1 400 /, `an upgrade with ${name} is refused`)
    t.match(answer, /"code":"REQUEST_SMUGGLING"/)
  }
  t.equal(upstream.hits, 0, 'the upstream saw none of them')
  t.equal(upstream.wss.clients.size, 0)

  const h2c = await rawExchange(
    mesh,
    `GET /api/plain HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n`
  )
  t.match(h2c, /^HTTP\/1\.1 200 /, 'an h2c upgrade is answered as an ordinary request')
  t.match(h2c, /\r\nconnection: close\r\n/i)
  const seen = JSON.parse(h2c.slice(h2c.indexOf('\r\n\r\n') + 4)).headers
  t.notOk('upgrade' in seen, 'the upstream is not asked to switch to h2c')
  t.notOk('http2-settings' in seen)
  t.equal(seen['x-switchyard-version'], 'v1')
})

void t.test('an instance that cannot be reached: 502, or the upgrade goes to another instance of the version', async (t) => {
  const { mesh, upstream: dead } = await echoMesh(t)
  await dead.close()
  const unreachable = await refused(mesh)
  t.equal(unreachable.status, 502)
  t.equal(JSON.parse(unreachable.body).code, 'UPSTREAM_UNREACHABLE')
  t.equal(unreachable.headers['x-switchyard-version'], 'v1')
  t.equal(await scrapedMetric(mesh.adminUrl, 'switchyard_upgrades_total', { service: 'api', version: 'v1', result: 'failed' }), 1)
  t.ok((await scrapedMetric(mesh.adminUrl, 'switchyard_upstream_connect_errors_total', { service: 'api', version: 'v1' })) >= 1)

  await addWebSocketUpstream(mesh, 'api', 'v1')
  for (let index = 0; index < 10; index++) {
    const client = await open(mesh)
    t.equal(await echo(client, `try ${index}`), `try ${index}`)
    await closeClient(client)
  }
})

void t.test('an instance that takes the upgrade and never answers: 504 after firstByteMs', async (t) => {
  const mesh = await startTestMesh({ ...MESH, timeouts: { firstByteMs: 300 } })
  t.teardown(mesh.close)
  const silent = await mesh.addUpstream('api', 'v1')
  // Keeps the socket without a word; lets it go once the router gives up.
  silent.server.on('upgrade', (_request: IncomingMessage, socket: Duplex) => socket.on('end', () => socket.destroy()))
  const startedAt = Date.now()
  const answer = await refused(mesh)
  t.equal(answer.status, 504)
  t.equal(JSON.parse(answer.body).code, 'UPSTREAM_TIMEOUT')
  t.ok(Date.now() - startedAt >= 250, 'after firstByteMs')
})

/** A WebSocket client written by hand, to send frames in pieces. */
async function rawWebSocket(mesh: TestMesh): Promise<{ socket: Socket; received: () => Buffer }> {
  const { port, host } = new URL(mesh.proxyUrl)
  // Half-open: it keeps sending after the router's FIN.
  const socket = netConnect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true })
  let bytes = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => (bytes = Buffer.concat([bytes, chunk])))
  socket.write(
    `GET /api/raw HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`
  )
  await waitFor(() => (bytes.includes('\r\n\r\n') ? true : undefined), 'the 101')
  if (!bytes.toString('latin1').startsWith('HTTP/1.1 101 ')) throw new Error(`not upgraded: ${bytes.toString('latin1')}`)
  const headEnd = bytes.indexOf('\r\n\r\n') + 4
  return { socket, received: () => bytes.subarray(headEnd) }
}

/** A masked text frame, as a client sends it. */
function maskedText(text: string): Buffer {
  const payload = Buffer.from(text)
  const mask = Buffer.from([1, 2, 3, 4])
  const frame = Buffer.alloc(6 + payload.length)
  frame[0] = 0x81
  frame[1] = 0x80 | payload.length
  mask.copy(frame, 2)
  for (let index = 0; index < payload.length; index++) frame[6 + index] = (payload[index] as number) ^ (mask[index % 4] as number)
  return frame
}

void t.test('the router puts its close frame between frames, never inside one', async (t) => {
  const { mesh, upstream } = await echoMesh(t, { upgrades: { idleTimeoutMs: 300 } }, { echo: false })
  const messages: string[] = []
  const upstreamClosed = new Promise<{ code: number; reason: string }>((resolve) =>
    upstream.wss.once('connection', (socket) => {
      socket.on('message', (data: Buffer) => messages.push(data.toString()))
      socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() }))
    })
  )
  const client = await rawWebSocket(mesh)
  t.teardown(() => client.socket.destroy())
  const frame = maskedText('hello world')
  client.socket.write(frame.subarray(0, 8))
  // Idle: the client gets its close frame at once; the upstream only after the frame under way.
  const close = await waitFor(() => (client.received().length >= 16 ? client.received() : undefined), "the router's close frame")
  t.same([...close.subarray(0, 4)], [0x88, 14, 0x03, 0xe9], 'an unmasked close frame, code 1001')
  t.equal(close.subarray(4, 16).toString(), 'idle timeout')
  t.same(messages, [], 'half a frame reached the upstream, no message yet')
  client.socket.write(frame.subarray(8))
  t.same(await upstreamClosed, { code: 1001, reason: 'idle timeout' }, 'the upstream gets the close after the frame')
  t.same(messages, ['hello world'], 'the frame arrived whole')
})

void t.test('an h2c upgrade with a body (curl --http2 -d): the body reaches the upstream as an ordinary request', async (t) => {
  const mesh = await startTestMesh(MESH)
  t.teardown(mesh.close)
  await mesh.addUpstream('api', 'v1', (request, response) => {
    let body = ''
    request.setEncoding('utf8')
    request.on('data', (chunk: string) => (body += chunk))
    request.on('end', () => response.end(JSON.stringify({ body, upgrade: request.headers.upgrade ?? null })))
  })
  const host = new URL(mesh.proxyUrl).host
  const h2cHead = `POST /api/form HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n`
  const answer = await rawExchange(mesh, `${h2cHead}Content-Length: 11\r\n\r\nhello worldGET /api/next HTTP/1.1\r\n\r\n`)
  t.match(answer, /^HTTP\/1\.1 200 /)
  t.same(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)), { body: 'hello world', upgrade: null }, 'exactly Content-Length bytes, no upgrade')
  const chunked = await rawExchange(mesh, `${h2cHead}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`)
  t.match(chunked, /^HTTP\/1\.1 400 .*"code":"REQUEST_SMUGGLING"/s, 'a chunked body is not taken')
})
