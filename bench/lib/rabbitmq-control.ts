import { readdirSync, readFileSync } from 'node:fs'
import { connect, type Channel, type ChannelModel } from 'amqplib'

/**
 * The messages scenario's own connection to RabbitMQ, for bookkeeping only (never on the
 * measured path's hot side): declaring, purging and deleting the bench's queues, and
 * reading their depths. Every queue it touches is named by the scenario (prefix
 * `bench.`), so other users of the broker are left alone.
 */
export class RabbitControl {
  private constructor(
    private readonly connection: ChannelModel,
    private channel: Channel
  ) {}

  /** Connects, or throws with the reason (the scenario then skips). */
  static async open(url: string): Promise<RabbitControl> {
    const connection = await connect(url, { timeout: 5_000 })
    connection.on('error', () => {})
    return new RabbitControl(connection, await connection.createChannel())
  }

  /** A durable queue, as the message router declares its queues. */
  async declare(queue: string, args: Record<string, unknown> = {}): Promise<void> {
    await this.safely((channel) => channel.assertQueue(queue, { durable: true, arguments: args }))
  }

  async purge(queues: readonly string[]): Promise<void> {
    for (const queue of queues) await this.safely((channel) => channel.purgeQueue(queue))
  }

  async delete(queues: readonly string[]): Promise<void> {
    for (const queue of queues) await this.safely((channel) => channel.deleteQueue(queue))
  }

  /** Ready messages in each queue, read at once. */
  async depths(queues: readonly string[]): Promise<number[]> {
    return this.safely((channel) => Promise.all(queues.map(async (queue) => (await channel.checkQueue(queue)).messageCount)))
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => {})
  }

  // A failed operation (a queue missing) closes the channel in AMQP: open a new one for the next call.
  private async safely<T>(operation: (channel: Channel) => Promise<T>): Promise<T> {
    try {
      return await operation(this.channel)
    } catch (error) {
      this.channel = await this.connection.createChannel()
      throw error
    }
  }
}

/**
 * pid of the local RabbitMQ node (the Erlang VM, beam.smp, running rabbit), so its CPU can
 * be reported and not counted as other load; undefined when it is not a local process.
 */
export function rabbitmqPid(): number | undefined {
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return undefined
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (!readFileSync(`/proc/${entry}/comm`, 'utf8').startsWith('beam')) continue
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('rabbit')) return Number(entry)
    } catch {
      // the process ended meanwhile
    }
  }
  return undefined
}
