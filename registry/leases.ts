/**
 * When each instance last proved it is alive. Heartbeats are frequent and carry no
 * state, so they live only in memory: after a restart every instance starts a fresh
 * lease, which is also what gives it one full lease period to heartbeat again.
 */
export class LeaseBook {
  private readonly lastRenewal = new Map<string, number>()

  renew(service: string, id: string, now: number): void {
    this.lastRenewal.set(leaseKey(service, id), now)
  }

  forget(service: string, id: string): void {
    this.lastRenewal.delete(leaseKey(service, id))
  }

  lastRenewed(service: string, id: string): number | undefined {
    return this.lastRenewal.get(leaseKey(service, id))
  }

  isExpired(service: string, id: string, now: number, leaseMs: number): boolean {
    const renewed = this.lastRenewal.get(leaseKey(service, id))
    return renewed !== undefined && now - renewed > leaseMs
  }

  /** Forgets every lease whose key (`service\u0000id`) is not in `keys`. */
  retainOnly(keys: ReadonlySet<string>): void {
    for (const key of this.lastRenewal.keys()) if (!keys.has(key)) this.lastRenewal.delete(key)
  }

  /** Instances whose last renewal is more than `leaseMs` before `now`. */
  expired(now: number, leaseMs: number): { service: string; id: string }[] {
    const out: { service: string; id: string }[] = []
    for (const [key, renewed] of this.lastRenewal) {
      if (now - renewed > leaseMs) {
        const split = key.indexOf('\u0000')
        out.push({ service: key.slice(0, split), id: key.slice(split + 1) })
      }
    }
    return out
  }
}

function leaseKey(service: string, id: string): string {
  return `${service}\u0000${id}`
}
