import { Agent, request, type Dispatcher } from 'undici'
import { failoverDelay, type BackoffPolicy } from '../../core/backoff.js'
import { failoverVerdict, outcomeOfError, type TryOutcome } from '../../core/registry-failover.js'
import { parseRegistryUrls } from '../../core/registry-urls.js'

/** A registry answer other than 2xx, carrying the registry's stable code (status 0: no answer). */
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

export interface RegistryEndpointsOptions {
  /** first backoff ceiling once every endpoint failed in a row; doubles per round */
  initialBackoffMs?: number
  maxBackoffMs?: number
  /** how many times one call may go round all endpoints before it gives up */
  rounds?: number
  /** [0, 1) source for the jitter */
  random?: () => number
  /** a silent host (packets dropped) counts as down after this long */
  connectTimeoutMs?: number
  dispatcher?: Dispatcher
  /** the current endpoint changed (once per switch, for a log line) */
  onSwitch?: (from: string, to: string, reason: string) => void
}

export interface RegistryCall {
  method: Dispatcher.HttpMethod
  /** from the root, e.g. /v1/services */
  path: string
  headers?: Record<string, string>
  body?: string | null
  /**
   * Sending it again cannot do more than sending it once (default: GET and HEAD). Only such
   * a call is sent to another endpoint after a lost answer or a 5xx (core/registry-failover.ts).
   */
  idempotent?: boolean
  /** for the headers and again for the body, per try */
  timeoutMs: number
  /** overrides the endpoints' rounds for this call */
  rounds?: number
}

export interface RegistryAnswer {
  /** the endpoint that answered */
  url: string
  status: number
  text: string
}

let defaultDispatcher: Dispatcher | undefined

/**
 * The registry endpoints a process talks to (one, or several replicas of the same state)
 * and the failover policy, shared by every registry client of the process: the watch, the
 * router's reports, an instance's heartbeats, the CLI's calls.
 *
 * Calls go to the current endpoint and stay there while it works. When it cannot answer
 * (connection failure, timeout, 5xx) the next in the list becomes current for every
 * client, and the call is tried there at once; once every endpoint failed in a row, the
 * next round waits a full-jitter exponential backoff (core/backoff.ts). A 4xx is an
 * answer: every replica would give the same one.
 */
export class RegistryEndpoints {
  readonly urls: readonly string[]
  private readonly policy: BackoffPolicy
  private readonly rounds: number
  private readonly random: () => number
  private readonly dispatcher: Dispatcher
  private readonly onSwitch: RegistryEndpointsOptions['onSwitch']
  private index = 0

  /** `urls`: one URL or several comma-separated (checked: a bad one is named), or a list. */
  constructor(urls: string | readonly string[], options: RegistryEndpointsOptions = {}) {
    this.urls = parseRegistryUrls(typeof urls === 'string' ? urls : urls.join(','))
    this.policy = { initialMs: options.initialBackoffMs ?? 100, maxMs: options.maxBackoffMs ?? 2_000 }
    this.rounds = options.rounds ?? 2
    this.random = options.random ?? Math.random
    this.onSwitch = options.onSwitch
    this.dispatcher =
      options.dispatcher ??
      (options.connectTimeoutMs === undefined ? (defaultDispatcher ??= new Agent({ connect: { timeout: 3_000 } })) : new Agent({ connect: { timeout: options.connectTimeoutMs } }))
  }

  /** Endpoints given as such are shared; URLs get endpoints of their own. */
  static from(value: string | RegistryEndpoints, options?: RegistryEndpointsOptions): RegistryEndpoints {
    return value instanceof RegistryEndpoints ? value : new RegistryEndpoints(value, options)
  }

  get current(): string {
    return this.urls[this.index] as string
  }

  /** For connections a caller makes itself (the watch stream). */
  get agent(): Dispatcher {
    return this.dispatcher
  }

  /**
   * `url` could not answer: the next endpoint becomes current, unless a concurrent caller
   * already moved on from it (two failures of one endpoint skip it once, not twice).
   */
  failed(url: string, reason: string): void {
    if (url !== this.current || this.urls.length === 1) return
    this.index = (this.index + 1) % this.urls.length
    this.onSwitch?.(url, this.current, reason)
  }

  /** The wait before the next try after `failures` tries in a row failed. */
  delayAfter(failures: number): number {
    return failoverDelay(failures, this.urls.length, this.policy, this.random)
  }

  /**
   * One call with failover. Resolves with the answer (2xx, 4xx, or the last 5xx once no
   * endpoint did better, or a 5xx to a call that must not be repeated); rejects with
   * status 0 when no endpoint answered: REGISTRY_UNREACHABLE, or REGISTRY_OUTCOME_UNKNOWN
   * for a non-idempotent call whose request may have arrived.
   */
  async send(call: RegistryCall): Promise<RegistryAnswer> {
    const idempotent = call.idempotent ?? (call.method === 'GET' || call.method === 'HEAD')
    const tries = (call.rounds ?? this.rounds) * this.urls.length
    const reasons = new Map<string, string>()
    let last5xx: RegistryAnswer | undefined
    for (let failures = 1; ; failures++) {
      const url = this.current
      let outcome: TryOutcome
      let answer: RegistryAnswer | undefined
      let reason: string
      try {
        const response = await request(`${url}${call.path}`, {
          method: call.method,
          headers: call.headers ?? {},
          body: call.body ?? null,
          headersTimeout: call.timeoutMs,
          bodyTimeout: call.timeoutMs,
          dispatcher: this.dispatcher
        })
        answer = { url, status: response.statusCode, text: await response.body.text() }
        outcome = { kind: 'answered', status: answer.status }
        reason = `answered ${answer.status}`
      } catch (error) {
        outcome = outcomeOfError((error as { code?: string }).code)
        reason = (error as Error).message
      }
      const verdict = failoverVerdict(outcome, idempotent)
      if (verdict === 'done') return answer as RegistryAnswer
      if (answer) last5xx = answer
      reasons.set(url, reason)
      if (verdict === 'fail') {
        if (answer) return answer
        throw new RegistryRequestError(
          0,
          'REGISTRY_OUTCOME_UNKNOWN',
          `no answer from the registry at ${url} (${reason}); the ${call.method} may or may not have been applied: read the state before repeating it`
        )
      }
      this.failed(url, reason)
      if (failures >= tries) {
        if (last5xx) return last5xx
        throw new RegistryRequestError(0, 'REGISTRY_UNREACHABLE', `cannot reach the registry at ${[...reasons].map(([where, why]) => `${where} (${why})`).join(', ')}`)
      }
      const delay = this.delayAfter(failures)
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
    }
  }
}
