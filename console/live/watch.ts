/**
 * GET /v1/watch read with fetch, not EventSource: EventSource cannot send an Authorization
 * header, and the token must not go in the URL. Reconnects on its own with `since` (the
 * last event id), as the registry expects, after the `retry` it was told (1 s).
 */
import { createParser } from 'eventsource-parser'
import type { RegistryChange, RegistrySnapshot } from '../../core/registry-events.js'

export type WatchEvent = { kind: 'snapshot'; snapshot: RegistrySnapshot } | { kind: 'change'; change: RegistryChange } | { kind: 'heartbeat'; revision: number }

export interface WatchOptions {
  token: string
  /** resume after this revision (the registry sends what was missed, or a snapshot) */
  since: number | undefined
  onEvents: (events: WatchEvent[]) => void
  onState: (state: 'live' | 'reconnecting') => void
  onUnauthorized: () => void
}

export function watchRegistry(options: WatchOptions): { close(): void } {
  let closed = false
  let since = options.since
  let retryMs = 1000
  let controller: AbortController | undefined

  const connect = async () => {
    controller = new AbortController()
    const headers: Record<string, string> = { authorization: `Bearer ${options.token}`, accept: 'text/event-stream' }
    if (since !== undefined) headers['last-event-id'] = String(since)
    const response = await fetch(since === undefined ? '/v1/watch' : `/v1/watch?since=${since}`, { headers, cache: 'no-store', credentials: 'omit', signal: controller.signal })
    if (response.status === 401) {
      closed = true
      options.onUnauthorized()
      return
    }
    if (!response.ok || !response.body) throw new Error(`watch answered ${response.status}`)
    options.onState('live')
    // Events of one network chunk are handed over together: one model update, one render.
    let batch: WatchEvent[] = []
    const parser = createParser({
      onRetry: (ms) => (retryMs = Math.min(Math.max(ms, 250), 30_000)),
      onEvent: (event) => {
        if (event.event === 'snapshot') {
          const snapshot = JSON.parse(event.data) as RegistrySnapshot
          since = snapshot.revision
          batch.push({ kind: 'snapshot', snapshot })
        } else if (event.event === 'change') {
          const change = JSON.parse(event.data) as RegistryChange
          since = change.revision
          batch.push({ kind: 'change', change })
        } else if (event.event === 'heartbeat') {
          batch.push({ kind: 'heartbeat', revision: (JSON.parse(event.data) as { revision: number }).revision })
        }
      }
    })
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      parser.feed(value)
      if (batch.length > 0) {
        const events = batch
        batch = []
        options.onEvents(events)
      }
    }
  }

  const run = async () => {
    while (!closed) {
      try {
        await connect()
      } catch {
        // network error, registry restart, stream cut as too slow: resume with since
      }
      if (closed) return
      options.onState('reconnecting')
      await new Promise((resolve) => setTimeout(resolve, retryMs))
    }
  }
  void run()
  return {
    close() {
      closed = true
      controller?.abort()
    }
  }
}
