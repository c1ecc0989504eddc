import type { EtcdPort } from './etcd-port.js'
import { followPrefixFromNow } from './etcd-port.js'

export interface HeartbeatExchangeOptions {
  etcd: EtcdPort
  /** this replica's batch key (under the heartbeats prefix) */
  key: string
  /** this replica's etcd lease: its batch key goes when it does */
  lease: () => string | undefined
  flushMs: number
  onError: (error: Error, what: string) => void
}

/**
 * Heartbeats reach any replica; the sweeper must know of all of them. Writing each one to
 * etcd would be 1,000 writes/s for 10,000 instances at 10 s; instead each replica puts
 * the instances it heard from lately in one key per flush (about 20 KB per second at
 * that rate) and every replica watches the others' keys. A lost batch costs one flush
 * interval of lease, far below a lease period; a late one (etcd was electing) renews on
 * arrival, keeping an instance a little longer, never evicting one early.
 */
export class HeartbeatExchange {
  private readonly options: HeartbeatExchangeOptions
  private pending = new Set<string>()
  private readonly listeners: ((instances: readonly { service: string; id: string }[]) => void)[] = []
  private timer: NodeJS.Timeout | undefined
  private flushing: Promise<void> = Promise.resolve()
  private watch: { cancel(): void } | undefined
  private stopped = false

  constructor(options: HeartbeatExchangeOptions) {
    this.options = options
  }

  add(service: string, id: string): void {
    this.pending.add(`${service}\u0000${id}`)
  }

  onRemote(listener: (instances: readonly { service: string; id: string }[]) => void): void {
    this.listeners.push(listener)
  }

  start(): void {
    this.timer = setInterval(() => {
      this.flushing = this.flushing.then(() => this.flush())
    }, this.options.flushMs)
    this.timer.unref()
    this.follow()
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    this.watch?.cancel()
    await this.flushing
  }

  private async flush(): Promise<void> {
    const lease = this.options.lease()
    if (this.pending.size === 0 || lease === undefined) return
    const batch = [...this.pending]
    this.pending = new Set()
    try {
      await this.options.etcd.txn([], [{ put: { key: this.options.key, value: JSON.stringify(batch), lease } }], [])
    } catch (error) {
      for (const key of batch) this.pending.add(key)
      this.options.onError(error as Error, 'passing heartbeats to the other replicas failed; retrying with the next batch')
    }
  }

  /** Watches every replica's batch key from now on (older batches are stale anyway). */
  private follow(): void {
    const prefix = this.options.key.slice(0, this.options.key.lastIndexOf('/') + 1)
    followPrefixFromNow(
      this.options.etcd,
      prefix,
      (events) => {
        for (const event of events) {
          if (event.type !== 'put' || event.kv.key === this.options.key) continue
          const instances = (JSON.parse(event.kv.value) as string[]).map((key) => {
            const split = key.indexOf('\u0000')
            return { service: key.slice(0, split), id: key.slice(split + 1) }
          })
          for (const listener of this.listeners) listener(instances)
        }
      },
      { stopped: () => this.stopped, onWatch: (watch) => (this.watch = watch), onError: this.options.onError, what: 'the heartbeat watch' }
    )
  }
}
