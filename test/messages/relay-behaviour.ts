import type { Test } from 'tap'
import { request } from 'undici'
import pino from 'pino'
import { BUCKET_COUNT, bucketOf } from '../../core/buckets.js'
import { emptyTable } from '../../core/route-table.js'
import type { BrokerAdapter, BrokerSession, Delivery, OutgoingMessage } from '../../router/messages/brokers/broker.js'
import { parseMessageRouterConfig, type MessageRouterConfig } from '../../router/messages/config.js'
import { MessageRouter } from '../../router/messages/message-router.js'
import { MessageMetrics } from '../../router/messages/metrics.js'
import { startMessageRouter, type RunningMessageRouter } from '../../router/messages/server.js'
import { MessageHeader } from '../../router/messages/topic-relay.js'
import { freePort } from '../helpers/processes.js'
import { startTestRegistry, TOKENS, waitFor, type TestRegistry } from '../helpers/registry-harness.js'
import { get } from '../helpers/http.js'
import { metric, scrape } from '../helpers/prometheus.js'
import { publishMany, readQueue, topicQueueNames, uniqueName, yieldToLoop, type QueueReader } from './helpers.js'

/** One broker the message router runs on; the behaviour is the same for every one. */
export interface RelayTarget {
  /** the router's `broker` setting: "memory" or the AMQP URL */
  broker: string
  /** an adapter for one scenario: the router and the test's reader both connect through it */
  newAdapter(): BrokerAdapter
  deleteQueues(names: string[]): Promise<void>
}

const SERVICE = 'orders-worker'

interface ScenarioOptions {
  service?: string
  /** versions to register one instance each, in this order (the first gets 100% by itself) */
  versions?: string[]
  weights?: Record<string, number>
  config?: Record<string, unknown>
  /** start the router against this registry URL instead of a running registry */
  registryUrl?: string
}

interface Scenario {
  reg: TestRegistry | undefined
  running: RunningMessageRouter
  reader: BrokerSession
  topic: string
  service: string
  /** publishes straight to the topic queue (resolves on the broker's confirm) */
  publish(message: OutgoingMessage): Promise<void>
  /** consumes a version queue (or "dlq") of the topic, acknowledging each delivery */
  read(suffix: string): Promise<QueueReader>
  register(version: string): Promise<void>
  setWeights(weights: Record<string, number>): Promise<number>
  metrics(): Promise<string>
}

function numbered(index: number, headers: OutgoingMessage['headers'] = {}): OutgoingMessage {
  return { body: Buffer.from(JSON.stringify({ n: index })), headers, messageId: `m${index}`, contentType: 'application/json' }
}

const numberOf = (delivery: Delivery): number => (JSON.parse(delivery.body.toString('utf8')) as { n: number }).n

function total(readers: readonly QueueReader[]): number {
  return readers.reduce((sum, reader) => sum + reader.deliveries.length, 0)
}

async function waitForTotal(readers: readonly QueueReader[], expected: number, what: string, timeoutMs = 40_000): Promise<void> {
  await waitFor(() => (total(readers) >= expected ? true : undefined), `${expected} ${what} (have ${total(readers)})`, timeoutMs)
}

/** Each published number exactly once across the readers. */
function assertEachOnce(t: Test, readers: readonly QueueReader[], count: number, what: string): void {
  const seen = new Map<number, number>()
  for (const reader of readers) for (const delivery of reader.deliveries) seen.set(numberOf(delivery), (seen.get(numberOf(delivery)) ?? 0) + 1)
  const missing: number[] = []
  for (let index = 0; index < count; index++) if (!seen.has(index)) missing.push(index)
  const repeated = [...seen].filter(([, times]) => times > 1).map(([n]) => n)
  t.same(
    { missing: missing.slice(0, 20), repeated: repeated.slice(0, 20), delivered: total(readers) },
    { missing: [], repeated: [], delivered: count },
    `${what}: all ${count} messages, none lost, none twice`
  )
}

const percent = (part: number, whole: number) => (100 * part) / whole

export function relayBehaviour(t: Test, target: RelayTarget): void {
  async function scenario(t: Test, options: ScenarioOptions = {}): Promise<Scenario> {
    const service = options.service ?? SERVICE
    const topic = uniqueName()
    const versionsUsed = new Set<string>(options.versions ?? [])
    const adapter = target.newAdapter()
    const reg = options.registryUrl === undefined ? await startTestRegistry() : undefined
    const config: MessageRouterConfig = parseMessageRouterConfig(
      { topics: [{ name: topic, service }], requeueDelayMs: 50, maxAttempts: 3, reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, ...options.config },
      'test'
    )
    // Filled in below; the teardown closes whatever got started.
    const started: { running?: RunningMessageRouter; reader?: BrokerSession } = {}
    t.teardown(async () => {
      // Versions the router declared queues for, registered by the test or not.
      for (const version of started.running?.source.table.services.get(service)?.versions ?? []) versionsUsed.add(version.name)
      await started.reader?.close()
      await started.running?.close()
      await reg?.destroy()
      await target.deleteQueues(topicQueueNames(topic, [...versionsUsed]))
    })
    const waitForTable = async (revision: number) => {
      await waitFor(() => (started.running && started.running.source.table.revision >= revision ? true : undefined), `the router at registry revision ${revision}`)
    }
    let instanceCounter = 0
    const register = async (version: string) => {
      if (!reg) throw new Error('no registry in this scenario')
      versionsUsed.add(version)
      const id = `${service}-${version}-${++instanceCounter}`
      const answer = await reg.call('POST', `/v1/services/${service}/instances`, { token: 'registrar', body: { version, host: '127.0.0.1', port: 10_000 + instanceCounter, id } })
      if (answer.status !== 201 && answer.status !== 200) throw new Error(`registration failed: ${answer.status} ${answer.text}`)
      if (started.running) await waitForTable(reg.registry.revision)
    }
    const setWeights = async (weights: Record<string, number>) => {
      if (!reg) throw new Error('no registry in this scenario')
      for (const version of Object.keys(weights)) versionsUsed.add(version)
      const answer = await reg.call('PUT', `/v1/services/${service}/weights`, { token: 'operator', body: { weights } })
      if (answer.status !== 200) throw new Error(`set weights failed: ${answer.status} ${answer.text}`)
      if (started.running) await waitForTable(answer.json.revision)
      return answer.json.revision as number
    }
    for (const version of options.versions ?? []) await register(version)
    if (options.weights) await setWeights(options.weights)

    const running = await startMessageRouter(
      {
        adminHost: '127.0.0.1',
        adminPort: 0,
        registry: options.registryUrl ?? (reg as TestRegistry).url,
        token: TOKENS.reader,
        broker: target.broker,
        reportIntervalSeconds: 1,
        logLevel: 'silent'
      },
      { config, adapter }
    )
    started.running = running
    const session = await adapter.connect()
    started.reader = session
    await session.declareQueue(`${topic}.dlq`)
    await session.declareQueue(topic)
    return {
      reg,
      running,
      reader: session,
      topic,
      service,
      publish: (message) => session.publish(topic, message),
      async read(suffix) {
        const queue = `${topic}.${suffix}`
        if (suffix === 'dlq') await session.declareQueue(queue)
        else {
          versionsUsed.add(suffix)
          await session.declareQueue(queue, { deadLetterQueue: `${topic}.rejected` })
        }
        return readQueue(session, queue)
      },
      register,
      setWeights,
      metrics: () => scrape(running.adminUrl)
    }
  }

  async function ready(s: Scenario): Promise<void> {
    await waitFor(async () => ((await get(`${s.running.adminUrl}/readyz`)).status === 200 ? true : undefined), '/readyz to answer 200', 20_000)
  }

  void t.test('/readyz is 503 until the first routing table, then 200 with the broker connected', async (t) => {
    const port = await freePort()
    const s = await scenario(t, { registryUrl: `http://127.0.0.1:${port}` })
    const before = await get(`${s.running.adminUrl}/readyz`)
    t.equal(before.status, 503, 'no registry yet: not ready')
    t.equal(before.json.code, 'NOT_READY')
    t.match(before.json.message, /routing table/)
    t.equal((await get(`${s.running.adminUrl}/healthz`)).status, 200, 'alive all the same')
    t.equal(s.running.router.connected, false, 'does not consume without a table')
    const reg = await startTestRegistry({ port })
    t.teardown(() => reg.destroy())
    await reg.call('POST', `/v1/services/${SERVICE}/instances`, { token: 'registrar', body: { version: 'v1', host: '127.0.0.1', port: 10_001, id: 'w1' } })
    await ready(s)
    const after = await get(`${s.running.adminUrl}/readyz`)
    t.equal(after.json.status, 'ready')
    t.equal(after.json.revision, reg.registry.revision)
    t.equal(s.running.router.connected, true)
  })

  void t.test('splits 10,000 messages 90/10 within one percentage point; /routes and /metrics tell', async (t) => {
    const s = await scenario(t, { versions: ['v1', 'v2'], weights: { v1: 90, v2: 10 } })
    await ready(s)
    const routes = await get(`${s.running.adminUrl}/routes`)
    t.match(routes.json, {
      broker: { connected: true },
      topics: [
        {
          name: s.topic,
          service: SERVICE,
          queue: s.topic,
          deadLetterQueue: `${s.topic}.dlq`,
          versions: [
            { name: 'v1', weight: 90, queue: `${s.topic}.v1`, workers: 1 },
            { name: 'v2', weight: 10, queue: `${s.topic}.v2`, workers: 1 }
          ]
        }
      ]
    })
    const v1 = await s.read('v1')
    const v2 = await s.read('v2')
    const dlq = await s.read('dlq')
    const count = 10_000
    await publishMany(s.reader, s.topic, count, (index) => numbered(index))
    await waitForTotal([v1, v2], count, 'routed messages')
    assertEachOnce(t, [v1, v2, dlq], count, 'version queues')
    const share = percent(v2.deliveries.length, count)
    t.ok(Math.abs(share - 10) <= 1, `v2 took ${share.toFixed(2)}% (weight 10%)`)
    t.ok(
      v1.deliveries.every((d) => d.headers[MessageHeader.version] === 'v1' && d.headers[MessageHeader.topic] === s.topic),
      'v1 messages name their version and topic'
    )
    t.ok(
      v2.deliveries.every((d) => d.headers[MessageHeader.version] === 'v2'),
      'v2 messages name their version'
    )
    t.ok(
      v1.deliveries.every((d) => d.contentType === 'application/json' && d.messageId === `m${numberOf(d)}`),
      'properties travel'
    )

    const metrics = await waitFor(async () => {
      const text = await s.metrics()
      return metric(text, 'switchyard_messages_total', { topic: s.topic, outcome: 'routed' }) >= count ? text : undefined
    }, 'routed count in /metrics')
    t.equal(
      metric(metrics, 'switchyard_messages_total', { topic: s.topic, version: 'v1', outcome: 'routed' }),
      v1.deliveries.length,
      'switchyard_messages_total{version="v1",outcome="routed"}'
    )
    t.equal(
      metric(metrics, 'switchyard_messages_total', { topic: s.topic, version: 'v2', outcome: 'routed' }),
      v2.deliveries.length,
      'switchyard_messages_total{version="v2",outcome="routed"}'
    )
    t.equal(metric(metrics, 'switchyard_message_routing_seconds_count', { topic: s.topic }), count, 'switchyard_message_routing_seconds observed each message')
    t.match(metrics, /^switchyard_message_routing_seconds_bucket\{le="0\.001",topic="[^"]+"\} \d+$/m, 'latency histogram buckets')
    t.equal(metric(metrics, 'switchyard_messages_in_flight', { topic: s.topic }), 0, 'nothing in flight once all are acknowledged')
    t.match(metrics, /^# TYPE switchyard_message_redeliveries_total counter$/m, 'redeliveries counter exported')
    t.equal(metric(metrics, 'switchyard_message_redeliveries_total', { topic: s.topic }), 0, 'no redeliveries')
    t.match(metrics, /^# TYPE switchyard_messages_dead_lettered_total counter$/m, 'dead-letter counter exported')
    t.equal(metric(metrics, 'switchyard_broker_connected'), 1)
  })

  void t.test('x-switchyard-version reaches a version at 0%; an unknown one waits and is dead-lettered', async (t) => {
    const s = await scenario(t, { versions: ['v1', 'v2'] })
    await ready(s)
    const routes = await get(`${s.running.adminUrl}/routes`)
    t.match(
      routes.json.topics[0].versions,
      [
        { name: 'v1', weight: 100 },
        { name: 'v2', weight: 0 }
      ],
      'v2 is dark'
    )
    const v1 = await s.read('v1')
    const v2 = await s.read('v2')
    const dlq = await s.read('dlq')
    await publishMany(s.reader, s.topic, 60, (index) =>
      numbered(
        index,
        index % 3 === 0 ? { [MessageHeader.version]: 'v2' } : index % 3 === 1 ? {} : index === 59 ? { [MessageHeader.version]: 'v9' } : { [MessageHeader.version]: 'v1' }
      )
    )
    await waitForTotal([v1, v2, dlq], 60, 'messages')
    assertEachOnce(t, [v1, v2, dlq], 60, 'forced versions')
    t.same(
      v2.deliveries.map(numberOf).sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => i * 3),
      'exactly the forced messages reached v2'
    )
    t.equal(v1.deliveries.length, 39)
    t.equal(dlq.deliveries.length, 1, 'the message forced to an unknown version')
    const dead = dlq.deliveries[0] as Delivery
    t.equal(numberOf(dead), 59)
    t.equal(dead.headers[MessageHeader.deadReason], 'unknown-version')
    t.equal(dead.headers[MessageHeader.attempts], 2, 'it waited maxAttempts - 1 times first')
  })

  void t.test('a sticky key keeps its version and its order', async (t) => {
    const s = await scenario(t, { versions: ['v1', 'v2'], weights: { v1: 50, v2: 50 } })
    await ready(s)
    const v1 = await s.read('v1')
    const v2 = await s.read('v2')
    const keys = Array.from({ length: 20 }, (_, i) => `customer-${i}`)
    const perKey = 50
    const count = keys.length * perKey
    // Interleaved: message i belongs to key i % 20 and is that key's (i / 20)th.
    await publishMany(s.reader, s.topic, count, (index) => numbered(index, { 'x-switchyard-key': keys[index % keys.length] as string, seq: Math.floor(index / keys.length) }), 100)
    await waitForTotal([v1, v2], count, 'sticky messages')
    assertEachOnce(t, [v1, v2], count, 'sticky')
    const expected = (key: string) => (bucketOf(key) < BUCKET_COUNT / 2 ? 'v1' : 'v2')
    const wrong: string[] = []
    const outOfOrder: string[] = []
    for (const key of keys) {
      for (const [version, reader] of [
        ['v1', v1],
        ['v2', v2]
      ] as const) {
        const seqs = reader.deliveries.filter((d) => d.headers['x-switchyard-key'] === key).map((d) => d.headers.seq as number)
        if (seqs.length > 0 && version !== expected(key)) wrong.push(`${key} in ${version}`)
        if (seqs.some((seq, i) => i > 0 && seq <= (seqs[i - 1] as number))) outOfOrder.push(key)
      }
    }
    t.same(wrong, [], 'every key in exactly the version its bucket names')
    t.same(outOfOrder, [], 'each key in publish order')
    t.ok(v1.deliveries.length > 0 && v2.deliveries.length > 0, 'the keys spread over both versions')
  })

  void t.test('a weight change mid-stream is picked up', async (t) => {
    const s = await scenario(t, { versions: ['v1', 'v2'], weights: { v1: 90, v2: 10 } })
    await ready(s)
    const v1 = await s.read('v1')
    const v2 = await s.read('v2')
    let published = 0
    let stop = false
    let failure: Error | undefined
    const publisher = (async () => {
      while (!stop) {
        const batch: Promise<void>[] = []
        for (let i = 0; i < 50; i++) batch.push(s.publish(numbered(published++)))
        await Promise.all(batch)
        await yieldToLoop()
      }
    })().catch((error: Error) => (failure = error))
    await waitFor(() => (published >= 3_000 || failure ? true : undefined), '3,000 messages published')
    await s.setWeights({ v1: 10, v2: 90 }) // resolves once the router's table has it
    const boundary = published // every message from here on is routed after the change
    await waitFor(() => (published >= boundary + 5_000 || failure ? true : undefined), '5,000 more messages published', 30_000)
    stop = true
    await publisher
    t.equal(failure, undefined, 'every publish confirmed')
    await waitForTotal([v1, v2], published, 'messages')
    assertEachOnce(t, [v1, v2], published, 'weight change')
    const after = (reader: QueueReader) => reader.deliveries.filter((d) => numberOf(d) >= boundary).length
    const afterTotal = published - boundary
    const share = percent(after(v2), afterTotal)
    t.ok(Math.abs(share - 90) <= 1, `after the change v2 took ${share.toFixed(2)}% of ${afterTotal} (new weight 90%)`)
    const early = (reader: QueueReader) => reader.deliveries.filter((d) => numberOf(d) < 1_000).length
    t.ok(Math.abs(percent(early(v2), 1_000) - 10) <= 1, `the first 1,000 went 90/10 (v2 ${percent(early(v2), 1_000).toFixed(1)}%)`)
  })

  void t.test('poison messages go to the dead-letter queue with the reason', async (t) => {
    const s = await scenario(t, { versions: ['v1'] })
    await ready(s)
    const v1 = await s.read('v1')
    const dlq = await s.read('dlq')
    const poison: OutgoingMessage['headers'][] = [
      { [MessageHeader.version]: '../x' },
      { [MessageHeader.version]: 7 },
      { [MessageHeader.version]: true },
      { [MessageHeader.version]: '' },
      { [MessageHeader.version]: 'v'.repeat(65) },
      { [MessageHeader.version]: 'v1/../../etc' }
    ]
    const count = 20
    await publishMany(s.reader, s.topic, count, (index) => numbered(index, index < poison.length ? { ...poison[index], 'x-note': `poison ${index}` } : {}))
    await waitForTotal([v1, dlq], count, 'messages')
    assertEachOnce(t, [v1, dlq], count, 'poison')
    t.same(
      dlq.deliveries.map(numberOf).sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5],
      'every poison message, and only those, dead-lettered'
    )
    for (const dead of dlq.deliveries) {
      const index = numberOf(dead)
      t.equal(dead.headers[MessageHeader.deadReason], 'invalid-version-header', `poison ${index}: reason`)
      t.equal(dead.headers['x-note'], `poison ${index}`, `poison ${index}: its own headers kept`)
      t.same(dead.headers[MessageHeader.version], poison[index]?.[MessageHeader.version], `poison ${index}: the offending header kept for inspection`)
      t.ok(!Number.isNaN(Date.parse(String(dead.headers[MessageHeader.deadAt]))), `poison ${index}: ${MessageHeader.deadAt} is a date`)
      t.equal(dead.messageId, `m${index}`)
    }
    const metrics = await waitFor(async () => {
      const text = await s.metrics()
      return metric(text, 'switchyard_messages_dead_lettered_total', { topic: s.topic }) >= poison.length ? text : undefined
    }, 'dead-letter count in /metrics')
    t.equal(
      metric(metrics, 'switchyard_messages_dead_lettered_total', { topic: s.topic, reason: 'invalid-version-header' }),
      poison.length,
      'switchyard_messages_dead_lettered_total{reason}'
    )
    t.equal(metric(metrics, 'switchyard_messages_total', { topic: s.topic, version: '', outcome: 'dead-lettered' }), poison.length)
  })

  void t.test('an unroutable message waits, and after maxAttempts goes to the dead-letter queue', async (t) => {
    const s = await scenario(t, { service: 'ghost-worker' })
    await ready(s)
    const dlq = await s.read('dlq')
    const count = 5
    await publishMany(s.reader, s.topic, count, (index) => numbered(index))
    await waitForTotal([dlq], count, 'dead-lettered messages')
    assertEachOnce(t, [dlq], count, 'unroutable')
    for (const dead of dlq.deliveries) {
      t.equal(dead.headers[MessageHeader.deadReason], 'no-routable-version')
      t.equal(dead.headers[MessageHeader.attempts], 2, 'tried maxAttempts (3) times: waited twice')
    }
    const metrics = await waitFor(async () => {
      const text = await s.metrics()
      return metric(text, 'switchyard_messages_dead_lettered_total', { topic: s.topic, reason: 'no-routable-version' }) >= count ? text : undefined
    }, 'dead-letter count in /metrics')
    t.equal(metric(metrics, 'switchyard_messages_total', { topic: s.topic, outcome: 'delayed' }), 2 * count, 'each waited twice')
    t.equal(metric(metrics, 'switchyard_messages_dead_lettered_total', { topic: s.topic, reason: 'no-routable-version' }), count)
  })

  void t.test('an unroutable message that becomes routable while it waits is delivered', async (t) => {
    const s = await scenario(t, { service: 'late-worker', config: { maxAttempts: 1_000 } })
    await ready(s)
    const v1 = await s.read('v1')
    const dlq = await s.read('dlq')
    const count = 3
    await publishMany(s.reader, s.topic, count, (index) => numbered(index))
    // Every message has waited at least once (and is waiting again) before a worker exists.
    await waitFor(async () => (metric(await s.metrics(), 'switchyard_messages_total', { topic: s.topic, outcome: 'delayed' }) >= 3 * count ? true : undefined), 'messages waiting')
    t.equal(v1.deliveries.length, 0, 'nothing routed without a worker')
    await s.register('v1')
    await waitForTotal([v1, dlq], count, 'messages')
    assertEachOnce(t, [v1, dlq], count, 'late worker')
    t.equal(v1.deliveries.length, count, 'all reached the new version queue')
    t.ok(
      v1.deliveries.every((d) => Number(d.headers[MessageHeader.attempts]) >= 1),
      'each had waited (x-switchyard-attempts >= 1)'
    )
    t.equal(dlq.deliveries.length, 0)
  })

  void t.test('stopping while the broker connection is being set up completes, and nothing consumes afterwards', async (t) => {
    const topic = uniqueName()
    const adapter = target.newAdapter()
    t.teardown(() => target.deleteQueues(topicQueueNames(topic)))
    const metrics = new MessageMetrics()
    const router = new MessageRouter({
      adapter,
      config: parseMessageRouterConfig({ topics: [{ name: topic, service: SERVICE }] }, 'test'),
      tables: { table: emptyTable() },
      metrics,
      log: pino({ level: 'silent' }),
      brokerLabel: target.broker
    })
    let stopped = false
    router.start() // connecting now
    void router.stop().then(() => (stopped = true))
    await waitFor(() => (stopped ? true : undefined), 'stop() to resolve')
    t.equal(router.connected, false)
    t.equal((await metrics.registry.getSingleMetricAsString('switchyard_broker_connected')).trim().split('\n').at(-1), 'switchyard_broker_connected 0')
    // The topic queue has no consumer left: a reader gets what is published there.
    const reader = await adapter.connect()
    t.teardown(() => reader.close())
    await reader.declareQueue(topic)
    const read = await readQueue(reader, topic)
    await publishMany(reader, topic, 20, (index) => numbered(index))
    await waitForTotal([read], 20, 'messages on the topic queue')
    t.equal(read.deliveries.length, 20, 'all of them reached the reader, none the stopped router')
  })

  void t.test('POST /v1/topics/:topic/messages', async (t) => {
    const s = await scenario(t, { versions: ['v1'] })
    await ready(s)
    const v1 = await s.read('v1')
    const body = JSON.stringify({ order: 42, note: 'héllo' })
    const response = await request(`${s.running.adminUrl}/v1/topics/${s.topic}/messages`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        tracestate: 'vendor=1',
        'x-request-id': 'req-123',
        'x-not-carried': 'nope'
      },
      body
    })
    const answer = (await response.body.json()) as any
    t.equal(response.statusCode, 202)
    t.equal(answer.topic, s.topic)
    t.match(answer.messageId, /^[0-9a-f-]{36}$/, 'a generated message id')
    const given = await request(`${s.running.adminUrl}/v1/topics/${s.topic}/messages`, {
      method: 'POST',
      headers: { 'x-message-id': 'my-id-1', 'content-type': 'text/plain' },
      body: 'plain'
    })
    t.equal(given.statusCode, 202)
    t.equal(((await given.body.json()) as any).messageId, 'my-id-1', 'x-message-id is kept')
    await waitForTotal([v1], 2, 'messages')
    const [first, second] = v1.deliveries as [Delivery, Delivery]
    t.equal(first.messageId, answer.messageId)
    t.equal(first.body.toString('utf8'), body)
    t.equal(first.contentType, 'application/json')
    t.equal(first.headers.traceparent, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'traceparent travels')
    t.equal(first.headers.tracestate, 'vendor=1')
    t.equal(first.headers['x-request-id'], 'req-123', 'x-request-id travels')
    t.equal(first.headers['x-not-carried'], undefined, 'other request headers do not')
    t.equal(first.headers[MessageHeader.version], 'v1')
    t.equal(second.messageId, 'my-id-1')
    t.equal(second.body.toString('utf8'), 'plain')
    const unknown = await request(`${s.running.adminUrl}/v1/topics/no-such-topic/messages`, { method: 'POST', body: 'x', headers: { 'content-type': 'text/plain' } })
    t.equal(unknown.statusCode, 404)
    t.equal(((await unknown.body.json()) as any).code, 'TOPIC_NOT_FOUND')
  })
}
