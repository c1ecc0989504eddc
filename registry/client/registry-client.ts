import type { Dispatcher } from 'undici'
import type { ErrorBody } from '../../core/errors.js'
import type { RolloutCommand, RolloutState } from '../../core/rollout/rollout-machine.js'
import type { RolloutRequest } from '../../core/rollout/rollout-spec.js'
import type { ServiceSignals } from '../../core/signals/figures.js'
import type { RouterView } from '../../core/signals/router-report.js'
import { RegistryEndpoints, RegistryRequestError } from './registry-endpoints.js'

export { RegistryRequestError } from './registry-endpoints.js'

export interface RegistryClientOptions {
  /** base URL, e.g. http://127.0.0.1:8761; several replicas' comma-separated; or endpoints shared with other clients */
  url: string | RegistryEndpoints
  token?: string | undefined
  dispatcher?: Dispatcher
  /** per try at one endpoint */
  timeoutMs?: number
}

export interface ServiceView {
  name: string
  versions: string[]
  weights: Record<string, number>
  instances: {
    id: string
    version: string
    host: string
    port: number
    status: 'up' | 'draining'
    metadata: Record<string, string>
    registeredAt: string
    lastHeartbeat: string | null
  }[]
}

export interface RegistryStatus {
  status: string
  revision: number
  instances: number
  store: 'file' | 'etcd'
  selfPreservation: boolean
  selfPreservationSince?: string
  selfPreservationEndsAt?: string
  expiredInstancesKept?: number
}

export interface WeightsView {
  weights: Record<string, number>
  revision: number
}

/** A router as GET /v1/routers lists it (times as ISO-8601). */
export type RouterListing = Omit<RouterView, 'startedAt' | 'firstReportAt' | 'lastReportAt'> & { startedAt: string; firstReportAt: string; lastReportAt: string }

export type RolloutView = RolloutState & { step: number; routersBehind: string[]; nextDecisionInSeconds: number | null }

export interface Registration {
  id: string
  leaseSeconds: number
  renewSeconds: number
}

/**
 * The registry's REST API for programs: the CLI, sample services and tests. Calls fail
 * over between the registry's replicas (registry-endpoints.ts); a write that is not
 * idempotent goes to another replica only when it certainly did not reach the first.
 */
export class RegistryClient {
  readonly endpoints: RegistryEndpoints
  private readonly token: string | undefined
  private readonly timeoutMs: number

  constructor(options: RegistryClientOptions) {
    this.endpoints = RegistryEndpoints.from(options.url, options.dispatcher ? { dispatcher: options.dispatcher } : {})
    this.token = options.token
    this.timeoutMs = options.timeoutMs ?? 10_000
  }

  services(): Promise<{ revision: number; services: ServiceView[] }> {
    return this.call('GET', '/v1/services')
  }

  service(name: string): Promise<ServiceView & { revision: number }> {
    return this.call('GET', `/v1/services/${encodeURIComponent(name)}`)
  }

  weights(service: string): Promise<WeightsView> {
    return this.call('GET', `/v1/services/${encodeURIComponent(service)}/weights`)
  }

  /** `allowUnregistered` sets weights for versions that have no instance yet (pre-provisioning). */
  setWeights(service: string, weights: Record<string, number>, ifMatch?: number, options: { allowUnregistered?: boolean } = {}): Promise<WeightsView> {
    const query = options.allowUnregistered ? '?allowUnregistered=true' : ''
    // Not repeated after an unknown outcome: a change that did land would be applied twice
    // (a second history entry) or, with If-Match, answered 412 although it succeeded.
    return this.call('PUT', `/v1/services/${encodeURIComponent(service)}/weights${query}`, { weights }, ifMatch === undefined ? {} : { 'if-match': `"${ifMatch}"` })
  }

  routers(): Promise<{ revision: number; routers: RouterListing[] }> {
    return this.call('GET', '/v1/routers')
  }

  /** per-version figures over the last `window` ("60s", "5m") summed over every router */
  signals(service: string, window = '60s'): Promise<ServiceSignals> {
    return this.call('GET', `/v1/services/${encodeURIComponent(service)}/signals?window=${encodeURIComponent(window)}`)
  }

  startRollout(service: string, body: RolloutRequest): Promise<RolloutView> {
    return this.call('POST', `/v1/services/${encodeURIComponent(service)}/rollout`, body)
  }

  rollout(service: string): Promise<RolloutView> {
    return this.call('GET', `/v1/services/${encodeURIComponent(service)}/rollout`)
  }

  rolloutCommand(service: string, command: RolloutCommand): Promise<RolloutView> {
    return this.call('POST', `/v1/services/${encodeURIComponent(service)}/rollout/${command}`)
  }

  rollouts(): Promise<{ rollouts: RolloutView[] }> {
    return this.call('GET', '/v1/rollouts')
  }

  history(
    service: string
  ): Promise<{ service: string; revision: number; history: { revision: number; at: string; actor: string; from: Record<string, number>; to: Record<string, number> }[] }> {
    return this.call('GET', `/v1/services/${encodeURIComponent(service)}/history`)
  }

  register(service: string, body: { version: string; host: string; port: number; id?: string; metadata?: Record<string, string> }): Promise<Registration> {
    // Under a given id a second registration of the same instance changes nothing; without one it would add a second instance.
    return this.call('POST', `/v1/services/${encodeURIComponent(service)}/instances`, body, {}, body.id !== undefined)
  }

  heartbeat(service: string, id: string): Promise<{ leaseSeconds: number; renewSeconds: number }> {
    return this.call('PUT', `/v1/services/${encodeURIComponent(service)}/instances/${encodeURIComponent(id)}/heartbeat`, undefined, {}, true)
  }

  setStatus(service: string, id: string, status: 'up' | 'draining'): Promise<{ status: string; revision: number }> {
    return this.call('PUT', `/v1/services/${encodeURIComponent(service)}/instances/${encodeURIComponent(id)}/status`, { status }, {}, true)
  }

  deregister(service: string, id: string): Promise<void> {
    // Repeatable: a repeat after the first did land answers 404 INSTANCE_NOT_FOUND, which InstanceAgent takes as gone.
    return this.call('DELETE', `/v1/services/${encodeURIComponent(service)}/instances/${encodeURIComponent(id)}`, undefined, {}, true)
  }

  /** An operator's removal of an instance (one self-preservation keeps although it is dead). */
  evict(service: string, id: string): Promise<{ revision: number }> {
    return this.call('POST', `/v1/services/${encodeURIComponent(service)}/instances/${encodeURIComponent(id)}/evict`)
  }

  /** the registry's /readyz: revision, instances, store and self-preservation */
  status(): Promise<RegistryStatus> {
    return this.call('GET', '/readyz', undefined, {}, true)
  }

  /** `idempotent`: may be sent to another replica after an unknown outcome (default: reads only). */
  private async call<T>(method: Dispatcher.HttpMethod, path: string, body?: unknown, extraHeaders: Record<string, string> = {}, idempotent?: boolean): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json', ...extraHeaders }
    if (this.token) headers.authorization = `Bearer ${this.token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    const { status, text } = await this.endpoints.send({
      method,
      path,
      headers,
      body: body === undefined ? null : JSON.stringify(body),
      timeoutMs: this.timeoutMs,
      ...(idempotent === undefined ? {} : { idempotent })
    })
    if (status >= 200 && status < 300) {
      return (text === '' ? undefined : JSON.parse(text)) as T
    }
    let parsed: Partial<ErrorBody> = {}
    try {
      parsed = JSON.parse(text) as Partial<ErrorBody>
    } catch {
      // not JSON: fall through to a generic message
    }
    throw new RegistryRequestError(status, parsed.code ?? `HTTP_${status}`, parsed.message ?? `registry answered ${status}`)
  }
}
