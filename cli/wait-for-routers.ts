import { setTimeout as sleep } from 'node:timers/promises'
import type { RegistryClient, RouterListing } from '../registry/client/registry-client.js'

export interface RoutersWaitResult {
  /** every live router has applied the revision */
  applied: boolean
  routers: RouterListing[]
  /** live routers still behind when the wait ended */
  laggards: RouterListing[]
}

/**
 * Polls GET /v1/routers until every live router reports `revision` applied, or the
 * deadline passes. Routers report at once when a new table is in force, so this usually
 * returns within milliseconds; a router that stopped reporting is dropped by the
 * registry after its timeout and stops holding the wait.
 */
export async function waitForRouters(client: RegistryClient, revision: number, timeoutMs: number, pollMs = 100): Promise<RoutersWaitResult> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const { routers } = await client.routers()
    const laggards = routers.filter((router) => router.appliedRevision < revision)
    if (laggards.length === 0) return { applied: true, routers, laggards }
    if (Date.now() >= deadline) return { applied: false, routers, laggards }
    await sleep(Math.min(pollMs, Math.max(1, deadline - Date.now())))
  }
}
