import { asPromise } from '../../core/as-promise.js'
import type { ServiceSignals } from '../../core/signals/figures.js'
import type { SignalBook } from '../../core/signals/signal-book.js'

/**
 * Where per-version figures come from: the routers' own reports (the default, nothing
 * else to run) or a Prometheus that scrapes them. Rollouts, the CLI and the console
 * read only through this.
 */
export interface SignalSource {
  readonly name: string
  /** figures of every version of the service over [from, to] (ms since the epoch) */
  signals(service: string, from: number, to: number): Promise<ServiceSignals>
  /**
   * The same figures step by step over [from, to], oldest first (the console's charts on
   * opening). Undefined: this source keeps no cheap history (the charts then start empty).
   */
  series?(service: string, from: number, to: number, stepMs: number): Promise<SignalPoint[]>
}

/** One step of a series: the figures of (at - stepMs, at]. */
export interface SignalPoint {
  /** ms since the epoch: the step's end */
  at: number
  versions: ServiceSignals['versions']
}

export class RouterReportSignals implements SignalSource {
  readonly name = 'routers'
  constructor(private readonly book: SignalBook) {}

  signals(service: string, from: number, to: number): Promise<ServiceSignals> {
    return asPromise(() => this.book.signals(service, from, to))
  }

  /** From the book's per-second deltas, as many windows as steps (150 steps over 15 minutes of slots: about a millisecond). */
  series(service: string, from: number, to: number, stepMs: number): Promise<SignalPoint[]> {
    return asPromise(() => {
      const points: SignalPoint[] = []
      for (let at = from + stepMs; at <= to; at += stepMs) points.push({ at, versions: this.book.signals(service, at - stepMs, at).versions })
      return points
    })
  }
}
