import type { RegistryChange, RegistrySnapshot } from '../../core/registry-events.js'
import type { VersionCounters } from '../../core/signals/counters.js'
import type { ProxyConfig, RouterSettings } from '../config.js'
import type { SharedEjection } from '../upstream/endpoint.js'

/**
 * What a router's primary and its workers tell each other over the cluster IPC channel
 * (JSON). Every message carries `kind` with this prefix, so that other users of the
 * channel (cluster's own, prom-client's) are told apart.
 */
export const PREFIX = 'switchyard:'

/** Per service and version, running totals since the worker started (router/metrics.ts signalCounters). */
export type SignalCounters = Record<string, Record<string, VersionCounters>>

/** Primary to worker. */
export type ToWorker =
  /** the first message: what to run, and the registry's state when the primary has one */
  | { kind: 'switchyard:start'; settings: RouterSettings; config: ProxyConfig; adminUrl: string; snapshot: RegistrySnapshot | undefined }
  | { kind: 'switchyard:snapshot'; snapshot: RegistrySnapshot }
  | { kind: 'switchyard:change'; change: RegistryChange }
  /** an admin request the primary answers with every worker's part */
  | { kind: 'switchyard:ask'; id: number; question: Question }
  /** SIGTERM reached the primary: stop accepting, drain, exit */
  | { kind: 'switchyard:drain' }
  /** another worker's outlier detection ejected an instance: keep it out here too */
  | { kind: 'switchyard:ejected'; ejection: SharedEjection }

export type Question = 'routes' | 'metrics'

/** Worker to primary. */
export type ToPrimary =
  /** its IPC listener is in place: the primary may send `start` */
  | { kind: 'switchyard:hello' }
  /** its proxy listens on the shared port */
  | { kind: 'switchyard:listening'; url: string }
  /** what it applied (ready: it has a table) and counted: at once after each new table, then every report interval */
  | { kind: 'switchyard:report'; appliedRevision: number; ready: boolean; counters: SignalCounters }
  | { kind: 'switchyard:answer'; id: number; body: unknown }
  /** its outlier detection ejected an instance: the primary passes it to the other workers */
  | { kind: 'switchyard:ejected'; ejection: SharedEjection }

export function isToWorker(message: unknown): message is ToWorker {
  return isOurs(message)
}

export function isToPrimary(message: unknown): message is ToPrimary {
  return isOurs(message)
}

function isOurs(message: unknown): boolean {
  return typeof message === 'object' && message !== null && typeof (message as { kind?: unknown }).kind === 'string' && (message as { kind: string }).kind.startsWith(PREFIX)
}
