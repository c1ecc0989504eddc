import type { RestServices } from '../lib/model.js'
import { Api } from './api.js'

/**
 * With a token already in the session, GET /v1/services starts at once, beside the whoami
 * check, instead of after it: the largest answer the console waits for (about 1 MB with
 * 5,000 instances) is on its way one round trip sooner. Taken once, by the first store.
 */
let pending: { token: string; services: Promise<RestServices> } | undefined

export function prefetchServices(token: string): void {
  const services = new Api({ token }).get<RestServices>('/v1/services')
  // a refusal is the store's to report when it reads again
  services.catch(() => {})
  pending = { token, services }
}

export function takePrefetched(token: string): Promise<RestServices> | undefined {
  const taken = pending?.token === token ? pending.services : undefined
  pending = undefined
  return taken
}
