import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawnChild, type Child } from './children.js'
import { callJson, waitForHttp } from './http.js'
import { freePorts } from './ports.js'

/** The switchyard CLI as built by `npm run build`. */
export const cliPath = fileURLToPath(new URL('../../cli/main.js', import.meta.url))

export interface RegistryProcess {
  url: string
  adminToken: string
  readerToken: string
  /** role router: reads the watch stream and may report signals (a reader's reports are refused) */
  routerToken: string
  child: Child
  close(): Promise<void>
}

/** The tokens a registry accepts; replicas of one etcd-backed registry share them. */
export interface RegistryCredentials {
  adminToken: string
  readerToken: string
  routerToken: string
}

export function newRegistryCredentials(): RegistryCredentials {
  return {
    adminToken: `bench-admin-${randomBytes(12).toString('hex')}`,
    readerToken: `bench-reader-${randomBytes(12).toString('hex')}`,
    routerToken: `bench-router-${randomBytes(12).toString('hex')}`
  }
}

/**
 * A registry as a real process on 127.0.0.1: by default its file store in a fresh
 * temporary directory; with `etcd`, one replica of the registry kept under that prefix.
 */
export async function startRegistryProcess(
  options: {
    cpus?: string | undefined
    leaseSeconds?: number
    /** default: a third of leaseSeconds when that is given, else the registry's default */
    renewSeconds?: number
    rolloutTickSeconds?: number
    etcd?: { endpoints: readonly string[]; prefix: string; replicaId: string }
    credentials?: RegistryCredentials
  } = {}
): Promise<RegistryProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), 'switchyard-bench-registry-'))
  const { adminToken, readerToken, routerToken } = options.credentials ?? newRegistryCredentials()
  const tokensFile = join(dataDir, 'tokens.json')
  await writeFile(
    tokensFile,
    JSON.stringify({
      tokens: [
        { name: 'bench-reader', role: 'reader', token: readerToken },
        { name: 'bench-router', role: 'router', token: routerToken }
      ]
    })
  )
  const [port] = await freePorts(1)
  const store = options.etcd
    ? ['--store', 'etcd', '--etcd-endpoints', options.etcd.endpoints.join(','), '--etcd-prefix', options.etcd.prefix, '--replica-id', options.etcd.replicaId]
    : ['--data-dir', join(dataDir, 'store')]
  const args = [cliPath, 'registry', '--host', '127.0.0.1', '--port', String(port), ...store, '--tokens-file', tokensFile, '--log-level', 'warn']
  if (options.leaseSeconds) args.push('--lease-seconds', String(options.leaseSeconds))
  const renewSeconds = options.renewSeconds ?? (options.leaseSeconds ? Math.max(1, Math.floor(options.leaseSeconds / 3)) : undefined)
  if (renewSeconds) args.push('--renew-seconds', String(renewSeconds))
  if (options.rolloutTickSeconds) args.push('--rollout-tick-seconds', String(options.rolloutTickSeconds))
  const child = spawnChild('registry', process.execPath, args, { env: { SWITCHYARD_ADMIN_TOKEN: adminToken }, cpus: options.cpus })
  const url = `http://127.0.0.1:${port}`
  await waitForHttp(`${url}/healthz`, 'the registry', child)
  return {
    url,
    adminToken,
    readerToken,
    routerToken,
    child,
    async close() {
      await child.stop()
      await rm(dataDir, { recursive: true, force: true })
    }
  }
}

/** Tracing off, even when the caller's environment has OTEL_* variables set. */
export const TRACING_OFF: Record<string, string> = { OTEL_TRACES_EXPORTER: 'none', OTEL_SDK_DISABLED: 'true' }

export interface RouterProcess {
  proxyUrl: string
  adminUrl: string
  child: Child
}

/** The HTTP router as a real process, following `registryUrl`, with `/api` routed to the service `api`. */
export async function startRouterProcess(options: {
  registryUrl: string
  /** the router role: it reads the watch and reports its signals, as in production */
  token: string
  cpus?: string | undefined
  routes?: string
  /** a router config file (YAML or JSON): routes, services' protocols... */
  config?: string
  waitReady?: boolean
  /** OTEL_* variables; by default tracing is off whatever the environment says */
  tracingEnv?: Record<string, string>
  /** Node.js flags before the CLI's path (e.g. --inspect=127.0.0.1:0 to force a GC while measuring memory) */
  nodeOptions?: readonly string[]
}): Promise<RouterProcess> {
  const [port, adminPort] = await freePorts(2)
  const args = [
    ...(options.nodeOptions ?? []),
    cliPath,
    'router',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--admin-host',
    '127.0.0.1',
    '--admin-port',
    String(adminPort),
    '--registry',
    options.registryUrl,
    '--routes',
    options.routes ?? '/api=api',
    '--log-level',
    'warn'
  ]
  if (options.config) args.push('--config', options.config)
  const child = spawnChild('router', process.execPath, args, { env: { SWITCHYARD_TOKEN: options.token, ...(options.tracingEnv ?? TRACING_OFF) }, cpus: options.cpus })
  const router = { proxyUrl: `http://127.0.0.1:${port}`, adminUrl: `http://127.0.0.1:${adminPort}`, child }
  if (options.waitReady !== false) await waitForHttp(`${router.adminUrl}/readyz`, 'the router', child)
  return router
}

export async function registerInstance(registry: RegistryProcess, service: string, instance: { id: string; version: string; host: string; port: number }): Promise<void> {
  const body = { id: instance.id, version: instance.version, host: instance.host, port: instance.port }
  const answer = await callJson('POST', `${registry.url}/v1/services/${service}/instances`, { token: registry.adminToken, body })
  if (answer.status !== 201 && answer.status !== 200) throw new Error(`registering ${instance.id} failed: ${answer.status} ${answer.text}`)
}

/** Sets a service's split; resolves with the registry revision it produced. */
export async function setWeights(registry: RegistryProcess, service: string, weights: Record<string, number>): Promise<number> {
  const answer = await callJson('PUT', `${registry.url}/v1/services/${service}/weights`, { token: registry.adminToken, body: { weights } })
  if (answer.status !== 200) throw new Error(`setting the weights of ${service} failed: ${answer.status} ${answer.text}`)
  return (answer.json as { revision: number }).revision
}
