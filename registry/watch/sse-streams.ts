import type { ServerResponse } from 'node:http'
import type { RegistryChange } from '../../core/registry-events.js'
import type { Registry } from '../registry.js'

export interface WatchStreamOptions {
  /** how often an idle stream carries a heartbeat event, so both ends notice a dead peer */
  heartbeatMs: number
  /** a watcher this far behind is cut off; it reconnects with `since` and catches up */
  maxBufferedBytes: number
}

interface Stream {
  response: ServerResponse
  lastSent: number
  /** changes that arrived before the initial snapshot went out */
  backlog: RegistryChange[] | undefined
  unsubscribe: () => void
}

/**
 * Server-Sent Events for `GET /v1/watch`. A stream begins with either the changes the
 * watcher missed since `since` or a full snapshot, then carries every durable change in
 * revision order, with heartbeats in between.
 */
export class WatchStreams {
  private readonly streams = new Set<Stream>()
  private readonly timer: NodeJS.Timeout

  constructor(
    private readonly registry: Registry,
    private readonly options: WatchStreamOptions
  ) {
    this.timer = setInterval(() => this.heartbeat(), options.heartbeatMs)
    this.timer.unref()
  }

  get size(): number {
    return this.streams.size
  }

  async open(response: ServerResponse, since: number | undefined): Promise<void> {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no'
    })
    response.write(`retry: 1000\n\n`)
    const stream: Stream = { response, lastSent: since ?? -1, backlog: [], unsubscribe: () => {} }
    stream.unsubscribe = this.registry.hub.subscribe({
      onChange: (change) => this.deliver(stream, change),
      // The registry started over from a snapshot: the watcher reconnects and is sent one.
      onReset: () => stream.response.destroy()
    })
    this.streams.add(stream)
    response.on('close', () => this.drop(stream))

    const missed = since === undefined ? undefined : this.registry.hub.changesSince(since)
    if (missed) {
      for (const change of missed) this.send(stream, change)
    } else if (since !== undefined && since > this.registry.hub.publishedRevision && (await this.registry.knowsRevision(since))) {
      // A watcher coming from a replica that is ahead of this one: the changes after `since`
      // are on their way here; it is sent them as they arrive, never an older snapshot.
      if (response.destroyed) return
    } else {
      const snapshot = await this.registry.snapshot()
      if (response.destroyed) return
      stream.lastSent = snapshot.revision
      // `reason` tells a resuming watcher that its `since` could not be served (history trimmed, or another history).
      const reason = since === undefined ? 'initial' : 'history-unavailable'
      this.write(stream, `id: ${snapshot.revision}\nevent: snapshot\ndata: ${JSON.stringify({ ...snapshot, reason })}\n\n`)
    }
    const backlog = stream.backlog ?? []
    stream.backlog = undefined
    for (const change of backlog) this.send(stream, change)
    // Tells a watcher that resumed with nothing missed that it is caught up.
    this.write(stream, this.heartbeatEvent())
  }

  closeAll(): void {
    clearInterval(this.timer)
    for (const stream of this.streams) {
      stream.unsubscribe()
      stream.response.end()
    }
    this.streams.clear()
  }

  private deliver(stream: Stream, change: RegistryChange): void {
    if (stream.backlog) stream.backlog.push(change)
    else this.send(stream, change)
  }

  private send(stream: Stream, change: RegistryChange): void {
    if (change.revision <= stream.lastSent) return
    stream.lastSent = change.revision
    this.write(stream, `id: ${change.revision}\nevent: change\ndata: ${JSON.stringify(change)}\n\n`)
  }

  private heartbeat(): void {
    const line = this.heartbeatEvent()
    for (const stream of this.streams) if (!stream.backlog) this.write(stream, line)
  }

  private heartbeatEvent(): string {
    return `event: heartbeat\ndata: {"revision":${this.registry.hub.publishedRevision}}\n\n`
  }

  private write(stream: Stream, text: string): void {
    if (stream.response.destroyed) return
    stream.response.write(text)
    if (stream.response.writableLength > this.options.maxBufferedBytes) {
      // Too slow to keep up: cut it off rather than buffer without bound.
      stream.response.destroy()
    }
  }

  private drop(stream: Stream): void {
    stream.unsubscribe()
    this.streams.delete(stream)
  }
}
