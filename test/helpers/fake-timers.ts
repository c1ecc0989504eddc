import { FakeClock } from './fake-clock.js'

interface Pending {
  at: number
  order: number
  callback: () => void
}

/**
 * A clock with timers that only move when a test moves them: code that takes a clock and
 * timers (router/http/exchange.ts's `Timers`) times out exactly when the test says, with
 * no real wait.
 */
export class FakeTimers extends FakeClock {
  private pending: Pending[] = []
  private scheduled = 0

  readonly setTimeout = (callback: () => void, ms: number): unknown => {
    const timer: Pending = { at: this.nowMs + Math.max(0, ms), order: this.scheduled++, callback }
    this.pending.push(timer)
    return timer
  }

  readonly clearTimeout = (handle: unknown): void => {
    this.pending = this.pending.filter((timer) => timer !== handle)
  }

  /** When the earliest pending timer is due (undefined: none). */
  get nextDue(): number | undefined {
    return this.earliest()?.at
  }

  /** Moves the clock, running each timer that falls due on the way at its own time, in order. */
  override advance(ms: number): void {
    const until = this.nowMs + ms
    let ran = 0
    for (let timer = this.earliest(); timer !== undefined && timer.at <= until; timer = this.earliest()) {
      // A callback that re-arms itself for "now" would otherwise spin here forever.
      if (++ran > 10_000) throw new Error('timers keep re-arming themselves without the clock moving')
      this.pending = this.pending.filter((candidate) => candidate !== timer)
      this.nowMs = timer.at
      timer.callback()
    }
    this.nowMs = until
  }

  private earliest(): Pending | undefined {
    let first: Pending | undefined
    for (const timer of this.pending) if (!first || timer.at < first.at || (timer.at === first.at && timer.order < first.order)) first = timer
    return first
  }
}
