import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

/**
 * CPU time and memory of a process and its descendants, read from /proc (Linux). A
 * proxy such as nginx runs as a master and a worker: the tree counts both.
 */
let clockTicks: number | undefined

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat (100 almost everywhere). */
export function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

export function procAvailable(): boolean {
  try {
    readFileSync('/proc/self/stat', 'utf8')
    return true
  } catch {
    return false
  }
}

/** `pid` and every process below it, found through /proc/<pid>/task/<tid>/children. */
export function processTree(pid: number): number[] {
  const seen = new Set<number>()
  const queue = [pid]
  while (queue.length > 0 && seen.size < 256) {
    const current = queue.shift() as number
    if (seen.has(current)) continue
    seen.add(current)
    let tasks: string[] = []
    try {
      tasks = readdirSync(`/proc/${current}/task`)
    } catch {
      continue
    }
    for (const tid of tasks) {
      try {
        const children = readFileSync(`/proc/${current}/task/${tid}/children`, 'utf8').trim()
        if (children) for (const child of children.split(/\s+/)) queue.push(Number(child))
      } catch {
        // the task ended meanwhile
      }
    }
  }
  return [...seen]
}

/** utime + stime of one process in seconds, or 0 once it is gone. */
export function cpuSecondsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // comm (field 2) may hold spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond()
  } catch {
    return 0
  }
}

export function treeCpuSeconds(pid: number): number {
  let total = 0
  for (const member of processTree(pid)) total += cpuSecondsOf(member)
  return total
}

function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)
    return match ? Number(match[1]) : 0
  } catch {
    return 0
  }
}

/** Peak resident set size (VmHWM) of the tree in MiB: the sum over its processes. */
export function treePeakRssMiB(pid: number): number {
  let kb = 0
  for (const member of processTree(pid)) kb += statusKb(member, 'VmHWM')
  return kb / 1024
}

/** Current resident set size (VmRSS) of the tree in MiB. */
export function treeRssMiB(pid: number): number {
  let kb = 0
  for (const member of processTree(pid)) kb += statusKb(member, 'VmRSS')
  return kb / 1024
}

/**
 * CPU seconds the whole machine spent busy (user, nice, system, irq, softirq, steal;
 * summed over cores) since boot, from the first line of /proc/stat. Compared with what
 * the benchmark's own processes used, it shows how much other work shared the machine.
 */
export function machineBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? ''
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number)
    return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / ticksPerSecond()
  } catch {
    return NaN
  }
}

/** This process's CPU plus that of its children already waited for (the finished load generators). */
export function selfAndReapedChildrenCpuSeconds(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // utime, stime, cutime, cstime: fields 14-17
    return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / ticksPerSecond()
  } catch {
    return NaN
  }
}

/**
 * Seconds the main threads of the process tree (the event loop of a Node.js proxy, the
 * worker of nginx) spent runnable but waiting for a CPU: the second field of
 * /proc/<pid>/schedstat. It is the time other work sharing the core took from the
 * process under test (its own GC and compiler threads included, as they share its core).
 */
export function treeRunqueueWaitSeconds(pid: number): number {
  let nanoseconds = 0
  for (const member of processTree(pid)) {
    try {
      nanoseconds += Number(readFileSync(`/proc/${member}/schedstat`, 'utf8').split(' ')[1] ?? 0)
    } catch {
      // the process ended meanwhile
    }
  }
  return nanoseconds / 1e9
}
