import { readFileSync } from 'node:fs'
import { Agent, request, type Dispatcher } from 'undici'
import { JsonObjectSplitter } from './etcd-json-stream.js'
import { EtcdError, verdictOfAnswer, verdictOfTransportError, type FailureVerdict } from './etcd-errors.js'

/** PEM files for https endpoints: the CA that signed etcd's certificate, and a client certificate when etcd asks for one. */
export interface EtcdTlsFiles {
  caFile?: string
  certFile?: string
  keyFile?: string
}

export interface EtcdCredentials {
  user: string
  password: string
}

export interface EtcdTransportOptions {
  /** client URLs of the members, http:// or https://, without credentials */
  endpoints: readonly string[]
  /** one call's whole budget, across attempts and endpoints (default 5,000 ms) */
  timeoutMs?: number
  /** one attempt at one endpoint (default 2,000 ms): a hung member costs this much, not the whole budget */
  attemptTimeoutMs?: number
  tls?: EtcdTlsFiles
  /** etcd's user/password auth: a token from /v3/auth/authenticate in every request's Authorization header */
  auth?: EtcdCredentials
  /** after every endpoint failed once, wait a full-jitter delay growing from initialMs to maxMs before the next round */
  backoff?: { initialMs: number; maxMs: number }
  /** [0, 1), for the jitter */
  random?: () => number
}

export interface CallOptions {
  /** a write that failed with an unknown outcome is not tried again (another member may already have applied it) */
  write: boolean
  /** overrides the client's timeoutMs for this call */
  timeoutMs?: number
  /** ask this endpoint only (no failover), e.g. for its own status */
  endpoint?: number
  signal?: AbortSignal
}

export interface OpenStream {
  endpoint: string
  index: number
  /** the token the stream was opened with, to report it if etcd says it is invalid */
  token: string | undefined
  body: Dispatcher.ResponseData['body']
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
  })

/** Thrown by `authenticate` when the endpoint could not be asked: never a reason to doubt a write, which was not sent. */
class AuthenticateUnreachable extends Error {}

/**
 * Requests to etcd's HTTP/JSON gateway with failover. Calls go to one endpoint until it
 * fails; then to the next, without waiting while the round has endpoints not yet tried,
 * and with growing full-jitter backoff between rounds, until the call's deadline:
 * ETCD_UNAVAILABLE. Every request asks etcd to refuse it at once when the member has no
 * leader (gRPC metadata `hasleader`, as clientv3's WithRequireLeader), so a partitioned
 * member answers "no leader" instead of holding the request until it times out.
 */
export class EtcdTransport {
  readonly endpoints: readonly string[]
  readonly timeoutMs: number
  readonly attemptTimeoutMs: number
  private readonly dispatcher: Agent
  private readonly auth: EtcdCredentials | undefined
  private readonly backoff: { initialMs: number; maxMs: number }
  private readonly random: () => number
  private current = 0
  private token: string | undefined
  private authenticating: Promise<string | undefined> | undefined
  /** etcd answered that auth is not enabled: send no token until it says otherwise */
  private authDisabled = false
  private closed = false

  constructor(options: EtcdTransportOptions) {
    if (options.endpoints.length === 0) throw new EtcdError('ETCD_REQUEST_FAILED', 'no etcd endpoint given')
    this.endpoints = options.endpoints.map((endpoint, index) => {
      let url: URL
      try {
        url = new URL(endpoint)
      } catch {
        throw new EtcdError('ETCD_REQUEST_FAILED', `etcd endpoint #${index + 1} is not a URL`)
      }
      // the URL would end up in error messages and logs: credentials go in `auth`
      if (url.username || url.password)
        throw new EtcdError('ETCD_REQUEST_FAILED', `etcd endpoint #${index + 1} carries credentials: give them as the etcd user and password instead`)
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new EtcdError('ETCD_REQUEST_FAILED', `etcd endpoint ${url.origin} is neither http nor https`)
      return url.origin
    })
    this.timeoutMs = options.timeoutMs ?? 5_000
    this.attemptTimeoutMs = Math.min(options.attemptTimeoutMs ?? 2_000, this.timeoutMs)
    this.auth = options.auth
    this.backoff = options.backoff ?? { initialMs: 50, maxMs: 500 }
    this.random = options.random ?? Math.random
    const tls = options.tls
    const read = (file: string | undefined, what: string) => {
      if (!file) return undefined
      try {
        return readFileSync(file)
      } catch (error) {
        throw new EtcdError('ETCD_REQUEST_FAILED', `cannot read the etcd TLS ${what} file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`)
      }
    }
    this.dispatcher = new Agent({
      connect: { timeout: this.attemptTimeoutMs, ca: read(tls?.caFile, 'CA'), cert: read(tls?.certFile, 'certificate'), key: read(tls?.keyFile, 'key') },
      keepAliveTimeout: 30_000
    })
  }

  /** One call: JSON in, JSON out, with failover as the class says. */
  async call<T>(path: string, body: unknown, options: CallOptions): Promise<T> {
    const response = await this.attempts(path, body, options, false)
    return response as T
  }

  /** Opens a streaming call (watch) at the first endpoint that takes it; the caller reads and closes the body. */
  async stream(path: string, body: unknown, options: { timeoutMs?: number; signal?: AbortSignal }): Promise<OpenStream> {
    return (await this.attempts(path, body, { write: false, ...options }, true)) as OpenStream
  }

  /** a stream's endpoint failed: the next call starts at the next one */
  endpointFailed(index: number): void {
    if (this.current === index) this.current = (index + 1) % this.endpoints.length
  }

  /** etcd said `token` is not valid (any more): the next request authenticates again */
  tokenRejected(token: string | undefined): void {
    if (token !== undefined && this.token === token) this.token = undefined
    if (token === undefined) this.authDisabled = false
  }

  /** where the next call goes first */
  get currentEndpoint(): string {
    return this.endpoints[this.current] as string
  }

  get authConfigured(): boolean {
    return this.auth !== undefined
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.dispatcher.destroy()
  }

  private async attempts(path: string, body: unknown, options: CallOptions, stream: boolean): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs
    const deadline = Date.now() + timeoutMs
    const payload = JSON.stringify(body)
    let failures = 0
    let reauthenticated = false
    let last = 'not tried'
    for (;;) {
      if (this.closed) throw new EtcdError('ETCD_UNAVAILABLE', 'the etcd client is closed')
      if (options.signal?.aborted) throw new EtcdError('ETCD_UNAVAILABLE', `${path} aborted`)
      const index = options.endpoint ?? this.current
      const endpoint = this.endpoints[index] as string
      const remaining = deadline - Date.now()
      if (remaining <= 0) break
      const attemptMs = Math.min(this.attemptTimeoutMs, remaining)
      let verdict: FailureVerdict
      let token: string | undefined
      try {
        token = await this.tokenFor(endpoint, attemptMs)
        const answer = await this.attempt(endpoint, path, payload, token, attemptMs, stream, options.signal).catch((error: unknown) => ({
          ok: false as const,
          verdict: verdictOfTransportError(error)
        }))
        if (answer.ok) return stream ? { endpoint, index, token, body: answer.value } : answer.value
        verdict = answer.verdict
      } catch (error) {
        if (!(error instanceof AuthenticateUnreachable)) throw error
        verdict = { action: 'retry', reason: `authenticating: ${error.message}` }
      }
      last = `${endpoint}: ${verdict.reason}`
      if (verdict.action === 'fail') throw new EtcdError(verdict.code, `etcd at ${endpoint} refused ${path}: ${verdict.reason}`, { grpcCode: verdict.grpcCode })
      if (verdict.action === 'reauthenticate') {
        if (!this.auth) throw new EtcdError('ETCD_AUTH_FAILED', `etcd at ${endpoint} requires authentication (${verdict.reason}): configure the etcd user and password`)
        if (reauthenticated) throw new EtcdError('ETCD_AUTH_FAILED', `etcd at ${endpoint} refused a fresh token: ${verdict.reason}`)
        reauthenticated = true
        this.tokenRejected(token)
        continue
      }
      if (options.endpoint === undefined) this.endpointFailed(index)
      if (verdict.action === 'unknown' && options.write)
        throw new EtcdError('ETCD_UNAVAILABLE', `etcd at ${endpoint} did not answer ${path} (${verdict.reason}); the write may or may not have been applied`, {
          outcomeUnknown: true
        })
      failures++
      const rounds = options.endpoint === undefined ? this.endpoints.length : 1
      const delay = failures % rounds === 0 ? Math.floor(this.random() * Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** (failures / rounds - 1))) : 0
      if (Date.now() + delay >= deadline) break
      if (delay > 0) await sleep(delay, options.signal)
    }
    throw new EtcdError('ETCD_UNAVAILABLE', `etcd unavailable: ${path} failed at every endpoint for ${timeoutMs} ms (last: ${last})`)
  }

  private async attempt(
    endpoint: string,
    path: string,
    payload: string,
    token: string | undefined,
    attemptMs: number,
    stream: boolean,
    signal: AbortSignal | undefined
  ): Promise<{ ok: true; value: unknown } | { ok: false; verdict: FailureVerdict }> {
    // aborts the attempt at its deadline or when the caller gives up; a stream, once open, is the caller's to end
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(new Error(`no answer within ${attemptMs} ms`)), attemptMs)
    const forward = () => controller.abort(signal?.reason)
    signal?.addEventListener('abort', forward, { once: true })
    let open = false
    try {
      const response = await request(`${endpoint}${path}`, {
        method: 'POST',
        dispatcher: this.dispatcher,
        headers: { 'content-type': 'application/json', 'grpc-metadata-hasleader': 'true', ...(token ? { authorization: token } : {}) },
        body: payload,
        signal: controller.signal,
        headersTimeout: attemptMs,
        bodyTimeout: stream ? 0 : attemptMs
      })
      if (response.statusCode === 200 && stream) {
        open = true
        return { ok: true, value: response.body }
      }
      return await this.answerOf(response)
    } finally {
      clearTimeout(timer)
      if (!open) signal?.removeEventListener('abort', forward)
    }
  }

  private async answerOf(response: Dispatcher.ResponseData): Promise<{ ok: true; value: unknown } | { ok: false; verdict: FailureVerdict }> {
    const text = await response.body.text()
    // a streaming call (lease keepalive) answers one object per request, newline-delimited: the first is the answer
    if (response.statusCode === 200) return { ok: true, value: new JsonObjectSplitter().push(text)[0] }
    let parsed: { code?: number; message?: string } | undefined
    try {
      parsed = JSON.parse(text) as { code?: number; message?: string }
    } catch {
      parsed = undefined
    }
    return { ok: false, verdict: verdictOfAnswer(response.statusCode, parsed) }
  }

  /** The token to send to `endpoint`, authenticating first when there is none (one authentication at a time). */
  private async tokenFor(endpoint: string, attemptMs: number): Promise<string | undefined> {
    if (!this.auth || this.authDisabled) return undefined
    if (this.token) return this.token
    this.authenticating ??= this.authenticate(endpoint, this.auth, attemptMs).finally(() => (this.authenticating = undefined))
    return this.authenticating
  }

  private async authenticate(endpoint: string, auth: EtcdCredentials, attemptMs: number): Promise<string | undefined> {
    let answer: { ok: true; value: unknown } | { ok: false; verdict: FailureVerdict }
    try {
      answer = await this.attempt(endpoint, '/v3/auth/authenticate', JSON.stringify({ name: auth.user, password: auth.password }), undefined, attemptMs, false, undefined)
    } catch (error) {
      throw new AuthenticateUnreachable(verdictOfTransportError(error).reason)
    }
    if (answer.ok) {
      const token = (answer.value as { token?: string }).token
      if (!token) throw new EtcdError('ETCD_AUTH_FAILED', `etcd at ${endpoint} answered authenticate without a token`)
      this.token = token
      return token
    }
    const { verdict } = answer
    if (verdict.reason.includes('authentication is not enabled')) {
      this.authDisabled = true
      return undefined
    }
    if (verdict.action === 'fail') throw new EtcdError('ETCD_AUTH_FAILED', `etcd at ${endpoint} refused to authenticate user ${auth.user}: ${verdict.reason}`)
    throw new AuthenticateUnreachable(verdict.reason)
  }
}
