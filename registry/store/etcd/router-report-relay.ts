import type { EtcdPort } from './etcd-port.js'
import { followPrefixFromNow } from './etcd-port.js'

export interface RelayedReport {
  /** the replica the router reported to */
  replica: string
  /** the token name that sent it (router ids belong to the token that first reported them) */
  reporter: string
  report: unknown
}

export interface RouterReportRelayOptions {
  etcd: EtcdPort
  /** the routers prefix, e.g. /switchyard/routers/ */
  prefix: string
  replicaId: string
  lease: () => string | undefined
  onError: (error: Error, what: string) => void
}

/**
 * A router reports to whichever replica its client reaches; every replica must see every
 * router (for /v1/routers, `weights set --wait` and the leader's rollout judgement). Each
 * report received is put under the router's key on the receiving replica's etcd lease
 * (one small write per router per second), and every replica applies the others' puts
 * as if the router had reported to it.
 */
export class RouterReportRelay {
  private readonly options: RouterReportRelayOptions
  private readonly listeners: ((relayed: RelayedReport) => void)[] = []
  private watch: { cancel(): void } | undefined
  private stopped = false

  constructor(options: RouterReportRelayOptions) {
    this.options = options
  }

  share(routerId: string, reporter: string, report: unknown): void {
    const lease = this.options.lease()
    if (lease === undefined || this.stopped) return
    const value = JSON.stringify({ replica: this.options.replicaId, reporter, report } satisfies RelayedReport)
    this.options.etcd
      .txn([], [{ put: { key: `${this.options.prefix}${routerId}`, value, lease } }], [])
      .catch((error: unknown) => this.options.onError(error as Error, 'passing a router report to the other replicas failed'))
  }

  onRemote(listener: (relayed: RelayedReport) => void): void {
    this.listeners.push(listener)
  }

  start(): void {
    this.follow()
  }

  stop(): void {
    this.stopped = true
    this.watch?.cancel()
  }

  private follow(): void {
    followPrefixFromNow(
      this.options.etcd,
      this.options.prefix,
      (events) => {
        for (const event of events) {
          if (event.type !== 'put') continue
          const relayed = JSON.parse(event.kv.value) as RelayedReport
          if (relayed.replica === this.options.replicaId) continue
          for (const listener of this.listeners) listener(relayed)
        }
      },
      { stopped: () => this.stopped, onWatch: (watch) => (this.watch = watch), onError: this.options.onError, what: 'the router report watch' }
    )
  }
}
