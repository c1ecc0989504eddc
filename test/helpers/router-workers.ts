import { writeFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { request } from 'undici'
import { cliPath, freePort, spawnNode, type SpawnedProcess } from './processes.js'
import { get } from './http.js'
import { startTestRegistry, TOKENS, waitFor, type TestRegistry } from './registry-harness.js'
import { startUpstream, type Upstream, type UpstreamHandler } from './router-harness.js'

/** One worker as the primary's GET /workers lists it. */
export interface WorkerView {
  slot: number
  pid: number
  listening: boolean
  appliedRevision: number
  requests: number
  restarts: number
}

export interface WorkersRouter {
  process: SpawnedProcess
  proxyUrl: string
  adminUrl: string
  id: string
  workers(): Promise<WorkerView[]>
  /** polls /readyz until the router (every worker) is at `revision` or later */
  waitForRevision(revision: number): Promise<void>
  close(): Promise<void>
}

const TRACING_OFF = { OTEL_TRACES_EXPORTER: 'none', OTEL_SDK_DISABLED: 'true' }

/**
 * `switchyard router --workers N` as a real process (dist/ must be built) on 127.0.0.1,
 * following `registryUrl`, routing /api to the service api; `config` goes to --config as JSON.
 */
export async function startWorkersRouter(
  registryUrl: string,
  options: { workers: number; config?: Record<string, unknown>; id?: string; env?: Record<string, string>; scheme?: 'http' | 'https' }
): Promise<WorkersRouter> {
  const port = await freePort()
  const adminPort = await freePort()
  const id = options.id ?? `workers-router-${adminPort}`
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-workers-'))
  const configFile = join(dir, 'router.json')
  await writeFile(configFile, JSON.stringify({ routes: [{ match: { pathPrefix: '/api' }, service: 'api' }], ...options.config }))
  const child = spawnNode(
    [cliPath, 'router', '--workers', String(options.workers), '--host', '127.0.0.1', '--port', String(port), '--admin-host', '127.0.0.1', '--admin-port', String(adminPort)],
    {
      ...TRACING_OFF,
      SWITCHYARD_REGISTRY_URL: registryUrl,
      SWITCHYARD_TOKEN: TOKENS.router,
      SWITCHYARD_ROUTER_ID: id,
      SWITCHYARD_ROUTER_CONFIG: configFile,
      SWITCHYARD_REPORT_INTERVAL_SECONDS: '0.2',
      SWITCHYARD_LOG_LEVEL: 'info',
      ...options.env
    }
  )
  const adminUrl = `http://127.0.0.1:${adminPort}`
  try {
    await child.waitForOutput(`with ${options.workers} workers`, 120_000)
  } catch (error) {
    await child.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
    throw error
  }
  return {
    process: child,
    proxyUrl: `${options.scheme ?? 'http'}://127.0.0.1:${port}`,
    adminUrl,
    id,
    async workers() {
      return ((await get(`${adminUrl}/workers`)).json as { workers: WorkerView[] }).workers
    },
    async waitForRevision(revision) {
      await waitFor(
        async () => {
          const answer = await get(`${adminUrl}/readyz`)
          return answer.status === 200 && (answer.json as { revision: number }).revision >= revision ? true : undefined
        },
        `every worker at revision ${revision}`,
        20_000
      )
    },
    async close() {
      // SIGTERM drains the workers too; SIGKILL of the primary alone would leave them draining.
      const killer = setTimeout(() => child.child.kill('SIGKILL'), 20_000)
      await child.kill('SIGTERM')
      clearTimeout(killer)
      await rm(dir, { recursive: true, force: true })
    }
  }
}

/** A registry in this process with api v1 and v2 (one upstream each, in this process) at `weights`. */
export async function meshOf(t: Test, weights: Record<string, number>, handler?: UpstreamHandler): Promise<{ reg: TestRegistry; upstreams: Upstream[]; revision: number }> {
  const reg = await startTestRegistry()
  t.teardown(() => reg.destroy())
  const upstreams: Upstream[] = []
  for (const version of ['v1', 'v2']) {
    const upstream = await startUpstream(version, `api-${version}`, handler)
    t.teardown(() => upstream.close())
    upstreams.push(upstream)
    const answer = await reg.call('POST', '/v1/services/api/instances', { token: 'registrar', body: { version, host: '127.0.0.1', port: upstream.port, id: `api-${version}` } })
    if (answer.status !== 201 && answer.status !== 200) throw new Error(answer.text)
  }
  const answer = await reg.call('PUT', '/v1/services/api/weights', { token: 'operator', body: { weights } })
  if (answer.status !== 200) throw new Error(answer.text)
  return { reg, upstreams, revision: answer.json.revision as number }
}

export async function routerOf(t: Test, reg: TestRegistry, revision: number, config: Record<string, unknown> = {}): Promise<WorkersRouter> {
  const router = await startWorkersRouter(reg.url, { workers: 2, config: { drainTimeoutMs: 3_000, ...config } })
  t.teardown(() => router.close())
  await router.waitForRevision(revision)
  return router
}

/** One GET on a connection of its own (closed after), so that each lands where the primary hands it. */
export async function freshGet(url: string, headers: Record<string, string> = {}, path = '/api/fresh'): Promise<{ status: number; version: string }> {
  const answer = await request(`${url}${path}`, { headers: { ...headers, connection: 'close' } })
  await answer.body.dump()
  return { status: answer.statusCode, version: String(answer.headers['x-switchyard-version']) }
}
