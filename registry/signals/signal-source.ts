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
}

export class RouterReportSignals implements SignalSource {
  readonly name = 'routers'
  constructor(private readonly book: SignalBook) {}

  signals(service: string, from: number, to: number): Promise<ServiceSignals> {
    return asPromise(() => this.book.signals(service, from, to))
  }
}
