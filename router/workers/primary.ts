/**
 * A router with --workers N (N > 1): this process, the primary, forks N workers (node's
 * cluster module) that share the proxy port, each running the same proxy as a
 * single-process router. The primary itself proxies nothing: it accepts connections and
 * hands them to the workers in turn (cluster's round-robin, Linux's default; see the
 * README for the measurement), and it is the router towards the outside:
 *
 * - one registry watch for the whole router, fanned out to the workers over IPC (not one
 *   per worker): the registry serves one stream per router whatever N is, every worker
 *   applies the same changes in the same order, and a worker started in place of one that
 *   crashed gets the primary's current state at once, without a registry round trip (so
 *   it never answers NO_ROUTE_TABLE, and a crash loop never loads the registry);
 * - one signal report (PUT /v1/routers/:id): counters summed over the workers (those that
 *   exited included), and as applied revision the lowest any worker has, so
 *   `weights set --wait` and rollouts wait until every worker routes on the new table;
 * - one admin port: /metrics summed over the workers (prom-client's aggregation),
 *   /routes, /readyz, /healthz, and /workers.
 */
import cluster from 'node:cluster'
import { hostname } from 'node:os'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { RegistryModel } from '../../core/registry-model.js'
import { closeOnSignals } from '../../lifecycle/graceful-shutdown.js'
import { RegistryEndpoints } from '../../registry/client/registry-endpoints.js'
import { RegistryWatcher } from '../../registry/client/watch-client.js'
import { loadProxyConfig, tlsFilesOf, type RouterSettings } from '../config.js'
import { loadKeyPair } from '../http/tls-certificates.js'
import { SignalReporter } from '../signals/signal-reporter.js'
import { buildPrimaryAdminApp, PrimaryMetrics } from './primary-admin.js'
import { workerCount } from './worker-count.js'
import { workerConfig } from './worker-config.js'
import { WorkerPool } from './worker-pool.js'

const workerMain = fileURLToPath(new URL('./worker-main.js', import.meta.url))
/** How long the primary waits for workers past their own drain before it kills them. */
const DRAIN_GRACE_MS = 10_000

function displayHost(host: string): string {
  return host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host
}

export interface RunningPrimary {
  pool: WorkerPool
  /** the proxy port speaks TLS: SIGHUP reloads the certificate in every worker */
  tls: boolean
  proxyUrl: string
  adminUrl: string
  close(): Promise<void>
}

export async function startRouterPrimary(settings: RouterSettings): Promise<RunningPrimary> {
  const size = workerCount(settings.workers)
  // Checked here, once: a config or certificate that does not load stops the router at
  // start instead of sending its workers into a crash loop.
  const config = await loadProxyConfig(settings)
  const tlsFiles = tlsFilesOf(settings, config)
  if (tlsFiles) loadKeyPair(tlsFiles)
  const log = pino({ level: settings.logLevel })
  let model: RegistryModel | undefined
  let connected = false
  const registry = new RegistryEndpoints(settings.registry, {
    onSwitch: (from, to, reason) => log.warn({ from, to, reason }, 'registry endpoint failed; moving to the next')
  })
  let adminUrl = ''
  const pool: WorkerPool = new WorkerPool({
    size,
    exec: workerMain,
    startMessage: () => ({ kind: 'switchyard:start', settings, config: workerConfig(config, size), adminUrl, snapshot: model?.snapshot() }),
    onApplied: () => reporter.applied(),
    log
  })
  const watcher = new RegistryWatcher({
    url: registry,
    token: settings.token,
    handlers: {
      // The primary's model first: a change it cannot apply throws before any worker sees it,
      // and the watcher starts over with a snapshot, which then goes to every worker.
      onSnapshot(snapshot) {
        model = RegistryModel.fromSnapshot(snapshot)
        pool.broadcast({ kind: 'switchyard:snapshot', snapshot })
      },
      onChange(change) {
        if (!model) throw new Error('a change before the first snapshot')
        model.apply(change)
        pool.broadcast({ kind: 'switchyard:change', change })
      },
      onConnectionChange(state, error, stream) {
        connected = state === 'connected'
        if (connected) log.info({ registry: stream?.url, resumedAfter: stream?.resumedAfter ?? null }, 'connected to the registry watch stream')
        else log.warn({ registry: settings.registry, reason: error?.message }, 'registry unreachable; routing on the last table while reconnecting')
      }
    }
  })
  const admin = buildPrimaryAdminApp({ pool, metrics: new PrimaryMetrics(pool), registryConnected: () => connected })
  await admin.listen({ host: settings.adminHost, port: settings.adminPort })
  const adminAddress = admin.server.address()
  adminUrl = `http://${displayHost(settings.adminHost)}:${typeof adminAddress === 'object' && adminAddress ? adminAddress.port : 0}`
  const reporter: SignalReporter = new SignalReporter({
    registryUrl: registry,
    token: settings.token,
    id: settings.routerId ?? `${hostname()}:${new URL(adminUrl).port}`,
    kind: 'http',
    adminUrl,
    intervalMs: settings.reportIntervalSeconds * 1000,
    counters: () => pool.counters(),
    appliedRevision: () => pool.appliedRevision(),
    log
  })
  watcher.start()
  reporter.start()
  const stop = async () => {
    await pool.drain(config.drainTimeoutMs + DRAIN_GRACE_MS)
    watcher.stop()
    // A last report, with what the workers counted while draining.
    reporter.report()
    await reporter.stop()
    await admin.close()
  }
  let proxyUrl: string
  try {
    proxyUrl = await pool.start()
  } catch (error) {
    await stop()
    throw error
  }
  const onHangUp = () => pool.signal('SIGHUP')
  // SIGHUP: every worker reads the certificate again (as a single-process router does).
  if (tlsFiles) process.on('SIGHUP', onHangUp)
  const policy = cluster.schedulingPolicy === cluster.SCHED_RR ? 'round-robin by the primary' : 'by the kernel (NODE_CLUSTER_SCHED_POLICY=none)'
  log.info(
    { workers: size, pids: pool.members().map((member) => member.pid), connections: policy },
    `router listening on ${proxyUrl} (HTTP/1.1 and HTTP/2) with ${size} workers, admin on ${adminUrl}`
  )
  let closing: Promise<void> | undefined
  return {
    pool,
    tls: tlsFiles !== undefined,
    proxyUrl,
    adminUrl,
    close() {
      closing ??= (async () => {
        process.off('SIGHUP', onHangUp)
        await stop()
      })()
      return closing
    }
  }
}

/** The foreground process of a router with --workers: start, then drain every worker and exit 0 on SIGTERM/SIGINT. */
export async function runRouterPrimary(settings: RouterSettings): Promise<void> {
  const log = pino({ level: settings.logLevel })
  const running = await startRouterPrimary(settings)
  closeOnSignals(() => running.close(), log, running.tls ? { keepSignals: ['SIGHUP'] } : {})
}
