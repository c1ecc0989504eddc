import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism, cpus, platform, release, totalmem } from 'node:os'

/** What the figures were measured on: they mean little without it. */
export interface MachineInfo {
  cores: number
  cpuModel: string
  memoryGiB: number
  os: string
  node: string
  /** the kernel's load average at start: a busy machine skews everything */
  loadAverageAtStart: number[]
}

export interface RunIdentity {
  /** ISO date of the start of the run */
  startedAt: string
  commit: string
  /** true when the work tree had uncommitted changes */
  dirty: boolean
}

export function machineInfo(): MachineInfo {
  let loadAverage: number[] = []
  try {
    loadAverage = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number)
  } catch {
    loadAverage = []
  }
  return {
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()}`,
    node: process.version,
    loadAverageAtStart: loadAverage
  }
}

export function runIdentity(root: string): RunIdentity {
  const git = (args: string[]) => {
    try {
      return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    } catch {
      return ''
    }
  }
  return {
    startedAt: new Date().toISOString(),
    commit: git(['rev-parse', '--short=12', 'HEAD']) || 'unknown',
    dirty: git(['status', '--porcelain', '--untracked-files=no']) !== ''
  }
}
