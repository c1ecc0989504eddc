import { performance } from 'node:perf_hooks'

/**
 * Open-loop sending shared by the load generators: `total` sends, evenly spaced at `rate`
 * per second from now (a timer looks every millisecond and sends whatever is due, so a
 * late timer catches up instead of losing sends). `send` gets the time each was
 * scheduled for, so that latencies run from it and a server that stalls cannot hide the
 * requests it delayed. Resolves once every send has settled, with when sending started.
 */
export async function sendPaced(total: number, rate: number, send: (scheduledAt: number, index: number) => Promise<void>): Promise<number> {
  const interval = 1000 / rate
  const inFlight = new Set<Promise<void>>()
  let sent = 0
  const started = performance.now()
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor((performance.now() - started) / interval) + 1)
      while (sent < due) {
        const index = sent++
        const done: Promise<void> = send(started + index * interval, index).finally(() => inFlight.delete(done))
        inFlight.add(done)
      }
      if (sent >= total) resolve()
      else setTimeout(tick, 1)
    }
    tick()
  })
  // Bounded: the senders' own timeouts end whatever is still unanswered.
  while (inFlight.size > 0) await Promise.race(inFlight)
  return started
}
