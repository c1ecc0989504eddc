import { createParser, type EventSourceMessage } from 'eventsource-parser'
import { request, type Dispatcher } from 'undici'
import { SwitchyardError } from '../../core/errors.js'
import type { RegistryChange, RegistrySnapshot } from '../../core/registry-events.js'

export interface WatchHandlers {
  onSnapshot(snapshot: RegistrySnapshot): void
  onChange(change: RegistryChange): void
  /** called once per transition, never per attempt, so callers can log calmly */
  onConnectionChange?(state: 'connected' | 'disconnected', error?: Error): void
}

export interface RegistryWatcherOptions {
  url: string
  token?: string | undefined
  handlers: WatchHandlers
  /** no bytes for this long (heartbeats included) means the stream is dead */
  idleTimeoutMs?: number
  initialBackoffMs?: number
  maxBackoffMs?: number
  /** [0, 1) source for reconnect jitter */
  random?: () => number
  dispatcher?: Dispatcher
  /** resume after this revision instead of starting with a snapshot */
  since?: number
}

/**
 * Follows `GET /v1/watch` for as long as it runs: reconnects with exponential backoff
 * and full jitter, resumes after the last revision its handlers applied (`since`), and
 * treats a silent stream as dead. Consumers keep what they have while it is disconnected.
 *
 * A revision counts as seen only once its handler returned. When a handler throws, or a
 * change does not follow the last one applied, the consumer's state is no longer the
 * registry's at any revision: the watcher drops the stream and reconnects without
 * `since`, so the registry starts it with a snapshot.
 */
export class RegistryWatcher {
  private readonly options: Required<Omit<RegistryWatcherOptions, 'token' | 'dispatcher' | 'since'>> & Pick<RegistryWatcherOptions, 'token' | 'dispatcher' | 'since'>
  /** the last revision the handlers applied */
  private lastRevision: number | undefined
  /** the next connection asks for a snapshot instead of resuming */
  private resync = false
  /** failed applies since a change last applied, so a handler that keeps failing backs off */
  private failedApplies = 0
  private abort: AbortController | undefined
  private running = false
  private connected = false
  private attempt = 0
  private retryTimer: NodeJS.Timeout | undefined
  private wake: (() => void) | undefined

  constructor(options: RegistryWatcherOptions) {
    this.options = { idleTimeoutMs: 45_000, initialBackoffMs: 200, maxBackoffMs: 10_000, random: Math.random, ...options }
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

  private async loop(): Promise<void> {
    while (this.running) {
      let failure: Error | undefined
      try {
        await this.follow()
        failure = new Error('the registry closed the watch stream')
      } catch (error) {
        failure = error as Error
      }
      if (!this.running) break
      if (this.connected) {
        this.connected = false
        this.options.handlers.onConnectionChange?.('disconnected', failure)
      } else if (this.attempt === 0) {
        this.options.handlers.onConnectionChange?.('disconnected', failure)
      }
      const ceiling = Math.min(this.options.maxBackoffMs, this.options.initialBackoffMs * 2 ** Math.min(this.attempt + this.failedApplies, 16))
      this.attempt++
      await new Promise<void>((resolve) => {
        this.wake = resolve
        this.retryTimer = setTimeout(resolve, Math.floor(this.options.random() * ceiling))
      })
    }
  }

  private async follow(): Promise<void> {
    const abort = new AbortController()
    this.abort = abort
    const url = new URL('/v1/watch', this.options.url)
    if (this.lastRevision !== undefined && !this.resync) url.searchParams.set('since', String(this.lastRevision))
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
        ...(this.options.dispatcher ? { dispatcher: this.options.dispatcher } : {})
      })
      if (response.statusCode !== 200) {
        const text = await response.body.text()
        throw new Error(`watch answered ${response.statusCode}: ${text.slice(0, 200)}`)
      }
      let handlerError: Error | undefined
      const parser = createParser({
        onEvent: (event) => {
          // Events after a failure (same chunk) are not applied: the snapshot will hold them.
          if (handlerError) return
          try {
            this.handle(event)
          } catch (error) {
            handlerError = error as Error
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
      this.markConnected()
      this.options.handlers.onSnapshot(snapshot)
      this.lastRevision = snapshot.revision
      this.resync = false
    } else if (event.event === 'change') {
      const change = JSON.parse(event.data) as RegistryChange
      const last = this.lastRevision
      // A resumed stream may repeat what was already applied.
      if (last !== undefined && change.revision <= last) return
      this.markConnected()
      if (last === undefined || change.revision !== last + 1) {
        throw new SwitchyardError('REVISION_GAP', `change at revision ${change.revision} does not follow revision ${last ?? '(none: no snapshot yet)'}`)
      }
      this.options.handlers.onChange(change)
      this.lastRevision = change.revision
      this.failedApplies = 0
    } else if (event.event === 'heartbeat') {
      this.markConnected()
    }
  }

  private markConnected(): void {
    this.attempt = 0
    if (!this.connected) {
      this.connected = true
      this.options.handlers.onConnectionChange?.('connected')
    }
  }
}
