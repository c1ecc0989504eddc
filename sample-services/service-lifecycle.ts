import type { FastifyInstance } from 'fastify'
import { closeOnSignals, type ShutdownLogger } from '../lifecycle/graceful-shutdown.js'
import { InstanceAgent } from '../registry/client/instance-agent.js'
import type { Tracing } from '../telemetry/tracing-sdk.js'

/** One JSON line per life-cycle event on stdout (what the local stack and compose logs show). */
export type EventLog = (event: string, detail?: Record<string, unknown>) => void

export function eventLog(service: string, version: string): EventLog {
  return (event, detail = {}) => process.stdout.write(JSON.stringify({ time: new Date().toISOString(), service, version, event, ...detail }) + '\n')
}

export interface SampleServiceRun {
  service: string
  version: string
  instanceId: string
  /** where to listen, and what to tell the registry */
  listen: { host: string; port: number; advertiseHost?: string | undefined }
  registry: { url: string; token?: string | undefined }
  app: FastifyInstance
  tracing: Tracing
  /** time between deregistering (routers stop sending) and closing, on SIGTERM */
  drainMs: number
  log: EventLog
  /** work that starts once listening, before registering (a worker's consumer) */
  start?: () => void
  /** work that stops after deregistering, before the app closes */
  stop?: () => Promise<void>
}

/**
 * What every sample service does around its app: listen, register with the registry
 * (heartbeats included), and on SIGTERM/SIGINT drain, deregister, close and exit 0
 * (lifecycle/graceful-shutdown.ts).
 */
export async function runSampleService(run: SampleServiceRun): Promise<void> {
  const { app, listen, log } = run
  await app.listen({ host: listen.host, port: listen.port })
  const address = app.server.address()
  const port = typeof address === 'object' && address ? address.port : listen.port
  const agent = new InstanceAgent({
    registryUrl: run.registry.url,
    token: run.registry.token,
    service: run.service,
    version: run.version,
    host: listen.advertiseHost ?? (listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host),
    port,
    id: run.instanceId,
    onEvent: log
  })
  run.start?.()
  await agent.start()
  log('ready', { port })
  closeOnSignals(async () => {
    log('draining', { drainMs: run.drainMs })
    await agent.stop(run.drainMs)
    await run.stop?.()
    await app.close()
    await run.tracing.shutdown()
  }, shutdownLog(log))
}

/** The shutdown's own lines (signal received, close failed) as life-cycle events. */
export function shutdownLog(log: EventLog): ShutdownLogger {
  return {
    info: (message) => log('stopping', { message }),
    error: ({ err }, message) => log('error', { message, ...(err === undefined ? {} : { error: err instanceof Error ? err.message : String(err) }) })
  }
}
