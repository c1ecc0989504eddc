/**
 * Timers, injected with a clock where timeouts and expiries must be testable without real
 * waits (test/helpers/fake-timers.ts runs them on a fake clock).
 */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}
