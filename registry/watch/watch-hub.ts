import type { RegistryChange } from '../../core/registry-events.js'

export interface WatchSubscriber {
  /** receives each durable change in revision order */
  onChange(change: RegistryChange): void
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
