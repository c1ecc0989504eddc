import { request, type Dispatcher } from 'undici'
import type { ErrorBody } from '../../core/errors.js'
import type { RolloutCommand, RolloutState } from '../../core/rollout/rollout-machine.js'
import type { RolloutRequest } from '../../core/rollout/rollout-spec.js'
import type { ServiceSignals } from '../../core/signals/figures.js'
import type { RouterView } from '../../core/signals/router-report.js'

export interface RegistryClientOptions {
  /** base URL, e.g. http://127.0.0.1:8761 */
  url: string
  token?: string | undefined
  dispatcher?: Dispatcher
  timeoutMs?: number
}

/** A registry answer other than 2xx, carrying the registry's stable code. */
export class RegistryRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string
  ) {
    super(message)
    this.name = 'RegistryRequestError'
  }
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

/** The registry's REST API for programs: the CLI, sample services and tests. */
export class RegistryClient {
  private readonly base: string
  private readonly token: string | undefined
  private readonly dispatcher: Dispatcher | undefined
  private readonly timeoutMs: number

  constructor(options: RegistryClientOptions) {
    this.base = options.url.replace(/\/+$/, '')
    this.token = options.token
    this.dispatcher = options.dispatcher
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
    return this.call('POST', `/v1/services/${encodeURIComponent(service)}/instances`, body)
  }

  heartbeat(service: string, id: string): Promise<{ leaseSeconds: number; renewSeconds: number }> {
    return this.call('PUT', `/v1/services/${encodeURIComponent(service)}/instances/${encodeURIComponent(id)}/heartbeat`)
  }

  setStatus(service: string, id: string, status: 'up' | 'draining'): Promise<{ status: string; revision: number }> {
    return this.call('PUT', `/v1/services/${encodeURIComponent(service)}/instances/${encodeURIComponent(id)}/status`, { status })
  }

  deregister(service: string, id: string): Promise<void> {
    return this.call('DELETE', `/v1/services/${encodeURIComponent(service)}/instances/${encodeURIComponent(id)}`)
  }

  private async call<T>(method: Dispatcher.HttpMethod, path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json', ...extraHeaders }
    if (this.token) headers.authorization = `Bearer ${this.token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    let response: Dispatcher.ResponseData
    try {
      response = await request(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        ...(this.dispatcher ? { dispatcher: this.dispatcher } : {})
      })
    } catch (error) {
      throw new RegistryRequestError(0, 'REGISTRY_UNREACHABLE', `cannot reach the registry at ${this.base}: ${(error as Error).message}`)
    }
    const text = await response.body.text()
    if (response.statusCode >= 200 && response.statusCode < 300) {
      return (text === '' ? undefined : JSON.parse(text)) as T
    }
    let parsed: Partial<ErrorBody> = {}
    try {
      parsed = JSON.parse(text) as Partial<ErrorBody>
    } catch {
      // not JSON: fall through to a generic message
    }
    throw new RegistryRequestError(response.statusCode, parsed.code ?? `HTTP_${response.statusCode}`, parsed.message ?? `registry answered ${response.statusCode}`)
  }
}
