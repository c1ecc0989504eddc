import { spawn, type ChildProcess } from 'node:child_process'

/**
 * Every child process the benchmark starts, so that all of them are killed when it ends,
 * fails or is interrupted (Ctrl-C, SIGTERM): no proxy, registry or load generator is ever
 * left behind listening on a port.
 */
export interface Child {
  readonly name: string
  readonly process: ChildProcess
  readonly pid: number
  /** stdout and stderr so far (the last 64 KiB), for error messages */
  output(): string
  /** resolves with the exit code (or 128 + signal) once the process is gone */
  readonly exited: Promise<number>
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone */
  stop(graceMs?: number): Promise<number>
}

export interface SpawnOptions {
  env?: Record<string, string | undefined>
  /** CPU list for taskset (e.g. "0"), when pinning is on */
  cpus?: string | undefined
  cwd?: string
  /** keep stdout apart from the log (the load worker answers on stdout) */
  captureStdout?: boolean
  /** open an IPC channel (process.send) to the child */
  ipc?: boolean
}

const OUTPUT_LIMIT = 64 * 1024
const running = new Set<Child>()
let handlersInstalled = false

export function spawnChild(name: string, command: string, args: readonly string[], options: SpawnOptions = {}): Child & { stdout(): string } {
  installExitHandlers()
  const [file, argv] = options.cpus !== undefined ? ['taskset', ['-c', options.cpus, command, ...args]] : [command, [...args]]
  const child = spawn(file, argv, {
    env: { ...process.env, ...options.env },
    stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    ...(options.cwd ? { cwd: options.cwd } : {})
  })
  if (child.pid === undefined) throw new Error(`could not start ${name} (${file})`)
  let log = ''
  let stdout = ''
  const append = (chunk: Buffer) => {
    log += chunk.toString()
    if (log.length > OUTPUT_LIMIT) log = log.slice(-OUTPUT_LIMIT)
  }
  child.stdout?.on('data', (chunk: Buffer) => {
    if (options.captureStdout) stdout += chunk.toString()
    else append(chunk)
  })
  child.stderr?.on('data', append)
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(entry)
      resolve(code ?? (signal ? 128 + signalNumber(signal) : 1))
    })
    child.once('error', (error) => {
      append(Buffer.from(`spawn error: ${error.message}\n`))
      running.delete(entry)
      resolve(127)
    })
  })
  const entry: Child & { stdout(): string } = {
    name,
    process: child,
    pid: child.pid,
    output: () => log,
    stdout: () => stdout,
    exited,
    async stop(graceMs = 3_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      const code = await exited
      clearTimeout(timer)
      return code
    }
  }
  running.add(entry)
  return entry
}

/** Stops every child still running, all in parallel. */
export async function stopAll(graceMs = 3_000): Promise<void> {
  await Promise.all([...running].map((child) => child.stop(graceMs)))
}

function killAllNow(): void {
  for (const child of running) {
    try {
      child.process.kill('SIGKILL')
    } catch {
      // already gone
    }
  }
}

function installExitHandlers(): void {
  if (handlersInstalled) return
  handlersInstalled = true
  // Last resort: whatever is still running when this process exits dies with it.
  process.once('exit', killAllNow)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal} received, stopping ${running.size} child process(es)\n`)
      const hardStop = setTimeout(() => {
        killAllNow()
        process.exit(130)
      }, 4_000)
      hardStop.unref()
      void stopAll(2_000).finally(() => process.exit(130))
    })
  }
}

function signalNumber(signal: NodeJS.Signals): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 }
  return numbers[signal] ?? 0
}
