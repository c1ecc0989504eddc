import type { MachineInfo, RunIdentity } from '../lib/machine.js'
import type { ScenarioResult } from '../scenarios/scenario.js'

/** Everything one `npm run bench` measured, as written to the JSON file. */
export interface BenchRun {
  identity: RunIdentity
  machine: MachineInfo
  command: string
  quick: boolean
  options: { connections: number; rounds: number; durationSeconds: number; pin: boolean; loadGenerator: 'wrk' | 'autocannon' }
  durationSeconds: number
  scenarios: ScenarioResult[]
}
