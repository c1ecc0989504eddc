import type { BenchEtcd } from './etcd-cluster.js'
import { callJson, waitUntil } from './http.js'
import { newRegistryCredentials, startRegistryProcess, type RegistryCredentials, type RegistryProcess } from './switchyard-processes.js'

/**
 * A registry as clients see it: one file-store process, or replicas of one etcd-backed
 * registry sharing a key prefix and tokens. The registry-ha scenario compares them.
 */
export interface RegistryDeployment {
  /** e.g. "file", "etcd, 2 replicas" */
  label: string
  store: 'file' | 'etcd'
  replicas: RegistryProcess[]
  credentials: RegistryCredentials
  pids(): number[]
  close(): Promise<void>
}

export interface DeploymentOptions {
  leaseSeconds?: number
  renewSeconds?: number
}

export async function startFileDeployment(label: string, options: DeploymentOptions = {}): Promise<RegistryDeployment> {
  const credentials = newRegistryCredentials()
  const registry = await startRegistryProcess({ ...options, credentials })
  return deployment(label, 'file', [registry], credentials)
}

/** `count` replicas under `prefix` of `etcd`, started one after the other (the first creates the registry's head key). */
export async function startEtcdDeployment(label: string, etcd: BenchEtcd, prefix: string, count: number, options: DeploymentOptions = {}): Promise<RegistryDeployment> {
  const credentials = newRegistryCredentials()
  const replicas: RegistryProcess[] = []
  try {
    for (let index = 0; index < count; index++) {
      const replicaId = `${prefix.replace(/[^A-Za-z0-9]/g, '')}-${String.fromCharCode(97 + index)}`
      replicas.push(await startRegistryProcess({ ...options, credentials, etcd: { endpoints: etcd.endpoints, prefix, replicaId } }))
    }
  } catch (error) {
    await Promise.all(replicas.map((replica) => replica.close().catch(() => {})))
    throw error
  }
  return deployment(label, 'etcd', replicas, credentials)
}

function deployment(label: string, store: 'file' | 'etcd', replicas: RegistryProcess[], credentials: RegistryCredentials): RegistryDeployment {
  return {
    label,
    store,
    replicas,
    credentials,
    pids: () => replicas.map((replica) => replica.child.pid),
    async close() {
      await Promise.all(replicas.map((replica) => replica.close().catch(() => {})))
    }
  }
}

export interface RegistryHealth {
  revision: number
  instances: number
}

export async function registryHealth(registry: RegistryProcess): Promise<RegistryHealth> {
  const answer = await callJson('GET', `${registry.url}/healthz`)
  if (answer.status !== 200) throw new Error(`${registry.url}/healthz answered ${answer.status}: ${answer.text}`)
  return answer.json as RegistryHealth
}

/** Waits until every replica has followed the newest revision any of them shows (and, when given, holds `instances`). */
export async function waitReplicasFollowed(target: RegistryDeployment, instances?: number, timeoutMs = 120_000): Promise<RegistryHealth> {
  return waitUntil(
    async () => {
      const healths = await Promise.all(target.replicas.map(registryHealth))
      const newest = Math.max(...healths.map((health) => health.revision))
      const settled = healths.every((health) => health.revision === newest && (instances === undefined || health.instances === instances))
      return settled ? (healths[0] as RegistryHealth) : undefined
    },
    `${target.label}: every replica at the same revision${instances === undefined ? '' : ` with ${instances} instances`}`,
    timeoutMs,
    50
  )
}
