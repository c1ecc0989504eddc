import { encodeBytes, parseHeader, parseInt64, parseKeyValue, prefixRangeEnd, toBytes, type EtcdBytes, type EtcdKeyValue, type RawHeader, type RawKeyValue } from './etcd-codec.js'
import type { EtcdClient, KeyRange } from './etcd-client.js'
import { EtcdError, isEtcdError } from './etcd-errors.js'
import { JsonObjectSplitter } from './etcd-json-stream.js'
import type { OpenStream } from './etcd-transport.js'

export interface EtcdWatchOptions extends KeyRange {
  key: EtcdBytes
  /**
   * The first revision to deliver. Absent: the revision after the current one, read with
   * a range first (the created answer's revision could already be past a write made
   * while the watch was being set up).
   */
  startRevision?: number
  prevKv?: boolean
  /** etcd sends empty progress batches on a quiet watch (every 10 min by default, --experimental-watch-progress-notify-interval) */
  progressNotify?: boolean
  /**
   * After the stream breaks (member gone, lost its leader, silent), open it again at the
   * next endpoint, from the next revision not delivered, for up to this long; then fail
   * with ETCD_UNAVAILABLE. 0: fail at the first break. Default 10,000 ms.
   */
  resumeTimeoutMs?: number
  /** a stream silent this long is checked by asking its member for its status (a paused member keeps its sockets open); default 10,000 ms */
  idleCheckMs?: number
  onConnectionChange?: (state: 'connected' | 'disconnected', detail: { endpoint: string; error?: EtcdError }) => void
}

export interface EtcdWatchEvent {
  type: 'PUT' | 'DELETE'
  /** a DELETE's kv has the key and its modRevision (the deletion's revision) only */
  kv: EtcdKeyValue
  prevKv: EtcdKeyValue | undefined
}

export interface EtcdWatchBatch {
  /** in revision order; etcd never splits one revision's events between batches */
  events: EtcdWatchEvent[]
  /** an empty batch etcd sent to say the watch is alive (progressNotify) */
  progress: boolean
  /** the answer's header revision: the store's revision when sent, possibly ahead of the events (not a resume point) */
  headerRevision: number
}

interface RawWatchResponse {
  result?: {
    header?: RawHeader
    created?: boolean
    canceled?: boolean
    compact_revision?: string
    cancel_reason?: string
    events?: { type?: 'PUT' | 'DELETE'; kv?: RawKeyValue; prev_kv?: RawKeyValue }[]
  }
  error?: { grpc_code?: number; http_code?: number; message?: string }
}

/** Why a stream ended, when it is worth opening another. */
class StreamBroken extends Error {}

const TOKEN_GONE = /invalid auth token|user name is empty|revision of auth store is old/
const AUTH_REFUSED = /permission denied|authentication failed/

/**
 * One etcd watch as an async iterable of batches: `for await (const batch of watch)`.
 *
 * It never skips a revision. Its resume point is the last delivered event's revision + 1
 * (`nextRevision`), moved by events only: not by the created answer, nor by header
 * revisions or progress notifications, which etcd 3.4 can send ahead of events it has
 * not delivered yet (etcd #15220, fixed in 3.4.25; the packaged one is 3.4.23). When the
 * stream breaks it opens another at the next endpoint from that revision, within
 * resumeTimeoutMs; otherwise the iteration throws ETCD_UNAVAILABLE with `resumeRevision`.
 * When etcd has compacted the history it needs, the iteration throws ETCD_COMPACTED with
 * `compactRevision`: the caller reads afresh, it is never resumed past a gap.
 */
export class EtcdWatch implements AsyncIterable<EtcdWatchBatch> {
  private readonly client: EtcdClient
  private readonly options: EtcdWatchOptions
  private next: number | undefined
  private closed = false
  private iterating = false
  private controller = new AbortController()

  constructor(client: EtcdClient, options: EtcdWatchOptions) {
    this.client = client
    this.options = options
    this.next = options.startRevision
  }

  /** the revision the watch would resume from: the last delivered event's + 1 (undefined before the start is known) */
  get nextRevision(): number | undefined {
    return this.next
  }

  /** Ends the watch: a pending or later `next()` finishes the iteration. */
  close(): void {
    this.closed = true
    this.controller.abort()
  }

  [Symbol.asyncIterator](): AsyncIterator<EtcdWatchBatch> {
    if (this.iterating) throw new Error('an EtcdWatch is iterated once')
    this.iterating = true
    return this.run()
  }

  private async *run(): AsyncGenerator<EtcdWatchBatch> {
    const transport = this.client.transport
    const resumeTimeoutMs = this.options.resumeTimeoutMs ?? 10_000
    if (this.next === undefined) {
      const { header } = await this.client.range(this.options.key, { ...this.rangeOf(), countOnly: true })
      this.next = header.revision + 1
    }
    let brokenSince: number | undefined
    let breaks = 0
    let authRetries = 0
    while (!this.closed) {
      const budget = brokenSince === undefined ? transport.timeoutMs : brokenSince + resumeTimeoutMs - Date.now()
      let stream: OpenStream
      try {
        stream = await transport.stream('/v3/watch', this.createRequest(this.next), { timeoutMs: Math.max(1, budget), signal: this.controller.signal })
      } catch (error) {
        if (this.closed) return
        if (isEtcdError(error) && error.code === 'ETCD_UNAVAILABLE') throw this.unavailable(error.message, error)
        throw error
      }
      let failure: EtcdError
      try {
        for await (const message of this.messages(stream)) {
          const result = message.result
          if (message.error || !result) throw new StreamBroken(message.error?.message ?? 'an answer without a result')
          const compactRevision = parseInt64(result.compact_revision, 'compact_revision')
          if (compactRevision > 0)
            throw new EtcdError('ETCD_COMPACTED', `etcd compacted its history up to revision ${compactRevision}; the watch needed revision ${this.next}`, {
              compactRevision,
              resumeRevision: this.next
            })
          if (result.canceled) {
            const reason = result.cancel_reason ?? 'no reason given'
            if (TOKEN_GONE.test(reason) && transport.authConfigured && authRetries++ < 2) {
              transport.tokenRejected(stream.token)
              throw new StreamBroken(reason)
            }
            if (TOKEN_GONE.test(reason) || AUTH_REFUSED.test(reason)) throw new EtcdError('ETCD_AUTH_FAILED', `etcd at ${stream.endpoint} refused the watch: ${reason}`)
            throw new StreamBroken(`etcd canceled the watch: ${reason}`)
          }
          if (result.created) {
            brokenSince = undefined
            breaks = 0
            authRetries = 0
            this.options.onConnectionChange?.('connected', { endpoint: stream.endpoint })
            continue
          }
          const events = (result.events ?? []).map((event) => ({
            type: event.type === 'DELETE' ? ('DELETE' as const) : ('PUT' as const),
            kv: parseKeyValue(event.kv ?? {}),
            prevKv: event.prev_kv ? parseKeyValue(event.prev_kv) : undefined
          }))
          for (const event of events)
            if (event.kv.modRevision < (this.next as number))
              throw new EtcdError('ETCD_REQUEST_FAILED', `etcd sent revision ${event.kv.modRevision} after the watch had reached ${this.next}`, { resumeRevision: this.next })
          const headerRevision = parseHeader(result.header).revision
          if (events.length > 0) this.next = (events[events.length - 1] as EtcdWatchEvent).kv.modRevision + 1
          yield { events, progress: events.length === 0, headerRevision }
          if (this.closed) return
        }
        failure = new EtcdError('ETCD_UNAVAILABLE', `etcd at ${stream.endpoint} ended the watch stream`)
      } catch (error) {
        if (this.closed) return
        if (isEtcdError(error)) throw error
        failure = new EtcdError('ETCD_UNAVAILABLE', `the watch stream from etcd at ${stream.endpoint} broke: ${(error as Error).message}`, { cause: error })
      } finally {
        stream.body.destroy()
      }
      if (this.closed) return
      transport.endpointFailed(stream.index)
      this.options.onConnectionChange?.('disconnected', { endpoint: stream.endpoint, error: failure })
      brokenSince ??= Date.now()
      if (resumeTimeoutMs === 0 || Date.now() - brokenSince >= resumeTimeoutMs) throw this.unavailable(failure.message, failure)
      // a stream that opens and breaks at once (a member without a leader) must not spin
      breaks++
      await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, 25 * 2 ** Math.min(breaks, 6))))
    }
  }

  private unavailable(message: string, cause: unknown): EtcdError {
    return new EtcdError('ETCD_UNAVAILABLE', `etcd watch lost: ${message}; resume from revision ${this.next}`, { resumeRevision: this.next, cause })
  }

  private rangeOf(): KeyRange {
    return { ...(this.options.prefix ? { prefix: true } : {}), ...(this.options.rangeEnd !== undefined ? { rangeEnd: this.options.rangeEnd } : {}) }
  }

  private createRequest(startRevision: number | undefined) {
    const end = this.options.prefix ? prefixRangeEnd(this.options.key) : this.options.rangeEnd === undefined ? undefined : toBytes(this.options.rangeEnd)
    return {
      create_request: {
        key: encodeBytes(this.options.key),
        ...(end ? { range_end: end.toString('base64') } : {}),
        start_revision: String(startRevision),
        ...(this.options.prevKv ? { prev_kv: true } : {}),
        ...(this.options.progressNotify ? { progress_notify: true } : {})
      }
    }
  }

  /** The stream's answers, parsed; a silent stream whose member does not answer its status either is broken off. */
  private async *messages(stream: OpenStream): AsyncGenerator<RawWatchResponse> {
    const splitter = new JsonObjectSplitter()
    const idleCheckMs = this.options.idleCheckMs ?? 10_000
    let lastData = Date.now()
    let checking = false
    const timer = setInterval(
      () => {
        if (checking || Date.now() - lastData < idleCheckMs) return
        checking = true
        void this.client
          .status({ endpoint: stream.index, timeoutMs: this.client.transport.attemptTimeoutMs })
          .then(
            (status) => {
              // alarms (e.g. NOSPACE) leave watches serving: only a lost leader breaks the stream
              if (status.leader === '0' || status.errors.some((error) => error.includes('no leader'))) stream.body.destroy(new StreamBroken('its member has no leader'))
              else lastData = Date.now()
            },
            (error: unknown) => stream.body.destroy(new StreamBroken(`silent for ${idleCheckMs} ms and its status failed: ${(error as Error).message}`))
          )
          .finally(() => (checking = false))
      },
      Math.max(50, Math.floor(idleCheckMs / 4))
    )
    try {
      for await (const chunk of stream.body) {
        lastData = Date.now()
        for (const message of splitter.push(chunk as Buffer)) yield message as RawWatchResponse
      }
    } finally {
      clearInterval(timer)
    }
  }
}
