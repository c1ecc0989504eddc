import { fileURLToPath } from 'node:url'
import { TaskProcess } from './task-channel.js'
import type { CloseSummary, EchoSummary, OpenSummary, WsCommand } from './ws-load-worker.js'

const workerPath = fileURLToPath(new URL('./ws-load-worker.js', import.meta.url))

/**
 * The WebSocket load generator process (ws-load-worker.ts), started once for the
 * websocket scenario and kept warm: one command at a time, answered over IPC.
 */
export class WsLoadGenerator extends TaskProcess<WsCommand, EchoSummary | OpenSummary | CloseSummary> {
  constructor(cpus: string | undefined) {
    super('websocket load generator', workerPath, cpus)
  }

  echo(command: Omit<Extract<WsCommand, { kind: 'echo' }>, 'kind'>): Promise<EchoSummary> {
    return this.run({ kind: 'echo', ...command }) as Promise<EchoSummary>
  }

  open(url: string, count: number, concurrency: number): Promise<OpenSummary> {
    return this.run({ kind: 'open', url, count, concurrency }) as Promise<OpenSummary>
  }

  close(): Promise<CloseSummary> {
    return this.run({ kind: 'close' }) as Promise<CloseSummary>
  }
}
