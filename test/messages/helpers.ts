import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { connect as connectTcp } from 'node:net'
import { connect as connectAmqp } from 'amqplib'
import type { BrokerSession, Delivery } from '../../router/messages/brokers/broker.js'
import { waitFor } from '../helpers/registry-harness.js'

/** The RabbitMQ the tests use (guest/guest on the default vhost). */
export const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672'

/** A queue/topic name no other test (or earlier run) uses: a valid switchyard name. */
export function uniqueName(prefix = 't'): string {
  return `${prefix}${Date.now().toString(36)}${randomBytes(4).toString('hex')}`
}

/** The queues the message router creates for a topic, plus the given version queues. */
export function topicQueueNames(topic: string, versions: readonly string[] = []): string[] {
  return [topic, `${topic}.wait`, `${topic}.dlq`, ...versions.map((version) => `${topic}.${version}`)]
}

export function rabbitmqctl(args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('rabbitmqctl', args, { timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) reject(new Error(`rabbitmqctl ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`))
      else resolve(stdout)
    })
  })
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Makes sure RabbitMQ answers on 127.0.0.1:5672, starting it when it is down. */
export async function ensureRabbitMq(): Promise<void> {
  if (await portOpen(5672)) return
  await new Promise<void>((resolve, reject) => {
    execFile('rabbitmq-server', ['-detached'], { timeout: 30_000 }, (error) => (error ? reject(error) : resolve()))
  })
  await waitFor(async () => ((await portOpen(5672)) ? true : undefined), 'RabbitMQ to listen on 5672', 60_000)
  await rabbitmqctl(['await_startup'])
}

/** Deletes queues (missing ones are fine) through a connection of its own. */
export async function deleteQueues(names: readonly string[], url = AMQP_URL): Promise<void> {
  if (names.length === 0) return
  const connection = await connectAmqp(url, { timeout: 5_000 })
  try {
    const channel = await connection.createChannel()
    for (const name of names) await channel.deleteQueue(name)
    await channel.close()
  } finally {
    await connection.close().catch(() => {})
  }
}

export interface Vhost {
  name: string
  /** AMQP URL of the vhost for guest */
  url: string
  /** creates the vhost and gives guest every permission on it */
  create(): Promise<void>
  /** creates it unless `create` already did */
  ensure(): Promise<void>
  /** closes every connection of this vhost only (other users of the broker keep theirs) */
  closeConnections(): Promise<void>
  destroy(): Promise<void>
}

/** A vhost of its own, so that breaking connections touches nothing but this test. */
export function testVhost(): Vhost {
  const name = uniqueName('switchyard-test-')
  let created: Promise<void> | undefined
  const create = () =>
    (created ??= (async () => {
      await rabbitmqctl(['add_vhost', name])
      await rabbitmqctl(['set_permissions', '-p', name, 'guest', '.*', '.*', '.*'])
    })())
  return {
    name,
    url: `${AMQP_URL}/${encodeURIComponent(name)}`,
    create,
    ensure: create,
    async closeConnections() {
      await rabbitmqctl(['close_all_connections', '-p', name, 'switchyard test breaks the connection'])
    },
    async destroy() {
      await rabbitmqctl(['delete_vhost', name]).catch(() => {})
    }
  }
}

/** Everything a queue delivered to a reader, acknowledged one by one. */
export interface QueueReader {
  queue: string
  deliveries: Delivery[]
}

/** Consumes `queue` on `session` (which must have declared it), acking every delivery. */
export async function readQueue(session: BrokerSession, queue: string, prefetch = 1_000): Promise<QueueReader> {
  const reader: QueueReader = { queue, deliveries: [] }
  await session.consume(queue, prefetch, (delivery) => {
    reader.deliveries.push(delivery)
    session.ack(delivery.tag, false)
  })
  return reader
}

/** Yields to the event loop (timers, sockets) between bursts of in-memory work. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** Publishes `count` messages made by `make`, `window` at a time (each resolves on the broker's confirm). */
export async function publishMany(
  session: BrokerSession,
  queue: string,
  count: number,
  make: (index: number) => Parameters<BrokerSession['publish']>[1],
  window = 500
): Promise<void> {
  for (let start = 0; start < count; start += window) {
    const batch: Promise<void>[] = []
    for (let index = start; index < Math.min(count, start + window); index++) batch.push(session.publish(queue, make(index)))
    await Promise.all(batch)
    await yieldToLoop()
  }
}
