import type { EtcdPort } from './etcd-port.js'

export interface LeaderRoleOptions {
  etcd: EtcdPort
  /** the role's key: holds the holder's replica id, attached to its etcd lease */
  key: string
  replicaId: string
  leaseSeconds: number
  onError: (error: Error, what: string) => void
}

/**
 * One replica of all makes the cluster's background decisions (lease expiries, rollout
 * steps, snapshots): the one whose id is in the role's key. The key lives on that replica's etcd lease, so when the replica dies
 * etcd deletes it after the lease's TTL and another replica takes the role on its next
 * attempt. The holder's writes compare the key (a fence), so a replica that lost the role
 * without noticing (paused, cut off) cannot evict anything or step a rollout. After an etcd leader change,
 * etcd renews every lease to its full TTL (etcd #9395), so the role can take up to one
 * more TTL to move; instance leases are not etcd leases and are not affected.
 */
export class LeaderRole {
  readonly replicaId: string
  private readonly options: LeaderRoleOptions
  private leaseId: string | undefined
  private holding = false
  /** until when (local clock) the lease is known to be alive: a holder that cannot renew stops deciding before etcd frees the key */
  private aliveUntil = 0
  private timer: NodeJS.Timeout | undefined
  private stopped = false
  private ticking: Promise<void> = Promise.resolve()

  constructor(options: LeaderRoleOptions) {
    this.options = options
    this.replicaId = options.replicaId
  }

  /** this replica's etcd lease (heartbeat batches live on it too) */
  get lease(): string | undefined {
    return this.leaseId
  }

  held(): boolean {
    return this.holding && Date.now() < this.aliveUntil
  }

  async start(): Promise<void> {
    await this.tick()
    // A third of the TTL: two renewals may fail before the lease runs out.
    this.timer = setInterval(
      () => {
        this.ticking = this.ticking.then(() => this.tick())
      },
      (this.options.leaseSeconds * 1000) / 3
    )
    this.timer.unref()
  }

  /** A fenced write showed that another replica holds the role. */
  lost(): void {
    this.holding = false
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    await this.ticking
    // Hands the role on at once instead of after the TTL.
    if (this.leaseId) await this.options.etcd.revokeLease(this.leaseId).catch(() => undefined)
    this.leaseId = undefined
    this.holding = false
  }

  private async tick(): Promise<void> {
    if (this.stopped) return
    const { etcd, key, replicaId, leaseSeconds } = this.options
    try {
      const started = Date.now()
      if (this.leaseId) {
        const ttl = await etcd.keepAlive(this.leaseId)
        if (ttl <= 0) {
          this.leaseId = undefined
          this.holding = false
        } else {
          this.aliveUntil = started + ttl * 1000
        }
      }
      if (!this.leaseId) {
        this.leaseId = await etcd.grantLease(leaseSeconds)
        this.aliveUntil = started + leaseSeconds * 1000
      }
      const result = await etcd.txn([{ key, target: 'createRevision', revision: 0 }], [{ put: { key, value: replicaId, lease: this.leaseId } }], [{ range: { key } }])
      this.holding = result.succeeded || result.responses[0]?.kvs?.[0]?.value === replicaId
    } catch (error) {
      this.options.onError(error as Error, 'renewing the replica lease failed')
    }
  }
}
