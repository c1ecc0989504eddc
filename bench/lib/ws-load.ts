import { fileURLToPath } from 'node:url'
import { spawnChild, type Child } from './children.js'
import type { CloseSummary, EchoSummary, OpenSummary, WsCommand, WsWorkerReply } from './ws-load-worker.js'

const workerPath = fileURLToPath(new URL('./ws-load-worker.js', import.meta.url))

/**
 * The WebSocket load generator process (ws-load-worker.ts), started once for the
 * websocket scenario and kept warm: one command at a time, answered over IPC.
 */
export class WsLoadGenerator {
  readonly child: Child
  private pending: { resolve(result: EchoSummary | OpenSummary | CloseSummary): void; reject(error: Error): void } | undefined
  private queue: Promise<unknown> = Promise.resolve()

  constructor(cpus: string | undefined) {
    this.child = spawnChild('websocket load generator', process.execPath, [workerPath], { cpus, ipc: true })
    this.child.process.on('message', (reply: WsWorkerReply) => {
      const pending = this.pending
      this.pending = undefined
      if (!pending) return
      if (reply.ok) pending.resolve(reply.summary)
      else pending.reject(new Error(`the websocket load generator failed: ${reply.error}`))
    })
    void this.child.exited.then((code) => {
      this.pending?.reject(new Error(`the websocket load generator exited (${code}): ${this.child.output().slice(-2000)}`))
      this.pending = undefined
    })
  }

  echo(command: Omit<Extract<WsCommand, { kind: 'echo' }>, 'kind'>): Promise<EchoSummary> {
    return this.send({ kind: 'echo', ...command }) as Promise<EchoSummary>
  }

  open(url: string, count: number, concurrency: number): Promise<OpenSummary> {
    return this.send({ kind: 'open', url, count, concurrency }) as Promise<OpenSummary>
  }

  close(): Promise<CloseSummary> {
    return this.send({ kind: 'close' }) as Promise<CloseSummary>
  }

  stop(): Promise<number> {
    return this.child.stop()
  }

  private send(command: WsCommand): Promise<EchoSummary | OpenSummary | CloseSummary> {
    const next = this.queue.then(
      () =>
        new Promise<EchoSummary | OpenSummary | CloseSummary>((resolve, reject) => {
          this.pending = { resolve, reject }
          this.child.process.send(command)
        })
    )
    this.queue = next.catch(() => {})
    return next
  }
}
