import type { RegistryChange } from '../../core/registry-events.js'

export interface WatchSubscriber {
  /** receives each durable change in revision order */
  onChange(change: RegistryChange): void
  /** the registry started over from a snapshot (a shared store trimmed history it had not followed) */
  onReset?(revision: number): void
}

/**
 * Fans durable changes out to watchers and remembers the most recent ones, so a watcher
 * that reconnects with `since` is sent what it missed instead of a whole snapshot.
 */
export class WatchHub {
  private readonly capacity: number
  private readonly recent: RegistryChange[] = []
  private readonly subscribers = new Set<WatchSubscriber>()
  /** revision of the newest published change (or of the state the hub started from) */
  private published: number

  constructor(options: { capacity: number; startRevision: number }) {
    this.capacity = options.capacity
    this.published = options.startRevision
  }

  get size(): number {
    return this.subscribers.size
  }

  get publishedRevision(): number {
    return this.published
  }

  publish(change: RegistryChange): void {
    this.recent.push(change)
    if (this.recent.length > this.capacity) this.recent.splice(0, this.recent.length - this.capacity)
    this.published = change.revision
    for (const subscriber of this.subscribers) subscriber.onChange(change)
  }

  /**
   * Remembers changes published before this hub existed (the journal a restarted registry
   * replayed), so watchers that reconnect after a restart resume instead of re-reading a
   * snapshot. They must end at or before the published revision; a gap starts over.
   */
  prefill(changes: readonly RegistryChange[]): void {
    for (const change of changes) {
      if (change.revision > this.published) break
      const last = this.recent[this.recent.length - 1]
      if (last && change.revision !== last.revision + 1) this.recent.length = 0
      this.recent.push(change)
    }
    if (this.recent.length > this.capacity) this.recent.splice(0, this.recent.length - this.capacity)
  }

  /** Starts over at `revision` (with `recent` remembered); every subscriber is told, so it resends a snapshot. */
  reset(revision: number, recent: readonly RegistryChange[]): void {
    this.recent.length = 0
    this.published = revision
    this.prefill(recent)
    for (const subscriber of this.subscribers) subscriber.onReset?.(revision)
  }

  /**
   * The published changes after `since`, or undefined when they are no longer all
   * remembered (or `since` is from another history) and the watcher needs a snapshot.
   */
  changesSince(since: number): RegistryChange[] | undefined {
    if (since === this.published) return []
    if (since > this.published) return undefined
    const first = this.recent[0]
    if (!first || first.revision > since + 1) return undefined
    return this.recent.slice(since + 1 - first.revision)
  }

  subscribe(subscriber: WatchSubscriber): () => void {
    this.subscribers.add(subscriber)
    return () => this.subscribers.delete(subscriber)
  }
}
