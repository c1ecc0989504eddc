import { fileURLToPath } from 'node:url'
import { spawnChild, type Child } from './children.js'
import type { LoadSpec, LoadSummary } from './load-spec.js'
import type { WorkerReply } from './load-worker.js'
import { runningWrkPids, runWrk } from './wrk-load.js'

const workerPath = fileURLToPath(new URL('./load-worker.js', import.meta.url))

/**
 * The load generator process: started once per CPU set and kept for the whole run, it
 * runs one load at a time on request (see load-worker.ts).
 */
class LoadGenerator {
  readonly child: Child
  private pending: { resolve(summary: LoadSummary): void; reject(error: Error): void } | undefined
  private queue: Promise<unknown> = Promise.resolve()

  constructor(cpus: string | undefined) {
    this.child = spawnChild('load generator', process.execPath, [workerPath], { cpus, ipc: true })
    this.child.process.on('message', (reply: WorkerReply) => {
      const pending = this.pending
      this.pending = undefined
      if (!pending) return
      if (reply.ok) pending.resolve(reply.summary)
      else pending.reject(new Error(`the load generator failed: ${reply.error}`))
    })
    void this.child.exited.then((code) => {
      this.pending?.reject(new Error(`the load generator exited (${code}): ${this.child.output().slice(-2000)}`))
      this.pending = undefined
      generators.delete(cpus ?? '')
    })
  }

  run(spec: LoadSpec): Promise<LoadSummary> {
    const next = this.queue.then(
      () =>
        new Promise<LoadSummary>((resolve, reject) => {
          this.pending = { resolve, reject }
          this.child.process.send(spec)
        })
    )
    this.queue = next.catch(() => {})
    return next
  }
}

const generators = new Map<string, LoadGenerator>()

function generatorFor(cpus: string | undefined): LoadGenerator {
  let generator = generators.get(cpus ?? '')
  if (!generator) {
    generator = new LoadGenerator(cpus)
    generators.set(cpus ?? '', generator)
  }
  return generator
}

/** Starts the load generator for `cpus` now, so that its start-up falls outside any measured round. */
export function startLoadGenerator(cpus: string | undefined): void {
  generatorFor(cpus)
}

let closedLoop: 'wrk' | 'autocannon' = 'autocannon'

/** Which tool runs closed-loop (saturation) loads; open-loop (fixed-rate) loads are always paced by the load worker. */
export function setClosedLoopGenerator(kind: 'wrk' | 'autocannon'): void {
  closedLoop = kind
}

/** Runs one load test pinned to `cpus` and returns its summary. */
export function runLoad(spec: LoadSpec, cpus: string | undefined): Promise<LoadSummary> {
  if (spec.rate === undefined && closedLoop === 'wrk') return runWrk(spec, cpus)
  return generatorFor(cpus).run(spec)
}

/** pids of the running load generators (their CPU is the benchmark's own, not other load). */
export function loadGeneratorPids(): number[] {
  return [...[...generators.values()].map((generator) => generator.child.pid), ...runningWrkPids()]
}
