import type { RegistryChange, RegistrySnapshot } from '../../core/registry-events.js'
import { RegistryModel } from '../../core/registry-model.js'
import { buildTable, emptyTable, type RouteTable } from '../../core/route-table.js'
import type { RegistryEndpoints } from '../../registry/client/registry-endpoints.js'
import { RegistryWatcher, type WatchHandlers, type WatchStreamInfo } from '../../registry/client/watch-client.js'
import type { InstanceRecord } from '../../core/registry-events.js'

export interface TableSourceOptions<E> {
  /** one URL, several replicas' comma-separated, or endpoints shared with the router's reporter */
  registryUrl: string | RegistryEndpoints
  token?: string | undefined
  /** the router's object for an instance (reused while the instance stays the same) */
  endpointFor: (instance: InstanceRecord) => E
  /** an endpoint no route uses any more */
  retire?: (endpoint: E) => void
  onConnectionChange?: (state: 'connected' | 'disconnected', error?: Error, stream?: WatchStreamInfo) => void
  onApplied?: (table: RouteTable<E>) => void
  idleTimeoutMs?: number
  /**
   * Where snapshots and changes come from instead of a watch of its own: a router worker's
   * primary (router/workers/), which watches the registry once for all its workers.
   */
  feed?: (handlers: WatchHandlers) => { start(): void; stop(): void }
}

/**
 * Registry watch stream in, immutable routing tables out. Changes that arrive together
 * are applied together: one new table per batch, reusing the routes of services that
 * did not change. While the registry is away the last table stays in force.
 */
export class RouteTableSource<E> {
  table: RouteTable<E> = emptyTable()
  /** ms timestamp of the last applied update, 0 before the first */
  updatedAt = 0
  private model = new RegistryModel()
  private readonly watcher: { start(): void; stop(): void }
  private readonly options: TableSourceOptions<E>
  private pending: Set<string> | 'all' | undefined
  private readyResolvers: (() => void)[] = []

  constructor(options: TableSourceOptions<E>) {
    this.options = options
    const handlers: WatchHandlers = {
      onSnapshot: (snapshot) => this.onSnapshot(snapshot),
      onChange: (change) => this.onChange(change),
      ...(options.onConnectionChange ? { onConnectionChange: options.onConnectionChange } : {})
    }
    this.watcher = options.feed
      ? options.feed(handlers)
      : new RegistryWatcher({
          url: options.registryUrl,
          token: options.token,
          ...(options.idleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.idleTimeoutMs }),
          handlers
        })
  }

  get ready(): boolean {
    return this.updatedAt > 0
  }

  start(): void {
    this.watcher.start()
  }

  stop(): void {
    this.watcher.stop()
  }

  /** Resolves once the first snapshot is in force. */
  whenReady(): Promise<void> {
    if (this.ready) return Promise.resolve()
    return new Promise((resolve) => this.readyResolvers.push(resolve))
  }

  private onSnapshot(snapshot: RegistrySnapshot): void {
    this.model = RegistryModel.fromSnapshot(snapshot)
    this.schedule('all')
  }

  private onChange(change: RegistryChange): void {
    this.model.apply(change)
    // A rollout's own state changes no route: only the table's revision moves (rebuilding
    // the service's route would restart its smooth round-robin for nothing).
    if (change.type === 'rollout-changed') this.schedule(undefined)
    else this.schedule(change.type === 'instance-registered' ? change.instance.service : change.service)
  }

  /** `undefined`: no route changed, the next table only carries the new revision. */
  private schedule(service: string | 'all' | undefined): void {
    const first = this.pending === undefined
    if (service === 'all' || this.pending === 'all') this.pending = 'all'
    else if (this.pending === undefined) this.pending = new Set(service === undefined ? [] : [service])
    else if (service !== undefined) this.pending.add(service)
    if (first) queueMicrotask(() => this.rebuild())
  }

  private rebuild(): void {
    const changed = this.pending
    this.pending = undefined
    if (changed === undefined) return
    const previous = this.table
    const next = buildTable(this.model, this.options.endpointFor, previous, changed === 'all' ? undefined : changed)
    this.table = next
    this.updatedAt = Date.now()
    this.retireRemoved(previous, next)
    this.options.onApplied?.(next)
    for (const resolve of this.readyResolvers.splice(0)) resolve()
  }

  /** Endpoints no longer in any route get no new requests; their in-flight ones finish. */
  private retireRemoved(previous: RouteTable<E>, next: RouteTable<E>): void {
    const retire = this.options.retire
    if (!retire) return
    for (const [name, route] of previous.services) {
      const nextRoute = next.services.get(name)
      if (nextRoute === route) continue
      const kept = new Set<E>()
      for (const version of nextRoute?.versions ?? []) for (const endpoint of version.endpoints) kept.add(endpoint)
      for (const version of route.versions) for (const endpoint of version.endpoints) if (!kept.has(endpoint)) retire(endpoint)
    }
  }
}
