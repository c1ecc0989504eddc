import { spawnChild, type Child } from './children.js'

/** What a load process answers for each task. */
export type TaskReply<Summary> = { ok: true; summary: Summary } | { ok: false; error: string }

/**
 * The worker side of a load process started with an IPC channel: one task per message,
 * run one at a time in the order asked, each answered `{ ok: true, summary }` or
 * `{ ok: false, error }`. The parent's exit closes the channel and ends this process.
 * False when there is no channel (the process was started by hand).
 */
export function serveTasks<Task, Summary>(run: (task: Task) => Promise<Summary>): boolean {
  const reply = process.send?.bind(process)
  if (!reply) return false
  let queue = Promise.resolve()
  process.on('message', (task: Task) => {
    queue = queue.then(async () => {
      let answer: TaskReply<Summary>
      try {
        answer = { ok: true, summary: await run(task) }
      } catch (error) {
        answer = { ok: false, error: (error as Error).stack ?? String(error) }
      }
      reply(answer)
    })
  })
  process.on('disconnect', () => process.exit(0))
  return true
}

/**
 * The parent side: a load process started once (on `cpus`) and kept warm, given one task
 * at a time in the order asked. A task fails with the process's own error, or with its
 * last output if it exits; `onExit` runs then too.
 */
export class TaskProcess<Task, Summary> {
  readonly child: Child
  private pending: { resolve(summary: Summary): void; reject(error: Error): void } | undefined
  private queue: Promise<unknown> = Promise.resolve()

  constructor(name: string, workerPath: string, cpus: string | undefined, onExit: () => void = () => {}) {
    this.child = spawnChild(name, process.execPath, [workerPath], { cpus, ipc: true })
    this.child.process.on('message', (reply: TaskReply<Summary>) => {
      const pending = this.pending
      this.pending = undefined
      if (!pending) return
      if (reply.ok) pending.resolve(reply.summary)
      else pending.reject(new Error(`the ${name} failed: ${reply.error}`))
    })
    void this.child.exited.then((code) => {
      this.pending?.reject(new Error(`the ${name} exited (${code}): ${this.child.output().slice(-2000)}`))
      this.pending = undefined
      onExit()
    })
  }

  run(task: Task): Promise<Summary> {
    const next = this.queue.then(
      () =>
        new Promise<Summary>((resolve, reject) => {
          this.pending = { resolve, reject }
          this.child.process.send(task as object)
        })
    )
    this.queue = next.catch(() => {})
    return next
  }

  stop(): Promise<number> {
    return this.child.stop()
  }
}
