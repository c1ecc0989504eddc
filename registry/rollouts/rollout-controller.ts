import { figuresOf, type VersionFigures } from '../../core/signals/figures.js'
import { emptyCounters } from '../../core/signals/counters.js'
import type { SignalBook } from '../../core/signals/signal-book.js'
import { decisionWindow, tickRollout, type RolloutState } from '../../core/rollout/rollout-machine.js'
import type { Registry } from '../registry.js'
import type { SignalSource } from '../signals/signal-source.js'

export interface RolloutControllerOptions {
  registry: Registry
  /** who has applied what: the routers' reports */
  routers: SignalBook
  signals: SignalSource
  clock: () => number
  /** how often active rollouts are looked at */
  tickMs: number
  /** the longest window the signal source keeps: an extended step judges its latest part */
  maxWindowMs: number
  log: { info(object: object, message: string): void; error(object: object, message: string): void }
}

const NO_TRAFFIC: VersionFigures = figuresOf(emptyCounters(), 1)

/**
 * The I/O around core/rollout/rollout-machine.ts: once per tick, for every progressing
 * rollout, asks the routers' reports how many still lag behind the step's weights and, when
 * a window is due, the signal source for its figures; then lets the pure machine decide and
 * writes what it decides through the registry (journaled, audited, watched).
 */
export class RolloutController {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined

  constructor(private readonly options: RolloutControllerOptions) {}

  start(): void {
    this.timer ??= setInterval(() => {
      this.running ??= this.tick().finally(() => (this.running = undefined))
    }, this.options.tickMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    await this.running
  }

  /** One look at every active rollout (also called directly by tests with a fake clock). */
  async tick(): Promise<void> {
    // With replicas, the leader steps rollouts (its writes are checked against the newest state anyway).
    if (!this.options.registry.isLeader) return
    for (const rollout of this.options.registry.activeRollouts()) {
      if (rollout.phase !== 'progressing') continue
      try {
        await this.advance(rollout)
      } catch (error) {
        this.options.log.error({ err: error, service: rollout.service }, 'rollout step failed; trying again on the next tick')
      }
    }
  }

  private async advance(rollout: RolloutState): Promise<void> {
    const { registry, routers, signals, clock } = this.options
    const now = clock()
    const routersBehind = rollout.awaitingRevision === null ? 0 : routers.behind(rollout.awaitingRevision).length
    const window = decisionWindow(rollout, now)
    let figures: { canary: VersionFigures; baseline: VersionFigures } | undefined
    if (window) {
      const service = await signals.signals(rollout.service, Math.max(window.from, window.to - this.options.maxWindowMs), window.to)
      figures = { canary: service.versions[rollout.spec.canary] ?? NO_TRAFFIC, baseline: service.versions[rollout.spec.baseline] ?? NO_TRAFFIC }
    }
    // An operator may have paused or aborted it while the figures were on their way.
    if (registry.currentRollout(rollout.service) !== rollout) return
    const transition = tickRollout(rollout, { now, routersBehind, signals: figures })
    if (!transition) return
    const state = await registry.applyRollout(transition, 'rollout', rollout)
    if (!state) return
    if (transition.event !== 'window-started' && transition.event !== 'step-extended') {
      this.options.log.info({ service: state.service, canary: state.spec.canary, event: transition.event, phase: state.phase, weight: state.canaryWeight }, state.reason)
    }
  }
}
