import { readFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { RegistryConfig } from '../config.js'
import { FileStore } from './file-store.js'
import type { AnyRegistryStore } from './registry-store.js'

export interface StoreChoice {
  store: AnyRegistryStore
  /** what to log about it (never a secret) */
  description: Record<string, unknown>
}

/**
 * The store the config names: the file store (one registry, the default) or etcd (any
 * number of replicas). The etcd client is loaded only when it is used.
 */
export async function storeForConfig(
  config: RegistryConfig,
  env: Readonly<Record<string, string | undefined>>,
  hooks: { onRepair: (message: string) => void; onError: (error: Error, what: string) => void }
): Promise<StoreChoice> {
  if (config.store === 'file') {
    return { store: new FileStore({ dataDir: config.dataDir, onRepair: hooks.onRepair }), description: { store: 'file', dataDir: config.dataDir } }
  }
  const [{ EtcdStore }, { EtcdClientPort }] = await Promise.all([import('./etcd/etcd-store.js'), import('./etcd/etcd-client-port.js')])
  const endpoints = (config.etcdEndpoints ?? '').split(',')
  const password = env.SWITCHYARD_ETCD_PASSWORD ?? (config.etcdPasswordFile ? (await readFile(config.etcdPasswordFile, 'utf8')).trim() : undefined)
  const port = new EtcdClientPort({
    endpoints,
    timeoutMs: config.etcdTimeoutSeconds * 1000,
    attemptTimeoutMs: Math.min(2000, config.etcdTimeoutSeconds * 1000),
    ...(config.etcdCaFile || config.etcdCertFile
      ? {
          tls: {
            ...(config.etcdCaFile ? { caFile: config.etcdCaFile } : {}),
            ...(config.etcdCertFile ? { certFile: config.etcdCertFile } : {}),
            ...(config.etcdKeyFile ? { keyFile: config.etcdKeyFile } : {})
          }
        }
      : {}),
    ...(config.etcdUsername ? { auth: { user: config.etcdUsername, password: password ?? '' } } : {})
  })
  const replicaId = config.replicaId ?? `${hostname()}:${config.port}:${randomBytes(4).toString('hex')}`
  const store = new EtcdStore({
    etcd: port,
    prefix: config.etcdPrefix,
    replicaId,
    historyRetention: config.historyRetention,
    snapshotEvery: config.historyRetention,
    onError: hooks.onError
  })
  return { store, description: { store: 'etcd', endpoints, prefix: config.etcdPrefix, replica: replicaId } }
}
