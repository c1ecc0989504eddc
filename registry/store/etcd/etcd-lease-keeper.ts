import type { EtcdClient } from './etcd-client.js'
import { EtcdError } from './etcd-errors.js'

export interface LeaseLoss {
  id: string
  /** `expired`: etcd answered it no longer has the lease; `unreachable`: no renewal succeeded for a whole TTL, so etcd has likely let it go */
  reason: 'expired' | 'unreachable'
  error: EtcdError
}

export interface LeaseKeeperOptions {
  /** the lease's TTL in seconds, as granted */
  ttlSeconds: number
  /** between renewals; default a third of the TTL, so two may fail before the lease runs out */
  intervalMs?: number
  /** called once, when the lease is lost; the keeper has stopped by then */
  onLost: (loss: LeaseLoss) => void
  /** after each renewal, with the TTL etcd renewed it to */
  onRenewed?: (ttlSeconds: number) => void
}

export interface LeaseKeeper {
  readonly id: string
  /** local time until which the lease is known to live (last renewal + its TTL) */
  readonly aliveUntil: number
  stop(): void
}

/**
 * Renews a lease on an interval with single keepalive requests (the gateway has no
 * long-lived keepalive stream worth holding). Each renewal has the interval as its time
 * budget, so a slow member does not make renewals pile up. Note etcd #9395: a leader
 * change renews every lease to its full TTL, so etcd may keep a lease a TTL longer than
 * the last renewal said; the keeper's `aliveUntil` is the conservative side.
 */
export function keepLeaseAlive(client: EtcdClient, id: string, options: LeaseKeeperOptions): LeaseKeeper {
  const intervalMs = options.intervalMs ?? Math.max(100, Math.floor((options.ttlSeconds * 1000) / 3))
  let aliveUntil = Date.now() + options.ttlSeconds * 1000
  let stopped = false
  let running = false
  const lose = (reason: LeaseLoss['reason'], error: EtcdError) => {
    if (stopped) return
    stopped = true
    clearInterval(timer)
    options.onLost({ id, reason, error })
  }
  const renew = async () => {
    if (running || stopped) return
    running = true
    const started = Date.now()
    try {
      const ttl = await client.keepAliveOnce(id, { timeoutMs: intervalMs })
      if (stopped) return
      if (ttl <= 0) return lose('expired', new EtcdError('ETCD_REQUEST_FAILED', `etcd no longer has lease ${id} (expired or revoked)`))
      aliveUntil = started + ttl * 1000
      options.onRenewed?.(ttl)
    } catch (error) {
      if (Date.now() >= aliveUntil)
        lose('unreachable', new EtcdError('ETCD_UNAVAILABLE', `lease ${id} not renewed for its whole TTL: ${(error as Error).message}`, { cause: error }))
    } finally {
      running = false
    }
  }
  const timer = setInterval(() => void renew(), intervalMs)
  return {
    id,
    get aliveUntil() {
      return aliveUntil
    },
    stop() {
      stopped = true
      clearInterval(timer)
    }
  }
}
