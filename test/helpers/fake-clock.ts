/** A clock that only moves when a test moves it. */
export class FakeClock {
  constructor(public nowMs = Date.UTC(2026, 0, 1)) {}
  readonly now = (): number => this.nowMs
  advance(ms: number): void {
    this.nowMs += ms
  }
}
