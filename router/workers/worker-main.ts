/**
 * A worker process of a router with --workers (started by router/workers/worker-pool.ts
 * through the cluster module, never by hand). It runs the same proxy as a single-process
 * router (startRouter), with its tables, admin questions and orders from the primary.
 */
import { startTracing, type Tracing } from '../../telemetry/tracing.js'
import { startRouter, type RunningRouter } from '../server.js'
import { isToWorker, type ToPrimary, type ToWorker } from './messages.js'
import { PrimaryChannel } from './primary-link.js'

let channel: PrimaryChannel | undefined
let running: RunningRouter | undefined
let tracing: Tracing | undefined
let closing: Promise<void> | undefined
let drainRequested = false

function send(message: ToPrimary, done?: () => void): void {
  // The channel is gone once the primary is: nothing to tell then (and 'disconnect' drains this worker).
  if (!process.connected) return done?.()
  process.send?.(message, undefined, {}, () => done?.())
}

async function start(message: Extract<ToWorker, { kind: 'switchyard:start' }>): Promise<void> {
  channel = new PrimaryChannel(message.adminUrl, message.settings.reportIntervalSeconds * 1000, send)
  if (message.snapshot) channel.deliver({ snapshot: message.snapshot })
  tracing = await startTracing('switchyard-router')
  try {
    running = await startRouter(message.settings, message.config, channel)
  } catch (error) {
    // The primary sees the exit: at start-up it stops the router, later it starts another worker.
    process.stderr.write(`switchyard router worker ${process.pid}: ${(error as Error).message}\n`)
    process.exit(1)
  }
  running.proxy.log.info(tracing.description)
  send({ kind: 'switchyard:listening', url: running.proxyUrl })
  if (drainRequested) void drain()
}

/** null: nothing to say yet (not started), or the question failed; the primary does without this worker's part. */
async function answer(id: number, question: 'routes' | 'metrics'): Promise<void> {
  let body: unknown = null
  try {
    if (running && question === 'routes') body = (await running.admin.inject({ method: 'GET', url: '/routes' })).json()
    if (running && question === 'metrics') body = await running.metrics.registry.getMetricsAsJSON()
  } catch {
    body = null
  }
  send({ kind: 'switchyard:answer', id, body })
}

/** Drains as a single-process router does on SIGTERM, tells the primary its last totals, exits. */
function drain(): Promise<void> {
  drainRequested = true
  // Still starting: start() drains once the proxy listens; never asked to start: nothing to drain.
  if (!running) {
    if (!channel) process.exit(0)
    return Promise.resolve()
  }
  const router = running
  closing ??= (async () => {
    let code = 0
    try {
      await router.close()
      await tracing?.shutdown()
    } catch (error) {
      process.stderr.write(`switchyard router worker ${process.pid}: close failed: ${(error as Error).message}\n`)
      code = 1
    }
    await new Promise<void>((resolve) => {
      send({ kind: 'switchyard:report', appliedRevision: router.source.table.revision, ready: router.source.ready, counters: router.metrics.signalCounters() }, resolve)
      setTimeout(resolve, 1_000).unref()
    })
    process.exit(code)
  })()
  return closing
}

process.on('message', (message: unknown) => {
  if (!isToWorker(message)) return
  switch (message.kind) {
    case 'switchyard:start':
      void start(message)
      break
    case 'switchyard:snapshot':
      channel?.deliver({ snapshot: message.snapshot })
      break
    case 'switchyard:change':
      channel?.deliver({ change: message.change })
      break
    case 'switchyard:ask':
      void answer(message.id, message.question)
      break
    case 'switchyard:drain':
      void drain()
      break
    case 'switchyard:ejected':
      channel?.adoptEjection(message.ejection)
      break
  }
})
// The primary gone (killed): nobody routes new connections here any more; finish what is under way.
process.on('disconnect', () => void drain())
// Signals are the primary's to act on: a SIGTERM or Ctrl-C sent to the whole process group
// reaches the primary too, which drains every worker in order (a second signal here would not).
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => {})
send({ kind: 'switchyard:hello' })
