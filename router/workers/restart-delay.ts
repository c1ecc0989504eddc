/** A worker that exits sooner than this after it started counts as dying young. */
export const QUICK_EXIT_MS = 10_000
const FIRST_DELAY_MS = 100
const MAX_DELAY_MS = 10_000

/**
 * How long to wait before starting a worker in place of one that exited: at once after a
 * worker that had run for a while (a one-off crash), then 100 ms doubling to 10 s while
 * its successors keep dying young (a crash loop, e.g. a certificate gone: logged each
 * time, never spinning).
 */
export function restartDelayMs(quickExitsInARow: number): number {
  return quickExitsInARow <= 0 ? 0 : Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (quickExitsInARow - 1))
}
