import { fileURLToPath } from 'node:url'
import { spawnChild, type Child } from './children.js'
import type { RegistryLoadReply, RegistryLoadSummary, RegistryLoadTask } from './registry-load-worker.js'

const workerPath = fileURLToPath(new URL('./registry-load-worker.js', import.meta.url))

/** The registry load generator process (registry-load-worker.ts): one task at a time, in the order asked. */
export class RegistryLoad {
  readonly child: Child
  private pending: { resolve(summary: RegistryLoadSummary): void; reject(error: Error): void } | undefined
  private queue: Promise<unknown> = Promise.resolve()

  constructor(cpus?: string) {
    this.child = spawnChild('registry load generator', process.execPath, [workerPath], { cpus, ipc: true })
    this.child.process.on('message', (reply: RegistryLoadReply) => {
      const pending = this.pending
      this.pending = undefined
      if (!pending) return
      if (reply.ok) pending.resolve(reply.summary)
      else pending.reject(new Error(`the registry load generator failed: ${reply.error}`))
    })
    void this.child.exited.then((code) => {
      this.pending?.reject(new Error(`the registry load generator exited (${code}): ${this.child.output().slice(-2000)}`))
      this.pending = undefined
    })
  }

  run(task: RegistryLoadTask): Promise<RegistryLoadSummary> {
    const next = this.queue.then(
      () =>
        new Promise<RegistryLoadSummary>((resolve, reject) => {
          this.pending = { resolve, reject }
          this.child.process.send(task)
        })
    )
    this.queue = next.catch(() => {})
    return next
  }

  stop(): Promise<number> {
    return this.child.stop()
  }
}
