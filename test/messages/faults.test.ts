import t, { type Test } from 'tap'
import type { BrokerSession } from '../../router/messages/brokers/broker.js'
import { RabbitMqAdapter } from '../../router/messages/brokers/rabbitmq-broker.js'
import { parseMessageRouterConfig } from '../../router/messages/config.js'
import { startMessageRouter } from '../../router/messages/server.js'
import { cliPath, freePort, spawnNode, type SpawnedProcess } from '../helpers/processes.js'
import { startTestRegistry, TOKENS, waitFor, type TestRegistry } from '../helpers/registry-harness.js'
import { get } from '../helpers/http.js'
import { metric, scrape } from '../helpers/prometheus.js'
import { deleteQueues, ensureRabbitMq, publishMany, testVhost, topicQueueNames, uniqueName } from './helpers.js'

/**
 * Faults on a real RabbitMQ. Everything runs in a vhost of this file's own, so breaking
 * "all connections" breaks only the message router's (and never another test's).
 */

const SERVICE = 'orders-worker'
const VERSIONS = ['v1', 'v2']
const COUNT = 20_000
const KIB = 1024

/** Message n: 1 KiB, starting with its number. */
function body(n: number): Buffer {
  const buffer = Buffer.alloc(KIB, 0x2e)
  buffer.write(`${n};`, 0, 'ascii')
  return buffer
}
const numberIn = (content: Buffer) => Number(content.subarray(0, content.indexOf(0x3b)).toString('ascii'))

interface Tally {
  /** times each number was seen across the version queues */
  seen: Map<number, number>
  deliveries: number
}

/** Consumes every version queue of the topic with a large prefetch, acking each message. */
async function tallyVersionQueues(session: BrokerSession, topic: string): Promise<Tally> {
  const tally: Tally = { seen: new Map(), deliveries: 0 }
  await session.declareQueue(`${topic}.dlq`)
  for (const version of VERSIONS) {
    const queue = `${topic}.${version}`
    await session.declareQueue(queue, { deadLetterQueue: `${topic}.rejected` })
    await session.consume(queue, 2_000, (delivery) => {
      const n = numberIn(delivery.body)
      tally.seen.set(n, (tally.seen.get(n) ?? 0) + 1)
      tally.deliveries++
      session.ack(delivery.tag, false)
    })
  }
  return tally
}

async function publishNumbered(adapter: RabbitMqAdapter, topic: string): Promise<void> {
  const session = await adapter.connect()
  try {
    await session.declareQueue(topic)
    await publishMany(session, topic, COUNT, (n) => ({ body: body(n), headers: {}, messageId: `m${n}`, contentType: 'application/octet-stream' }), 1_000)
  } finally {
    // Closed before anything breaks: only the message router's connection is in the vhost then.
    await session.close()
  }
}

const routedOf = (metrics: string, topic: string) => metric(metrics, 'switchyard_messages_total', { topic, outcome: 'routed' })

async function waitForRouted(adminUrl: string, topic: string, atLeast: number): Promise<number> {
  return waitFor(
    async () => {
      const routed = routedOf(await scrape(adminUrl).catch(() => ''), topic)
      return routed >= atLeast ? routed : undefined
    },
    `${atLeast} messages routed`,
    30_000
  )
}

/** Every number arrived at least once; duplicates are reported, and counted consistently. */
function assertNothingLost(t: Test, tally: Tally, redeliveries: number): void {
  const missing: number[] = []
  for (let n = 0; n < COUNT; n++) if (!tally.seen.has(n)) missing.push(n)
  t.same(missing.slice(0, 20), [], `all ${COUNT} numbers arrived (missing: ${missing.length})`)
  let duplicates = 0
  let duplicated = 0
  for (const times of tally.seen.values()) {
    duplicates += times - 1
    if (times > 1) duplicated++
  }
  t.comment(`${tally.deliveries} deliveries for ${COUNT} messages: ${duplicates} duplicates (${duplicated} numbers more than once); the router saw ${redeliveries} redeliveries`)
  t.equal(tally.deliveries, COUNT + duplicates, 'deliveries = messages + the duplicates observed')
  t.ok(duplicates <= redeliveries, 'every duplicate comes from a message the broker redelivered')
}

async function setUp(t: Test) {
  await ensureRabbitMq()
  const reg = await startTestRegistry()
  t.teardown(() => reg.destroy())
  for (const [index, version] of VERSIONS.entries()) {
    const answer = await reg.call('POST', `/v1/services/${SERVICE}/instances`, {
      token: 'registrar',
      body: { version, host: '127.0.0.1', port: 10_000 + index, id: `w-${version}` }
    })
    if (answer.status !== 201) throw new Error(`registration failed: ${answer.text}`)
  }
  const weights = await reg.call('PUT', `/v1/services/${SERVICE}/weights`, { token: 'operator', body: { weights: { v1: 50, v2: 50 } } })
  if (weights.status !== 200) throw new Error(`set weights failed: ${weights.text}`)
  return reg
}

const config = (topic: string) => parseMessageRouterConfig({ topics: [{ name: topic, service: SERVICE }], reconnect: { initialDelayMs: 50, maxDelayMs: 500 } }, 'test')

void t.test('RabbitMQ faults', async (t) => {
  const reg: TestRegistry = await setUp(t)
  const vhost = testVhost()
  const adapter = new RabbitMqAdapter(vhost.url)
  const topics: string[] = []
  t.teardown(async () => {
    await deleteQueues(
      topics.flatMap((topic) => topicQueueNames(topic, VERSIONS)),
      vhost.url
    ).catch(() => {})
    await vhost.destroy()
  })

  void t.test('/readyz is 503 until the broker is connected', async (t) => {
    const topic = uniqueName()
    topics.push(topic)
    // The vhost does not exist yet: the broker refuses the connection.
    const running = await startMessageRouter(
      { adminHost: '127.0.0.1', adminPort: 0, registry: reg.url, token: TOKENS.reader, broker: vhost.url, reportIntervalSeconds: 1, logLevel: 'silent' },
      { config: config(topic), adapter }
    )
    t.teardown(() => running.close())
    await waitFor(() => (running.source.ready ? true : undefined), 'the first routing table')
    const before = await get(`${running.adminUrl}/readyz`)
    t.equal(before.status, 503, 'table in, broker not connected: not ready')
    t.match(before.json, { code: 'NOT_READY', message: /not connected to the broker/ })
    t.notMatch(before.text, /guest:guest/, 'the broker password is not shown')
    const routes = await get(`${running.adminUrl}/routes`)
    t.equal(routes.json.broker.connected, false)
    t.equal(metric(await scrape(running.adminUrl), 'switchyard_broker_connected'), 0)
    await vhost.create()
    await waitFor(async () => ((await get(`${running.adminUrl}/readyz`)).status === 200 ? true : undefined), '/readyz 200 once the vhost exists', 30_000)
    t.equal((await get(`${running.adminUrl}/routes`)).json.broker.connected, true)
    t.equal(metric(await scrape(running.adminUrl), 'switchyard_broker_connected'), 1)
  })

  void t.test('connections closed by the broker mid-stream: nothing lost', async (t) => {
    await vhost.ensure()
    const topic = uniqueName()
    topics.push(topic)
    await publishNumbered(adapter, topic)
    const running = await startMessageRouter(
      { adminHost: '127.0.0.1', adminPort: 0, registry: reg.url, token: TOKENS.reader, broker: vhost.url, reportIntervalSeconds: 1, logLevel: 'silent' },
      { config: config(topic), adapter }
    )
    t.teardown(() => running.close())
    const routedBefore = await waitForRouted(running.adminUrl, topic, 1_000)
    await vhost.closeConnections()
    const routedAfter = routedOf(await scrape(running.adminUrl), topic)
    t.comment(`connections closed after ${routedBefore}-${routedAfter} of ${COUNT} messages were routed`)

    const reader = await adapter.connect()
    t.teardown(() => reader.close())
    const tally = await tallyVersionQueues(reader, topic)
    await waitFor(() => (tally.seen.size >= COUNT ? true : undefined), `all ${COUNT} numbers in the version queues`, 60_000)
    const metrics = await scrape(running.adminUrl)
    const redeliveries = metric(metrics, 'switchyard_message_redeliveries_total', { topic })
    t.ok(redeliveries > 0, `the break came mid-stream: the broker gave ${redeliveries} unacknowledged messages back`)
    t.equal(metric(metrics, 'switchyard_broker_connected'), 1, 'the router reconnected')
    assertNothingLost(t, tally, redeliveries)
  })

  void t.test('the message router process killed with SIGKILL mid-stream and started again: nothing lost', async (t) => {
    await vhost.ensure()
    const topic = uniqueName()
    topics.push(topic)
    await publishNumbered(adapter, topic)
    const start = async (): Promise<{ process: SpawnedProcess; adminUrl: string }> => {
      const port = await freePort()
      const child = spawnNode(
        [cliPath, 'message-router', '--registry', reg.url, '--admin-host', '127.0.0.1', '--admin-port', String(port), '--broker', vhost.url, '--topics', `${topic}=${SERVICE}`],
        { SWITCHYARD_TOKEN: TOKENS.reader, SWITCHYARD_LOG_LEVEL: 'info' }
      )
      t.teardown(() => child.kill('SIGKILL'))
      return { process: child, adminUrl: `http://127.0.0.1:${port}` }
    }
    const first = await start()
    const routedBefore = await waitForRouted(first.adminUrl, topic, 1_000)
    const exit = await first.process.kill('SIGKILL')
    t.equal(first.process.child.signalCode, 'SIGKILL', `killed (exit ${exit}) after ${routedBefore}+ messages were routed`)
    t.notMatch(first.process.output(), /guest:guest/, 'the broker password never reached the log')

    const second = await start()
    const reader = await adapter.connect()
    t.teardown(() => reader.close())
    const tally = await tallyVersionQueues(reader, topic)
    await waitFor(() => (tally.seen.size >= COUNT ? true : undefined), `all ${COUNT} numbers in the version queues`, 60_000)
    const metrics = await scrape(second.adminUrl)
    const redeliveries = metric(metrics, 'switchyard_message_redeliveries_total', { topic })
    t.ok(redeliveries > 0, `the kill came mid-stream: the restarted router got ${redeliveries} messages back from the broker`)
    t.ok(routedOf(metrics, topic) < COUNT, 'the restarted router routed only what the first had not finished')
    assertNothingLost(t, tally, redeliveries)
    await second.process.kill('SIGTERM')
  })
})
