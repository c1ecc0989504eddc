import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { request, type Dispatcher } from 'undici'
import { failoverDelay, fullJitterDelay } from '../../core/backoff.js'
import { SwitchyardError } from '../../core/errors.js'
import { failoverVerdict, outcomeOfError, type TryOutcome } from '../../core/registry-failover.js'
import type { RegistryChange, RegistrySnapshot } from '../../core/registry-events.js'
import { RegistryEndpoints } from './registry-endpoints.js'

/** Where a stream came from and how it began. */
export interface WatchStreamInfo {
  /** the registry endpoint serving it */
  url: string
  /** the revision it resumed after (`since`), or undefined when it began with a snapshot */
  resumedAfter: number | undefined
}

export interface WatchHandlers {
  onSnapshot(snapshot: RegistrySnapshot): void
  onChange(change: RegistryChange): void
  /** called once per transition, never per attempt, so callers can log calmly; `stream` with 'connected' */
  onConnectionChange?(state: 'connected' | 'disconnected', error?: Error, stream?: WatchStreamInfo): void
}

export interface RegistryWatcherOptions {
  /** one URL, several replicas' comma-separated, or endpoints shared with the process's other registry clients */
  url: string | RegistryEndpoints
  token?: string | undefined
  handlers: WatchHandlers
  /** no bytes for this long (heartbeats included) means the stream is dead */
  idleTimeoutMs?: number
  /** first reconnect backoff ceiling (after every endpoint failed in a row); doubles per round */
  initialBackoffMs?: number
  maxBackoffMs?: number
  /** [0, 1) source for reconnect jitter */
  random?: () => number
  /** defaults to the endpoints' */
  dispatcher?: Dispatcher
  /** resume after this revision instead of starting with a snapshot */
  since?: number
}

/**
 * Follows `GET /v1/watch` for as long as it runs: reconnects with exponential backoff
 * and full jitter, resumes after the last revision its handlers applied (`since`), and
 * treats a silent stream as dead. Consumers keep what they have while it is disconnected.
 *
 * With several registry endpoints, a stream that fails (refused, 5xx, closed, silent)
 * moves the endpoints on and resumes at the next one with the same `since`: replicas
 * number revisions alike, so it is sent exactly what it missed, or a snapshot when that
 * replica no longer has the history. A 4xx, or a change the handlers could not apply, is
 * no replica's fault: the watcher stays and backs off.
 *
 * A revision counts as seen only once its handler returned. When a handler throws, or a
 * change does not follow the last one applied, the consumer's state is no longer the
 * registry's at any revision: the watcher drops the stream and reconnects without
 * `since`, so the registry starts it with a snapshot.
 */
export class RegistryWatcher {
  private readonly options: Required<Omit<RegistryWatcherOptions, 'url' | 'token' | 'dispatcher' | 'since'>> & Pick<RegistryWatcherOptions, 'token' | 'dispatcher' | 'since'>
  private readonly endpoints: RegistryEndpoints
  /** the last revision the handlers applied */
  private lastRevision: number | undefined
  /** the next connection asks for a snapshot instead of resuming */
  private resync = false
  /** failed applies since a change last applied, so a handler that keeps failing backs off */
  private failedApplies = 0
  private abort: AbortController | undefined
  private running = false
  private connected = false
  /** failed connections since the last stream that worked */
  private attempt = 0
  /** the stream being followed: where, and the `since` it asked for */
  private stream: { url: string; since: number | undefined } = { url: '', since: undefined }
  private retryTimer: NodeJS.Timeout | undefined
  private wake: (() => void) | undefined

  constructor(options: RegistryWatcherOptions) {
    const { url, ...rest } = options
    this.options = { idleTimeoutMs: 45_000, initialBackoffMs: 200, maxBackoffMs: 10_000, random: Math.random, ...rest }
    this.endpoints = RegistryEndpoints.from(url, {
      initialBackoffMs: this.options.initialBackoffMs,
      maxBackoffMs: this.options.maxBackoffMs,
      random: this.options.random
    })
    this.lastRevision = options.since
  }

  get revision(): number | undefined {
    return this.lastRevision
  }

  start(): void {
    if (this.running) return
    this.running = true
    void this.loop()
  }

  stop(): void {
    this.running = false
    this.abort?.abort()
    if (this.retryTimer) clearTimeout(this.retryTimer)
    this.wake?.()
  }

  /** the endpoint the next stream goes to (the current one while a stream is open) */
  get endpoint(): string {
    return this.endpoints.current
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const url = this.endpoints.current
      let failure: Error | undefined
      // A stream that ends or goes silent is the endpoint's failure, like a refused connection.
      let outcome: TryOutcome = { kind: 'lost' }
      let applyFailed = false
      try {
        await this.follow(url)
        failure = new Error('the registry closed the watch stream')
      } catch (error) {
        failure = error as Error
        if (error instanceof WatchRefused) outcome = { kind: 'answered', status: error.status }
        else if (error instanceof ApplyFailed) applyFailed = true
        else outcome = outcomeOfError((error as { code?: string }).code)
      }
      if (!this.running) break
      if (this.connected) {
        this.connected = false
        this.options.handlers.onConnectionChange?.('disconnected', failure)
      } else if (this.attempt === 0) {
        this.options.handlers.onConnectionChange?.('disconnected', failure)
      }
      this.attempt++
      // 'done' here is a 4xx: the same answer at every replica, so no reason to move.
      const stay = applyFailed || failoverVerdict(outcome, true) === 'done'
      if (!stay) this.endpoints.failed(url, failure.message)
      const policy = { initialMs: this.options.initialBackoffMs, maxMs: this.options.maxBackoffMs }
      // The watcher's own backoff, also with endpoints shared with quicker one-shot calls.
      const delay = stay
        ? fullJitterDelay(this.attempt - 1 + this.failedApplies, policy, this.options.random)
        : failoverDelay(this.attempt, this.endpoints.urls.length, policy, this.options.random)
      await new Promise<void>((resolve) => {
        this.wake = resolve
        this.retryTimer = setTimeout(resolve, delay)
      })
    }
  }

  private async follow(base: string): Promise<void> {
    const abort = new AbortController()
    this.abort = abort
    const url = new URL('/v1/watch', base)
    const since = this.lastRevision !== undefined && !this.resync ? this.lastRevision : undefined
    if (since !== undefined) url.searchParams.set('since', String(since))
    this.stream = { url: base, since }
    const headers: Record<string, string> = { accept: 'text/event-stream' }
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`
    let idle: NodeJS.Timeout | undefined
    const armIdle = () => {
      if (idle) clearTimeout(idle)
      idle = setTimeout(() => abort.abort(new Error(`no data from the registry for ${this.options.idleTimeoutMs} ms`)), this.options.idleTimeoutMs)
    }
    try {
      armIdle()
      const response = await request(url, {
        method: 'GET',
        headers,
        signal: abort.signal,
        bodyTimeout: 0,
        dispatcher: this.options.dispatcher ?? this.endpoints.agent
      })
      if (response.statusCode !== 200) {
        const text = await response.body.text()
        throw new WatchRefused(response.statusCode, `watch at ${base} answered ${response.statusCode}: ${text.slice(0, 200)}`)
      }
      let handlerError: Error | undefined
      const parser = createParser({
        onEvent: (event) => {
          // Events after a failure (same chunk) are not applied: the snapshot will hold them.
          if (handlerError) return
          try {
            this.handle(event)
          } catch (error) {
            handlerError = new ApplyFailed(error as Error)
            this.resync = true
            this.failedApplies++
            abort.abort(handlerError)
          }
        }
      })
      const decoder = new TextDecoder()
      for await (const chunk of response.body) {
        armIdle()
        parser.feed(decoder.decode(chunk as Buffer, { stream: true }))
        if (handlerError) throw handlerError
      }
    } finally {
      if (idle) clearTimeout(idle)
    }
  }

  private handle(event: EventSourceMessage): void {
    if (event.event === 'snapshot') {
      const snapshot = JSON.parse(event.data) as RegistrySnapshot
      this.markConnected(undefined)
      this.options.handlers.onSnapshot(snapshot)
      this.lastRevision = snapshot.revision
      this.resync = false
    } else if (event.event === 'change') {
      const change = JSON.parse(event.data) as RegistryChange
      const last = this.lastRevision
      // A resumed stream may repeat what was already applied.
      if (last !== undefined && change.revision <= last) return
      this.markConnected(this.stream.since)
      if (last === undefined || change.revision !== last + 1) {
        throw new SwitchyardError('REVISION_GAP', `change at revision ${change.revision} does not follow revision ${last ?? '(none: no snapshot yet)'}`)
      }
      this.options.handlers.onChange(change)
      this.lastRevision = change.revision
      this.failedApplies = 0
    } else if (event.event === 'heartbeat') {
      this.markConnected(this.stream.since)
    }
  }

  /** `resumedAfter`: the stream's `since`, unless its first event was a snapshot. */
  private markConnected(resumedAfter: number | undefined): void {
    this.attempt = 0
    if (!this.connected) {
      this.connected = true
      this.options.handlers.onConnectionChange?.('connected', undefined, { url: this.stream.url, resumedAfter })
    }
  }
}

/** The registry answered the watch with another status than 200. */
class WatchRefused extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message)
  }
}

/** A handler threw on an event: the consumer's fault or the history's, not the endpoint's. */
class ApplyFailed extends Error {
  constructor(cause: Error) {
    super(cause.message, { cause })
  }
}
