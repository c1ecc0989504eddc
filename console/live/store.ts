/**
 * The console's live state: GET /v1/services once, then the watch stream from that
 * revision; rollouts from GET /v1/rollouts and the stream's rollout-changed events.
 * Listeners are told at most every 100 ms, so 50 registry changes a second cost the page
 * ten renders, each redrawing only the services that changed.
 */
import type { RolloutState } from '../../core/rollout/rollout-machine.js'
import { applyChange, fromRest, fromSnapshot, withHeartbeats, type RegistryView, type RestService, type RestServices } from '../lib/model.js'
import type { Api } from './api.js'
import { takePrefetched } from './prefetch.js'
import { watchRegistry, type WatchEvent } from './watch.js'

/** A rollout as GET /v1/services/:service/rollout shows it. */
export interface RolloutView extends RolloutState {
  step: number
  routersBehind: string[]
  nextDecisionInSeconds: number | null
}

export interface WeightsChange {
  revision: number
  at: number
  actor: string
}

export interface LiveState {
  /** the first GET /v1/services arrived */
  loaded: boolean
  connection: 'connecting' | 'live' | 'reconnecting' | 'failed'
  error: string | undefined
  view: RegistryView
  rollouts: ReadonlyMap<string, RolloutView>
  /** the last weight change seen per service since the page loaded */
  weightChanges: ReadonlyMap<string, WeightsChange>
  /** registry clock minus browser clock, ms */
  clockOffsetMs: number
  /** changes applied since the page loaded */
  changesSeen: number
}

const RENDER_INTERVAL_MS = 100

export class LiveStore {
  state: LiveState = {
    loaded: false,
    connection: 'connecting',
    error: undefined,
    view: { revision: 0, services: new Map() },
    rollouts: new Map(),
    weightChanges: new Map(),
    clockOffsetMs: 0,
    changesSeen: 0
  }
  private readonly listeners = new Set<() => void>()
  private timer: ReturnType<typeof setTimeout> | undefined
  private lastEmit = 0
  private watch: { close(): void } | undefined
  private readonly rolloutRefresh = new Map<string, ReturnType<typeof setTimeout>>()
  private stopped = false

  constructor(
    private readonly api: Api,
    private readonly onUnauthorized: () => void
  ) {}

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  async start(): Promise<void> {
    try {
      const rollouts = this.api.get<{ rollouts: RolloutView[] }>('/v1/rollouts')
      const services = await (takePrefetched(this.api.token)?.catch(() => undefined) ?? Promise.resolve(undefined)).then(
        (prefetched) => prefetched ?? this.api.get<RestServices>('/v1/services')
      )
      if (this.stopped) return
      // Marks for the performance test: answer parsed, view built (the page marks its render).
      performance.mark('console:services-parsed')
      const view = fromRest(services)
      performance.mark('console:view-built')
      // The services are the page: drawn as soon as they are here, rollouts when they come.
      this.set({ loaded: true, view }, true)
      const { rollouts: list } = await rollouts
      if (this.stopped) return
      this.set({ rollouts: new Map(list.map((rollout) => [rollout.service, rollout])) }, true)
      this.watch = watchRegistry({
        token: this.api.token,
        since: services.revision,
        onEvents: (events) => this.apply(events),
        onState: (connection) => this.set({ connection }),
        onUnauthorized: this.onUnauthorized
      })
    } catch (error) {
      this.set({ connection: 'failed', error: (error as Error).message }, true)
    }
  }

  stop(): void {
    this.stopped = true
    this.watch?.close()
    clearTimeout(this.timer)
    for (const timer of this.rolloutRefresh.values()) clearTimeout(timer)
  }

  /** Lease ages of one service, from a fresh GET (the stream carries no heartbeats). */
  heartbeats(rest: RestService): void {
    this.set({ view: withHeartbeats(this.state.view, rest) })
  }

  setClockOffset(offsetMs: number): void {
    // Date headers have whole seconds: follow the registry's clock, not the rounding.
    if (Math.abs(offsetMs - this.state.clockOffsetMs) > 1500) this.state = { ...this.state, clockOffsetMs: offsetMs }
  }

  rollout(rollout: RolloutView): void {
    const rollouts = new Map(this.state.rollouts)
    rollouts.set(rollout.service, rollout)
    this.set({ rollouts }, true)
  }

  /** Now on the registry's clock (ms). */
  now(): number {
    return Date.now() + this.state.clockOffsetMs
  }

  private apply(events: WatchEvent[]): void {
    let { view, rollouts, weightChanges, changesSeen } = this.state
    for (const event of events) {
      if (event.kind === 'snapshot') {
        view = fromSnapshot(event.snapshot, view)
        // rollouts are not in the snapshot: read them again
        void this.reloadRollouts()
      } else if (event.kind === 'change') {
        const { change } = event
        if (change.revision <= view.revision) continue
        view = applyChange(view, change)
        changesSeen++
        if (change.type === 'weights-changed') {
          const next = new Map(weightChanges)
          next.set(change.service, { revision: change.revision, at: change.at, actor: change.actor })
          weightChanges = next
        } else if (change.type === 'rollout-changed') {
          const previous = rollouts.get(change.service)
          const next = new Map(rollouts)
          next.set(change.service, {
            ...change.rollout,
            step: change.rollout.stepIndex + 1,
            routersBehind: previous?.routersBehind ?? [],
            nextDecisionInSeconds: previous?.nextDecisionInSeconds ?? null
          })
          rollouts = next
          this.refreshRollout(change.service)
        }
      }
    }
    this.set({ view, rollouts, weightChanges, changesSeen, connection: 'live' })
  }

  private async reloadRollouts(): Promise<void> {
    try {
      const { rollouts } = await this.api.get<{ rollouts: RolloutView[] }>('/v1/rollouts')
      this.set({ rollouts: new Map(rollouts.map((rollout) => [rollout.service, rollout])) })
    } catch {
      // the next rollout-changed event or snapshot tries again
    }
  }

  /** The figures only GET has (routers behind, next decision), shortly after a change. */
  private refreshRollout(service: string): void {
    if (this.rolloutRefresh.has(service)) return
    this.rolloutRefresh.set(
      service,
      setTimeout(() => {
        this.rolloutRefresh.delete(service)
        this.api.get<RolloutView>(`/v1/services/${encodeURIComponent(service)}/rollout`).then(
          (rollout) => this.rollout(rollout),
          () => {}
        )
      }, 150)
    )
  }

  private set(patch: Partial<LiveState>, now = false): void {
    this.state = { ...this.state, ...patch }
    if (now) {
      clearTimeout(this.timer)
      this.timer = undefined
      this.emit()
      return
    }
    if (this.timer !== undefined) return
    this.timer = setTimeout(
      () => {
        this.timer = undefined
        this.emit()
      },
      Math.max(0, this.lastEmit + RENDER_INTERVAL_MS - Date.now())
    )
  }

  private emit(): void {
    this.lastEmit = Date.now()
    for (const listener of this.listeners) listener()
  }
}
