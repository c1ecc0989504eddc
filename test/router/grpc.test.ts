import { createServer, type ServerHttp2Stream } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { Metadata } from '@grpc/grpc-js'
import t, { type Test } from 'tap'
import { GREETER_SERVICE, greeterDefinition } from '../../bench/servers/greeter.js'
import { closeSession, deregisterInstance, h2Request, openSession, registerInstance } from '../helpers/h2-harness.js'
import { chat, clientOf, collect, count, hello, startGreeter, type GreeterClient, type GreeterServer } from '../helpers/grpc-harness.js'
import { metric, scrape } from '../helpers/prometheus.js'
import { waitFor } from '../helpers/registry-harness.js'
import { startTestMesh, type TestMesh } from '../helpers/router-harness.js'

const PREFIX = `/${GREETER_SERVICE}`
const UNAVAILABLE = 14
const DEADLINE_EXCEEDED = 4

/** A mesh whose route to the Greeter's path goes to service `greeter`, spoken to as gRPC. */
async function grpcMesh(t: Test, config: Record<string, unknown> = {}): Promise<TestMesh> {
  const mesh = await startTestMesh({
    drainTimeoutMs: 2_000,
    routes: [{ match: { pathPrefix: PREFIX }, service: 'greeter' }],
    services: { greeter: { protocol: 'grpc' } },
    ...config
  })
  t.teardown(mesh.close)
  return mesh
}

async function greeter(t: Test, mesh: TestMesh, version: string): Promise<GreeterServer> {
  const server = await startGreeter(version)
  t.teardown(server.close)
  await registerInstance(mesh, 'greeter', version, server.port)
  return server
}

function client(t: Test, mesh: TestMesh): GreeterClient {
  const created = clientOf(mesh.proxyUrl)
  t.teardown(() => created.close())
  return created
}

void t.test('every kind of call passes through, with metadata and trailers intact', async (t) => {
  const mesh = await grpcMesh(t)
  await greeter(t, mesh, 'v1')
  const greeterClient = client(t, mesh)

  const unary = await hello(greeterClient, { name: 'ada' }, { metadata: { 'x-request-id': 'grpc-1' } })
  t.equal(unary.code, 0)
  t.same(unary.replies, [{ message: 'hello ada', version: 'v1' }])
  t.same(unary.headers['x-switchyard-version'], 'v1', 'the answer names its version')
  t.same(unary.headers['x-request-id'], 'grpc-1')
  t.same(unary.trailers['x-served-by'], 'v1', "the instance's trailing metadata arrives")

  const streamed = await count(greeterClient, 5)
  t.equal(streamed.code, 0)
  t.same(
    streamed.replies.map((reply) => reply.message),
    ['count 0', 'count 1', 'count 2', 'count 3', 'count 4'],
    'server streaming'
  )
  t.same(streamed.trailers['x-served-by'], 'v1')

  const collected = await collect(greeterClient, ['a', 'b', 'c'])
  t.equal(collected.code, 0)
  t.same(collected.replies, [{ message: 'a,b,c', version: 'v1' }], 'client streaming')

  const conversation = chat(greeterClient)
  t.same(await conversation.say('one'), { message: 'echo one', version: 'v1' })
  t.same(await conversation.say('two'), { message: 'echo two', version: 'v1' })
  const ended = await conversation.end()
  t.equal(ended.code, 0, 'bidirectional streaming')
  t.same(ended.trailers['x-served-by'], 'v1')

  // An instance's trailers-only answer (an error before any message) stays trailers-only.
  const session = await openSession(mesh.proxyUrl)
  t.teardown(() => closeSession(session))
  const definition = greeterDefinition()[GREETER_SERVICE] as Record<string, { requestSerialize(value: unknown): Buffer }>
  const message = definition.Hello!.requestSerialize({ name: 'raw', failCode: 9 })
  const raw = await h2Request(session, `${PREFIX}/Hello`, {
    method: 'POST',
    headers: { 'content-type': 'application/grpc', te: 'trailers' },
    body: Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message])
  })
  t.equal(raw.headers['grpc-status'], '9', 'the status in the head')
  t.equal(raw.headers['x-switchyard-version'], 'v1')
  t.equal(raw.trailers, undefined, 'and no trailers after it')

  const failed = await hello(greeterClient, { name: 'x', failCode: 5 })
  t.equal(failed.code, 5, "the instance's own status passes through")
  t.equal(failed.details, 'failed on purpose by v1')
  t.same(failed.trailers['x-served-by'], 'v1')

  const text = await scrape(mesh.adminUrl)
  t.equal(metric(text, 'switchyard_requests_total', { service: 'greeter', version: 'v1', grpc_status: 'OK', code: '200' }), 4)
  t.equal(metric(text, 'switchyard_requests_total', { service: 'greeter', version: 'v1', grpc_status: 'NOT_FOUND', code: '404' }), 1, 'labelled with the gRPC status')
  t.equal(metric(text, 'switchyard_requests_total', { service: 'greeter', version: 'v1', grpc_status: 'FAILED_PRECONDITION', code: '400' }), 1)
})

void t.test('weights split calls; x-switchyard-version metadata forces a version', async (t) => {
  const mesh = await grpcMesh(t)
  const v1 = await greeter(t, mesh, 'v1')
  const v2 = await greeter(t, mesh, 'v2')
  await mesh.setWeights('greeter', { v1: 70, v2: 30 })
  const greeterClient = client(t, mesh)
  const versions: Record<string, number> = { v1: 0, v2: 0 }
  for (let index = 0; index < 100; index++) versions[(await hello(greeterClient, { name: String(index) })).replies[0]!.version]!++
  t.same(versions, { v1: 70, v2: 30 }, 'the split of the weights, exactly')
  t.same({ v1: v1.calls.Hello, v2: v2.calls.Hello }, { v1: 70, v2: 30 }, 'as the instances counted them')

  const forced = await Promise.all(Array.from({ length: 10 }, () => hello(greeterClient, { name: 'f' }, { metadata: { 'x-switchyard-version': 'v2' } })))
  t.ok(
    forced.every((call) => call.replies[0]?.version === 'v2' && call.headers['x-switchyard-version'] === 'v2'),
    'forced by metadata'
  )
  const sticky = await Promise.all(Array.from({ length: 10 }, () => hello(greeterClient, { name: 's' }, { metadata: { 'x-switchyard-key': 'user-7' } })))
  t.equal(new Set(sticky.map((call) => call.replies[0]?.version)).size, 1, 'a sticky key keeps one version')
})

void t.test('streaming calls stay on their version through a weight change', async (t) => {
  const mesh = await grpcMesh(t)
  await greeter(t, mesh, 'v1')
  await greeter(t, mesh, 'v2')
  await mesh.setWeights('greeter', { v1: 100, v2: 0 })
  const greeterClient = client(t, mesh)
  const conversation = chat(greeterClient)
  t.equal((await conversation.say('before')).version, 'v1')
  const slowCount = count(greeterClient, 6, 100)
  await mesh.setWeights('greeter', { v1: 0, v2: 100 })
  t.equal((await hello(greeterClient, { name: 'new' })).replies[0]?.version, 'v2', 'new calls follow the new weights')
  t.equal((await conversation.say('after')).version, 'v1', 'the open stream stays on v1')
  const ended = await conversation.end()
  t.equal(ended.code, 0)
  const counted = await slowCount
  t.equal(counted.code, 0)
  t.same(new Set(counted.replies.map((reply) => reply.version)), new Set(['v1']), 'a server stream begun before the change ends on v1')
  t.equal(counted.replies.length, 6)
})

void t.test('router-made errors are gRPC statuses: UNAVAILABLE with no instance, UNIMPLEMENTED with no route', async (t) => {
  const mesh = await grpcMesh(t)
  await greeter(t, mesh, 'v1')
  await mesh.setWeights('greeter', { v1: 100 })
  const greeterClient = client(t, mesh)
  const unknownVersion = await hello(greeterClient, { name: 'x' }, { metadata: { 'x-switchyard-version': 'v9' } })
  t.equal(unknownVersion.code, UNAVAILABLE)
  t.match(unknownVersion.details, /^UNKNOWN_VERSION: service greeter has no version "v9"/)

  // Raw HTTP/2: the answer is HTTP 200, application/grpc, trailers-only (the status in a head that ends the stream).
  const session = await openSession(mesh.proxyUrl)
  t.teardown(() => closeSession(session))
  const grpcHeaders = { 'content-type': 'application/grpc', te: 'trailers' }
  const noService = await h2Request(session, '/other.Service/Call', { method: 'POST', headers: grpcHeaders, body: Buffer.alloc(5) })
  t.equal(noService.status, 200)
  t.equal(noService.headers['content-type'], 'application/grpc')
  t.equal(noService.headers['grpc-status'], '12', 'no route: UNIMPLEMENTED')
  t.equal(noService.trailers, undefined, 'trailers-only')
  t.equal(noService.body, '')

  // The only instance leaves: no version has an instance.
  const mesh2 = await grpcMesh(t)
  const only = await startGreeter('v1')
  t.teardown(only.close)
  const id = await registerInstance(mesh2, 'greeter', 'v1', only.port)
  await deregisterInstance(mesh2, 'greeter', id)
  const session2 = await openSession(mesh2.proxyUrl)
  t.teardown(() => closeSession(session2))
  const nobody = await h2Request(session2, `${PREFIX}/Hello`, { method: 'POST', headers: grpcHeaders, body: Buffer.alloc(5) })
  t.equal(nobody.status, 200)
  t.equal(nobody.headers['grpc-status'], String(UNAVAILABLE), 'no instance: UNAVAILABLE')
  t.match(decodeURIComponent(String(nobody.headers['grpc-message'])), /^NO_HEALTHY_INSTANCE: /)
  t.equal(nobody.trailers, undefined, 'trailers-only')
  const grpcClient = client(t, mesh2)
  const viaClient = await hello(grpcClient, { name: 'x' })
  t.equal(viaClient.code, UNAVAILABLE, 'as a gRPC client reads it')
  t.match(viaClient.details, /^NO_HEALTHY_INSTANCE: /)
  t.equal(only.calls.Hello, 0)
})

void t.test('grpc-timeout is the deadline of the upstream exchange', async (t) => {
  const mesh = await grpcMesh(t)
  const v1 = await greeter(t, mesh, 'v1')
  const session = await openSession(mesh.proxyUrl)
  t.teardown(() => closeSession(session))
  const definition = greeterDefinition()[GREETER_SERVICE] as Record<string, { requestSerialize(value: unknown): Buffer }>
  const message = definition.Hello!.requestSerialize({ name: 'slow', delayMs: 3000 })
  const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message])
  // A client that keeps no deadline of its own: only the router can end the call.
  const started = Date.now()
  const answer = await h2Request(session, `${PREFIX}/Hello`, {
    method: 'POST',
    headers: { 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '300m' },
    body: frame
  })
  const took = Date.now() - started
  t.equal(answer.status, 200)
  t.equal(answer.headers['grpc-status'], String(DEADLINE_EXCEEDED))
  t.ok(took >= 290 && took < 2500, `answered at the deadline (${took} ms)`)
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(v1.cancelled, 1, 'the instance saw its call cancelled')

  const greeterClient = client(t, mesh)
  const viaClient = await hello(greeterClient, { name: 'slow', delayMs: 3000 }, { deadlineMs: 300 })
  t.equal(viaClient.code, DEADLINE_EXCEEDED)
  const quick = await hello(greeterClient, { name: 'quick' }, { deadlineMs: 2000 })
  t.equal(quick.code, 0, 'a call within its deadline is untouched')
  const text = await scrape(mesh.adminUrl)
  t.ok(metric(text, 'switchyard_requests_total', { service: 'greeter', grpc_status: 'DEADLINE_EXCEEDED', code: '504' }) >= 1)
})

void t.test('a client that cancels: the instance sees its call cancelled, counted as CANCELLED', async (t) => {
  const mesh = await grpcMesh(t)
  const v1 = await greeter(t, mesh, 'v1')
  const greeterClient = client(t, mesh)
  const call = greeterClient.Hello({ name: 'slow', delayMs: 3000 }, new Metadata(), {}, () => {})
  call.on('error', () => {})
  await waitFor(() => (v1.calls.Hello === 1 ? true : undefined), 'the call reaching the instance')
  call.cancel()
  await waitFor(() => (v1.cancelled === 1 ? true : undefined), 'the instance seeing the cancel')
  await waitFor(
    async () => (metric(await scrape(mesh.adminUrl), 'switchyard_requests_total', { service: 'greeter', grpc_status: 'CANCELLED', code: '499' }) === 1 ? true : undefined),
    'the call counted as CANCELLED'
  )
  t.pass('cancelled end to end')
})

void t.test('a rule timeoutMs caps a call without grpc-timeout; streams without either last', async (t) => {
  const mesh = await grpcMesh(t, { routes: [{ match: { pathPrefix: PREFIX }, service: 'greeter', timeoutMs: 300 }], timeouts: { requestMs: 100, idleMs: 100, firstByteMs: 100 } })
  await greeter(t, mesh, 'v1')
  const greeterClient = client(t, mesh)
  t.equal((await hello(greeterClient, { name: 'slow', delayMs: 2000 })).code, DEADLINE_EXCEEDED, "the rule's own timeout")
  const other = await grpcMesh(t, { timeouts: { requestMs: 100, idleMs: 100, firstByteMs: 100 } })
  await greeter(t, other, 'v1')
  const otherClient = client(t, other)
  const slow = await count(otherClient, 3, 250)
  t.equal(slow.code, 0, 'the default request, idle and first-byte timeouts do not cut a gRPC stream')
  t.equal(slow.replies.length, 3)
})

void t.test('retries only where gRPC allows: a refused connection yes, a stream that broke after its head no', async (t) => {
  const mesh = await grpcMesh(t)
  // v1: one instance whose port is closed and one that answers.
  const gone = await startGreeter('v1')
  await registerInstance(mesh, 'greeter', 'v1', gone.port)
  await gone.close()
  await greeter(t, mesh, 'v1')
  const greeterClient = client(t, mesh)
  for (let index = 0; index < 20; index++) {
    const call = await hello(greeterClient, { name: 'r' })
    t.equal(call.code, 0, `never sent: retried on the other instance ${call.details}`)
  }

  // v2: an instance that sends its head and one message, then drops its connection (a
  // crash: Node's own stream.close(code) would end the stream cleanly before its RST_STREAM).
  const definition = greeterDefinition()[GREETER_SERVICE] as Record<string, { responseSerialize(value: unknown): Buffer }>
  const reply = definition.Count!.responseSerialize({ message: 'count 0', version: 'v2' })
  let hits = 0
  const breaking = createServer()
  breaking.on('stream', (stream: ServerHttp2Stream) => {
    hits++
    stream.on('error', () => {})
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' })
    stream.write(Buffer.concat([Buffer.from([0, 0, 0, 0, reply.length]), reply]), () => setTimeout(() => stream.session?.destroy(), 20))
  })
  await new Promise<void>((resolve) => breaking.listen(0, '127.0.0.1', resolve))
  t.teardown(() => breaking.close())
  // Two instances (one server): a retry would have somewhere to go.
  const port = (breaking.address() as AddressInfo).port
  await registerInstance(mesh, 'greeter', 'v2', port)
  await registerInstance(mesh, 'greeter', 'v2', port)
  const broken = await count(greeterClient, 3, 0, { metadata: { 'x-switchyard-version': 'v2' } })
  t.same(
    broken.replies.map((each) => each.message),
    ['count 0'],
    'the message that came through'
  )
  t.equal(broken.code, UNAVAILABLE, 'then the failure as a status in trailers')
  t.match(broken.details, /^UPSTREAM_RESET: /)
  t.equal(hits, 1, 'not retried after the head went out')
})

/** An instance that answers every call with HTTP 200 and a trailers-only grpc-status (a gRPC server failing in the way gRPC servers fail). */
async function failingInstance(t: Test, grpcStatus: number): Promise<{ port: number; hits: () => number }> {
  let hits = 0
  const server = createServer()
  server.on('stream', (stream: ServerHttp2Stream) => {
    hits++
    stream.on('error', () => {})
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(grpcStatus), 'grpc-message': 'failing on purpose' }, { endStream: true })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  return { port: (server.address() as AddressInfo).port, hits: () => hits }
}

void t.test('outlier detection judges a gRPC call by its grpc-status, not its HTTP 200', async (t) => {
  const mesh = await grpcMesh(t, { outlierDetection: { consecutiveFailures: 3 } })
  await greeter(t, mesh, 'v1')
  const unavailable = await failingInstance(t, UNAVAILABLE)
  await registerInstance(mesh, 'greeter', 'v1', unavailable.port)
  const greeterClient = client(t, mesh)
  for (let index = 0; index < 200 && unavailable.hits() < 3; index++) await hello(greeterClient, { name: 'o' })
  t.equal(unavailable.hits(), 3, 'three UNAVAILABLE answers reached it')
  t.equal(metric(await scrape(mesh.adminUrl), 'switchyard_ejections_total', { service: 'greeter', version: 'v1' }), 1, 'then it was ejected')
  for (let index = 0; index < 20; index++) t.equal((await hello(greeterClient, { name: 'o' })).code, 0, 'the healthy instance answers every call')
  t.equal(unavailable.hits(), 3, 'no call reached the ejected instance')

  // UNIMPLEMENTED is the caller's mistake, not the instance's: never an ejection.
  const mesh2 = await grpcMesh(t, { outlierDetection: { consecutiveFailures: 3 } })
  await greeter(t, mesh2, 'v1')
  const unimplemented = await failingInstance(t, 12)
  await registerInstance(mesh2, 'greeter', 'v1', unimplemented.port)
  const client2 = client(t, mesh2)
  for (let index = 0; index < 200 && unimplemented.hits() < 6; index++) await hello(client2, { name: 'o' })
  t.equal(unimplemented.hits(), 6)
  t.equal(metric(await scrape(mesh2.adminUrl), 'switchyard_ejections_total', { service: 'greeter', version: 'v1' }), 0, 'UNIMPLEMENTED ejects nobody')
})
