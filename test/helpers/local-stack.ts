import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cliPath, freePort, spawnNode, type SpawnedProcess } from './processes.js'

export interface LocalStack {
  process: SpawnedProcess
  ports: { registry: number; router: number; admin: number; messages: number }
  /** what a CLI call against this stack needs */
  env: { SWITCHYARD_REGISTRY_URL: string; SWITCHYARD_TOKEN: string }
  stateDir: string
  /** Ctrl-C, wait for the stack to stop, remove its state (unless started with keepState) */
  stop(): Promise<void>
}

/** `npm start` (the CLI's `local`) on free ports with its own state directory; resolves once it is up. */
export async function startLocalStack(options: {
  token: string
  args?: string[]
  env?: Record<string, string>
  stateDir?: string
  keepState?: boolean
  ports?: LocalStack['ports']
}): Promise<LocalStack> {
  const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), 'switchyard-local-')))
  const ports = options.ports ?? { registry: await freePort(), router: await freePort(), admin: await freePort(), messages: await freePort() }
  const child = spawnNode([cliPath, 'local', ...(options.args ?? [])], {
    ...options.env,
    SWITCHYARD_REGISTRY_PORT: String(ports.registry),
    SWITCHYARD_ROUTER_PORT: String(ports.router),
    SWITCHYARD_ROUTER_ADMIN_PORT: String(ports.admin),
    SWITCHYARD_MESSAGE_ROUTER_ADMIN_PORT: String(ports.messages),
    SWITCHYARD_STATE_DIR: stateDir,
    SWITCHYARD_ADMIN_TOKEN: options.token
  })
  const stop = async () => {
    child.child.kill('SIGINT')
    await child.exited
    if (!options.keepState) await rm(stateDir, { recursive: true, force: true })
  }
  try {
    await child.waitForOutput('Press Ctrl-C', 90_000)
  } catch (error) {
    await stop()
    throw error
  }
  return { process: child, ports, stateDir, env: { SWITCHYARD_REGISTRY_URL: `http://127.0.0.1:${ports.registry}`, SWITCHYARD_TOKEN: options.token }, stop }
}
