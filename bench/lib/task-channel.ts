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
