import type { Pinning } from '../lib/pinning.js'

/** What every scenario is given. */
export interface BenchContext {
  quick: boolean
  pinning: Pinning
  /** closed-loop connections of the load generator */
  connections: number
  /** rounds per configuration (proxy: at least 3) */
  rounds: number
  /** seconds of load per round at saturation */
  durationSeconds: number
  /** proxy configurations to run (default: all) */
  configurations: readonly string[] | undefined
}

/** A table as printed on stdout and in the Markdown summary. */
export interface Table {
  title: string
  columns: string[]
  rows: string[][]
  notes?: string[]
}

export interface ScenarioResult {
  name: string
  /** set when the scenario did not run, with the reason */
  skipped?: string
  /** lines worth reading next to the tables (what was measured how, what was skipped) */
  notes: string[]
  tables: Table[]
  /** every raw figure, for the JSON file */
  data: unknown
}

/** Most scenarios drive processes and wait on them; the picker one only times calls in-process. */
export type Scenario = (context: BenchContext) => ScenarioResult | Promise<ScenarioResult>
