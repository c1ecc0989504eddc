import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { RegistryClient } from '../../registry/client/registry-client.js'
import { cliPath, freePort, spawnNode, type SpawnedProcess } from './processes.js'
import { waitFor } from './registry-harness.js'

export const MESH_TOKEN = 'mesh-admin-token-0123456789abcdef'
const apiMain = fileURLToPath(new URL('../../dist/sample-services/api/main.js', import.meta.url))
const messagePlaneMain = fileURLToPath(new URL('../../dist/sample-services/message-plane/main.js', import.meta.url))

export interface ProcessMesh {
  registryUrl: string
  dataDir: string
  client: RegistryClient
  env: Record<string, string>
  registry: SpawnedProcess
  /** kills the registry (SIGKILL) and starts it again on the same port and data */
  restartRegistry(): Promise<void>
  startRouter(name?: string): Promise<{ process: SpawnedProcess; proxyUrl: string; adminUrl: string; id: string }>
  startApi(version: string, options?: { errorRate?: number }): Promise<SpawnedProcess>
  startMessagePlane(options: { rejectRates?: string }): Promise<{ process: SpawnedProcess; adminUrl: string }>
  /** the weights a router's /routes shows for a service */
  routerWeights(adminUrl: string, service: string): Promise<Record<string, number>>
  close(): Promise<void>
}

/**
 * A registry, routers and sample services as real processes on 127.0.0.1 (dist/ must be
 * built), for tests of what crosses process boundaries: reports, rollouts, restarts.
 */
export async function startProcessMesh(options: { registryArgs?: string[] } = {}): Promise<ProcessMesh> {
  const dataDir = await mkdtemp(join(tmpdir(), 'switchyard-mesh-'))
  const port = await freePort()
  const registryUrl = `http://127.0.0.1:${port}`
  const env = { SWITCHYARD_REGISTRY_URL: registryUrl, SWITCHYARD_TOKEN: MESH_TOKEN, SWITCHYARD_ADMIN_TOKEN: MESH_TOKEN, SWITCHYARD_LOG_LEVEL: 'info' }
  const children: SpawnedProcess[] = []
  const spawnRegistry = async () => {
    const child = spawnNode(
      [cliPath, 'registry', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, '--eviction-interval-seconds', '1', ...(options.registryArgs ?? [])],
      env
    )
    children.push(child)
    await child.waitForOutput('registry listening on', 30_000)
    return child
  }
  const mesh: ProcessMesh = {
    registryUrl,
    dataDir,
    env,
    client: new RegistryClient({ url: registryUrl, token: MESH_TOKEN }),
    registry: await spawnRegistry(),
    async restartRegistry() {
      await mesh.registry.kill('SIGKILL')
      mesh.registry = await spawnRegistry()
    },
    async startRouter(name) {
      const proxyPort = await freePort()
      const adminPort = await freePort()
      const id = name ?? `router-${adminPort}`
      const child = spawnNode(
        [cliPath, 'router', '--host', '127.0.0.1', '--port', String(proxyPort), '--admin-host', '127.0.0.1', '--admin-port', String(adminPort), '--router-id', id],
        { ...env, SWITCHYARD_ROUTES: '/api=api' }
      )
      children.push(child)
      const adminUrl = `http://127.0.0.1:${adminPort}`
      await child.waitForOutput('router listening on', 30_000)
      await waitFor(async () => ((await mesh.client.routers()).routers.some((router) => router.id === id) ? true : undefined), `${id} reporting`, 20_000)
      return { process: child, proxyUrl: `http://127.0.0.1:${proxyPort}`, adminUrl, id }
    },
    async startApi(version, options = {}) {
      const child = spawnNode([apiMain], { ...env, SWITCHYARD_VERSION: version, PORT: '0', SAMPLE_ERROR_RATE: String(options.errorRate ?? 0), SAMPLE_DRAIN_MS: '0' })
      children.push(child)
      await child.waitForOutput('"event":"ready"', 30_000)
      return child
    },
    async startMessagePlane(options) {
      const adminPort = await freePort()
      const child = spawnNode([messagePlaneMain], {
        ...env,
        SWITCHYARD_MESSAGE_ROUTER_ADMIN_HOST: '127.0.0.1',
        SWITCHYARD_MESSAGE_ROUTER_ADMIN_PORT: String(adminPort),
        SWITCHYARD_MESSAGE_ROUTER_ID: `message-plane-${adminPort}`,
        SWITCHYARD_TOPICS: 'orders=orders-worker',
        ORDERS_REJECT_RATES: options.rejectRates ?? ''
      })
      children.push(child)
      await child.waitForOutput('"event":"ready"', 30_000)
      return { process: child, adminUrl: `http://127.0.0.1:${adminPort}` }
    },
    async routerWeights(adminUrl, service) {
      const routes = (await (await request(`${adminUrl}/routes`)).body.json()) as { services: { name: string; versions: { name: string; weight: number }[] }[] }
      const entry = routes.services.find((candidate) => candidate.name === service)
      return Object.fromEntries((entry?.versions ?? []).map((version) => [version.name, version.weight]))
    },
    async close() {
      await Promise.all(children.map((child) => child.kill('SIGKILL')))
      await rm(dataDir, { recursive: true, force: true })
    }
  }
  return mesh
}
