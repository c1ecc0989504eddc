import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const projectRoot = fileURLToPath(new URL('../..', import.meta.url))
export const cliPath = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url))

/** The benchmark's: a port nothing listens on right now. */
export { freePort } from '../../bench/lib/ports.js'

/** `switchyard router` on 127.0.0.1 with its proxy and admin ports, then `extra` (for spawnNode). */
export function routerArgs(port: number, adminPort: number, extra: string[] = []): string[] {
  return [cliPath, 'router', '--host', '127.0.0.1', '--port', String(port), '--admin-host', '127.0.0.1', '--admin-port', String(adminPort), ...extra]
}

export interface SpawnedProcess {
  child: ChildProcess
  output: () => string
  exited: Promise<number | null>
  /** resolves once the output contains `text` (or rejects at the deadline / on exit) */
  waitForOutput(text: string | RegExp, timeoutMs?: number): Promise<void>
  kill(signal?: NodeJS.Signals): Promise<number | null>
}

/**
 * Runs `node <args>` with output captured; tests must kill it in teardown. `env` adds to
 * this process's environment unless `options.env` says it is the whole environment.
 */
export function spawnNode(args: string[], env: Record<string, string | undefined> = {}, options: { cwd?: string; wholeEnv?: boolean } = {}): SpawnedProcess {
  const child = spawn(process.execPath, args, {
    env: options.wholeEnv ? env : { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.cwd ? { cwd: options.cwd } : {})
  })
  let output = ''
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))))
  return {
    child,
    output: () => output,
    exited,
    async waitForOutput(text, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs
      while (!(typeof text === 'string' ? output.includes(text) : text.test(output))) {
        if (child.exitCode !== null) throw new Error(`process exited (${child.exitCode}) before printing ${text}:\n${output}`)
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${text}:\n${output}`)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    },
    async kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    }
  }
}

/** Runs the CLI to completion. */
export async function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cliPath, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const code = await new Promise<number | null>((resolve) => child.once('close', (exitCode) => resolve(exitCode)))
  return { code, stdout, stderr }
}
