import { createParser } from 'eventsource-parser'
import { request, type Dispatcher } from 'undici'
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
 * and full jitter, resumes from the last revision it saw (`since`), and treats a silent
 * stream as dead. Consumers keep what they have while it is disconnected.
 */
export class RegistryWatcher {
  private readonly options: Required<Omit<RegistryWatcherOptions, 'token' | 'dispatcher' | 'since'>> & Pick<RegistryWatcherOptions, 'token' | 'dispatcher' | 'since'>
  private lastRevision: number | undefined
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
      const ceiling = Math.min(this.options.maxBackoffMs, this.options.initialBackoffMs * 2 ** Math.min(this.attempt, 16))
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
    if (this.lastRevision !== undefined) url.searchParams.set('since', String(this.lastRevision))
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
          try {
            if (event.event === 'snapshot') {
              const snapshot = JSON.parse(event.data) as RegistrySnapshot
              this.lastRevision = snapshot.revision
              this.markConnected()
              this.options.handlers.onSnapshot(snapshot)
            } else if (event.event === 'change') {
              const change = JSON.parse(event.data) as RegistryChange
              if (this.lastRevision !== undefined && change.revision <= this.lastRevision) return
              this.lastRevision = change.revision
              this.markConnected()
              this.options.handlers.onChange(change)
            } else if (event.event === 'heartbeat') {
              this.markConnected()
            }
          } catch (error) {
            handlerError = error as Error
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

  private markConnected(): void {
    this.attempt = 0
    if (!this.connected) {
      this.connected = true
      this.options.handlers.onConnectionChange?.('connected')
    }
  }
}
