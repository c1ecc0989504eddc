import type { RegistryChange, RegistrySnapshot } from '../../core/registry-events.js'
import type { WatchHandlers } from '../../registry/client/watch-client.js'
import type { EndpointCatalog, SharedEjection } from '../upstream/endpoint.js'
import type { SignalCounters, ToPrimary } from './messages.js'

/** What the router's signal reporter does, as a worker's stand-in for it does it too. */
export interface Reporter {
  start(): void
  /** a new table is in force */
  applied(): void
  /** report now (the last one, on close) */
  report(): void
  stop(): Promise<void>
}

/**
 * What a worker's router (startRouter in router/server.ts) gets from its primary instead
 * of a registry watch, an admin listener and a signal reporter of its own: the primary
 * watches, serves the admin port and reports for the whole router.
 */
export interface PrimaryLink {
  /** the registry's snapshot and changes, as the primary's watch received them */
  feed: (handlers: WatchHandlers) => { start(): void; stop(): void }
  /** the primary's admin URL (log lines) */
  adminUrl: string
  /** tells the primary, instead of the registry, what this worker applied and counted */
  reporter(source: { counters: () => SignalCounters; appliedRevision: () => number }): Reporter
  /** this worker's ejections go to the router's other workers, and theirs come to `catalog` */
  shareEjections(catalog: EndpointCatalog): void
}

type Delivery = { snapshot: RegistrySnapshot } | { change: RegistryChange }

/**
 * The worker's end of the link. Snapshots and changes that arrive before the table
 * source starts are kept and handed over, in order, when it does.
 */
export class PrimaryChannel implements PrimaryLink {
  private handlers: WatchHandlers | undefined
  private readonly pending: Delivery[] = []
  private flowing = false
  private catalog: EndpointCatalog | undefined

  constructor(
    readonly adminUrl: string,
    private readonly reportIntervalMs: number,
    private readonly send: (message: ToPrimary) => void
  ) {}

  readonly feed = (handlers: WatchHandlers) => {
    this.handlers = handlers
    return {
      start: () => {
        this.flowing = true
        for (const delivery of this.pending.splice(0)) this.hand(delivery)
      },
      stop: () => {
        this.flowing = false
      }
    }
  }

  deliver(delivery: Delivery): void {
    if (this.flowing) this.hand(delivery)
    else this.pending.push(delivery)
  }

  reporter(source: { counters: () => SignalCounters; appliedRevision: () => number }): Reporter {
    return new PrimaryReporter(source, this.reportIntervalMs, this.send)
  }

  shareEjections(catalog: EndpointCatalog): void {
    this.catalog = catalog
    catalog.onEjected = (ejection) => this.send({ kind: 'switchyard:ejected', ejection })
  }

  /** Another worker's ejection, from the primary. */
  adoptEjection(ejection: SharedEjection): void {
    this.catalog?.adopt(ejection)
  }

  private hand(delivery: Delivery): void {
    // A change that does not apply (a gap) throws out of here: the worker cannot route on a
    // table it cannot trust, so it exits and the primary starts another from a fresh snapshot.
    if ('snapshot' in delivery) this.handlers?.onSnapshot(delivery.snapshot)
    else this.handlers?.onChange(delivery.change)
  }
}

/** The signal reporter's schedule (every interval, at once after a new table), sent to the primary. */
class PrimaryReporter implements Reporter {
  private timer: NodeJS.Timeout | undefined
  private stopped = false
  /** a table is in force (applied() is called for each, the first included) */
  private ready = false

  constructor(
    private readonly source: { counters: () => SignalCounters; appliedRevision: () => number },
    private readonly intervalMs: number,
    private readonly send: (message: ToPrimary) => void
  ) {}

  start(): void {
    if (this.timer) return
    this.timer = setInterval(() => this.report(), this.intervalMs)
    this.timer.unref()
    this.report()
  }

  applied(): void {
    this.ready = true
    this.report()
  }

  report(): void {
    if (this.stopped) return
    this.send({ kind: 'switchyard:report', appliedRevision: this.source.appliedRevision(), ready: this.ready, counters: this.source.counters() })
  }

  stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    return Promise.resolve()
  }
}
