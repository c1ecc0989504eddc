import { fileURLToPath } from 'node:url'
import type { LoadSpec, LoadSummary } from './load-spec.js'
import { TaskProcess } from './task-channel.js'
import { runningWrkPids, runWrk } from './wrk-load.js'

const workerPath = fileURLToPath(new URL('./load-worker.js', import.meta.url))

/**
 * The load generator process: started once per CPU set and kept for the whole run, it
 * runs one load at a time on request (see load-worker.ts).
 */
class LoadGenerator extends TaskProcess<LoadSpec, LoadSummary> {
  constructor(cpus: string | undefined) {
    super('load generator', workerPath, cpus, () => generators.delete(cpus ?? ''))
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
