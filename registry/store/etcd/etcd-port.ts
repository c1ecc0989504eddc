/**
 * What the etcd store needs from an etcd client, and no more: the store is written
 * against this, and `etcd-client-port.ts` fits the HTTP/JSON gateway client to it.
 */
export interface EtcdKv {
  readonly key: string
  /** UTF-8 text (the registry stores JSON) */
  readonly value: string
  readonly createRevision: number
  readonly modRevision: number
}

export type EtcdCompare =
  | { readonly key: string; readonly target: 'value'; readonly value: string }
  /** 0 means the key does not exist */
  | { readonly key: string; readonly target: 'createRevision'; readonly revision: number }

export type EtcdOp =
  | { readonly put: { readonly key: string; readonly value: string; readonly lease?: string } }
  | { readonly range: { readonly key: string } }
  /** every key in [key, rangeEnd) */
  | { readonly deleteRange: { readonly key: string; readonly rangeEnd: string } }

export interface EtcdTxnResult {
  readonly succeeded: boolean
  /** etcd's revision after the transaction */
  readonly revision: number
  /** one per op of the branch taken; range ops carry their key-values */
  readonly responses: readonly { readonly kvs?: readonly EtcdKv[] }[]
}

export interface EtcdRange {
  /** etcd's revision the range was read at */
  readonly revision: number
  readonly kvs: readonly EtcdKv[]
  readonly more: boolean
}

export interface EtcdWatchEvent {
  readonly type: 'put' | 'delete'
  readonly kv: EtcdKv
}

export interface EtcdWatch {
  /** settles when the watch ends: rejects with ETCD_COMPACTED (history gone), ETCD_UNAVAILABLE (stream lost), resolves on cancel */
  readonly ended: Promise<void>
  cancel(): void
}

export interface EtcdPort {
  /** the keys in [key, rangeEnd) (or just `key`), optionally at an older etcd revision */
  range(key: string, options?: { rangeEnd?: string; revision?: number; limit?: number }): Promise<EtcdRange>
  txn(compare: readonly EtcdCompare[], success: readonly EtcdOp[], failure: readonly EtcdOp[]): Promise<EtcdTxnResult>
  deleteRange(key: string, rangeEnd: string): Promise<void>
  /** events on [key, rangeEnd) from `startRevision` on, each etcd revision's events together and in order */
  watch(key: string, rangeEnd: string, startRevision: number, onEvents: (events: readonly EtcdWatchEvent[]) => void): EtcdWatch
  grantLease(ttlSeconds: number): Promise<string>
  /** the lease's remaining TTL in seconds; 0 when etcd no longer has it */
  keepAlive(lease: string): Promise<number>
  revokeLease(lease: string): Promise<void>
  close(): Promise<void>
}

/** The end of etcd's range for every key starting with `prefix` (etcd's "prefix" range_end). */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8')
  for (let i = bytes.length - 1; i >= 0; i--) {
    if ((bytes[i] as number) < 0xff) {
      bytes[i] = (bytes[i] as number) + 1
      return bytes.subarray(0, i + 1).toString('latin1')
    }
  }
  return '\u0000'
}

/**
 * Watches every key under `prefix` from now on (older values are stale for these
 * replica-to-replica channels), and watches again after a break until `stopped()`.
 * `onWatch` is given each watch so that its owner can cancel it.
 */
export function followPrefixFromNow(
  etcd: EtcdPort,
  prefix: string,
  onEvents: (events: readonly EtcdWatchEvent[]) => void,
  hooks: { stopped: () => boolean; onWatch: (watch: EtcdWatch) => void; onError: (error: Error, what: string) => void; what: string }
): void {
  if (hooks.stopped()) return
  const end = prefixEnd(prefix)
  void etcd
    .range(prefix, { rangeEnd: end, limit: 1 })
    .then((range) => {
      if (hooks.stopped()) return
      const watch = etcd.watch(prefix, end, range.revision + 1, onEvents)
      hooks.onWatch(watch)
      return watch.ended
    })
    .catch((error: unknown) => hooks.onError(error as Error, `${hooks.what} ended; watching again`))
    .finally(() => {
      if (!hooks.stopped()) setTimeout(() => followPrefixFromNow(etcd, prefix, onEvents, hooks), 500).unref()
    })
}
