import { randomUUID } from 'node:crypto'
import { SwitchyardError } from '../../../core/errors.js'
import type { RegistryChange } from '../../../core/registry-events.js'
import { CorruptStoreError, type ChangeFollower, type CommitOutcome, type LoadedState, type PersistedState, type SharedRegistryStore } from '../registry-store.js'
import { EtcdLayout } from './etcd-layout.js'
import { prefixEnd, type EtcdKv, type EtcdPort, type EtcdWatch, type EtcdWatchEvent } from './etcd-port.js'
import { HeartbeatExchange } from './heartbeat-exchange.js'
import { LeaderRole } from './leader-role.js'
import { RouterReportRelay } from './router-report-relay.js'

export interface EtcdStoreOptions {
  etcd: EtcdPort
  /** key prefix, e.g. /switchyard */
  prefix: string
  /** this replica's name in etcd (leader role, heartbeat batches); unique per process */
  replicaId: string
  /** changes kept in etcd below the newest snapshot, so that watchers far behind can still resume */
  historyRetention?: number
  /** changes after which the sweeper writes a new snapshot and trims the journal */
  snapshotEvery?: number
  /** TTL of this replica's etcd lease (leader role, heartbeat batches) */
  replicaLeaseSeconds?: number
  /** how often heartbeats received here are passed to the other replicas */
  heartbeatFlushMs?: number
  /** etcd errors worth a log line (the store retries on its own) */
  onError?: (error: Error, what: string) => void
}

/** One value per part: well under etcd's default --max-request-bytes (1.5 MiB). */
const SNAPSHOT_PART_BYTES = 512 * 1024
/** etcd's default --max-txn-ops is 128: changes plus the head in one transaction stay under it. */
export const MAX_CHANGES_PER_COMMIT = 120
const RANGE_PAGE = 1000

interface SnapshotPointer {
  revision: number
  id: string
  parts: number
}

/**
 * The registry's state in etcd, shared by any number of registry replicas (layout in
 * etcd-layout.ts). A commit is one etcd transaction that writes the changes and the new
 * head only if the head is still the revision they were drafted on: two replicas can
 * never both win, and a write answered 200 is on a quorum of etcd members. Every
 * replica, the writer included, applies committed changes from one etcd watch on the
 * journal, in revision order; when that watch breaks (etcd compacted its history, the
 * member died) the store lists the journal from the last revision it delivered, so no
 * change is skipped, and only when the journal itself was trimmed past it does the
 * replica start over from the snapshot (`reset`), never silently after a gap.
 */
export class EtcdStore implements SharedRegistryStore {
  readonly shared = true as const
  private readonly etcd: EtcdPort
  private readonly layout: EtcdLayout
  private readonly retention: number
  private readonly snapshotEvery: number
  private readonly onError: (error: Error, what: string) => void
  private readonly role: LeaderRole
  private readonly exchange: HeartbeatExchange
  private readonly relay: RouterReportRelay
  /** the newest revision delivered to the follower (or loaded) */
  private delivered = 0
  /** etcd revision the loaded state was read at: the watch starts after it */
  private readAt = 0
  private follower: ChangeFollower | undefined
  private watch: EtcdWatch | undefined
  private closed = false
  private compactionSource: (() => PersistedState) | undefined
  private snapshotRevision = 0
  private compacting = false
  /** set while the journal watch is broken and listing again has not yet worked */
  private brokenSince: number | undefined

  constructor(options: EtcdStoreOptions) {
    this.etcd = options.etcd
    this.layout = new EtcdLayout(options.prefix)
    this.retention = options.historyRetention ?? 10_000
    this.snapshotEvery = options.snapshotEvery ?? 10_000
    this.onError = options.onError ?? (() => {})
    const leaseSeconds = options.replicaLeaseSeconds ?? 10
    this.role = new LeaderRole({ etcd: this.etcd, key: this.layout.leader, replicaId: options.replicaId, leaseSeconds, onError: this.onError })
    this.exchange = new HeartbeatExchange({
      etcd: this.etcd,
      key: this.layout.heartbeatKey(options.replicaId),
      lease: () => this.role.lease,
      flushMs: options.heartbeatFlushMs ?? 1000,
      onError: this.onError
    })
    this.relay = new RouterReportRelay({ etcd: this.etcd, prefix: this.layout.routers, replicaId: options.replicaId, lease: () => this.role.lease, onError: this.onError })
  }

  async open(): Promise<LoadedState> {
    // The first replica ever creates the head; the others find it.
    await this.etcd.txn([{ key: this.layout.head, target: 'createRevision', revision: 0 }], [{ put: { key: this.layout.head, value: '0' } }], [])
    const loaded = await this.load()
    await this.role.start()
    this.exchange.start()
    this.relay.start()
    return loaded
  }

  follow(follower: ChangeFollower): void {
    this.follower = follower
    this.startWatch(this.readAt + 1)
  }

  async commit(changes: readonly RegistryChange[], expectedRevision: number, options: { asLeader?: boolean } = {}): Promise<CommitOutcome> {
    if (changes.length > MAX_CHANGES_PER_COMMIT) {
      throw new SwitchyardError('INTERNAL', `${changes.length} changes in one commit; the etcd store takes at most ${MAX_CHANGES_PER_COMMIT}`)
    }
    const last = expectedRevision + changes.length
    const compare = [{ key: this.layout.head, target: 'value' as const, value: String(expectedRevision) }]
    if (options.asLeader) compare.push({ key: this.layout.leader, target: 'value', value: this.role.replicaId })
    const result = await this.etcd.txn(
      compare,
      [
        { put: { key: this.layout.head, value: String(last) } },
        ...changes.map((change) => ({ put: { key: this.layout.journalKey(change.revision), value: JSON.stringify(change) } }))
      ],
      [{ range: { key: this.layout.head } }, { range: { key: this.layout.leader } }]
    )
    if (result.succeeded) return { result: 'committed' }
    const head = Number(result.responses[0]?.kvs?.[0]?.value ?? '0')
    const leader = result.responses[1]?.kvs?.[0]?.value
    if (options.asLeader && leader !== this.role.replicaId) {
      this.role.lost()
      return { result: 'fenced', head }
    }
    return { result: 'conflict', head }
  }

  async headRevision(): Promise<number> {
    const range = await this.etcd.range(this.layout.head)
    return Number(range.kvs[0]?.value ?? '0')
  }

  following(): boolean {
    return this.brokenSince === undefined
  }

  isLeader(): boolean {
    return this.role.held()
  }

  shareHeartbeat(service: string, id: string): void {
    this.exchange.add(service, id)
  }

  onRemoteHeartbeats(listener: (instances: readonly { service: string; id: string }[]) => void): void {
    this.exchange.onRemote(listener)
  }

  shareRouterReport(routerId: string, reporter: string, report: unknown): void {
    this.relay.share(routerId, reporter, report)
  }

  onRemoteRouterReport(listener: (reporter: string, report: unknown) => void): void {
    this.relay.onRemote((relayed) => listener(relayed.reporter, relayed.report))
  }

  setCompactionSource(source: () => PersistedState): void {
    this.compactionSource = source
  }

  async close(): Promise<void> {
    this.closed = true
    this.watch?.cancel()
    this.relay.stop()
    await this.exchange.stop()
    await this.role.stop()
    await this.etcd.close()
  }

  // ---- loading ----

  /** Reads the snapshot and the journal after it (and the kept history before it) at one etcd revision. */
  private async load(): Promise<LoadedState> {
    const headRange = await this.etcd.range(this.layout.head)
    const at = headRange.revision
    const head = Number(headRange.kvs[0]?.value ?? '0')
    const pointerKv = (await this.etcd.range(this.layout.snapshot, { revision: at })).kvs[0]
    let base: PersistedState | undefined
    if (pointerKv) {
      const pointer = JSON.parse(pointerKv.value) as SnapshotPointer
      const parts = await this.rangeAll(this.layout.snapshotParts + pointer.id + '/', prefixEnd(this.layout.snapshotParts + pointer.id + '/'), at)
      if (parts.length !== pointer.parts) throw new CorruptStoreError(`the etcd snapshot at revision ${pointer.revision} has ${parts.length} of ${pointer.parts} parts`)
      base = JSON.parse(parts.map((part) => part.value).join('')) as PersistedState
      this.snapshotRevision = pointer.revision
    }
    const baseRevision = base?.snapshot.revision ?? 0
    const journal = (await this.rangeAll(this.layout.journal, prefixEnd(this.layout.journal), at)).map((kv) => JSON.parse(kv.value) as RegistryChange)
    const changes = journal.filter((change) => change.revision > baseRevision)
    let expected = baseRevision
    for (const change of changes) {
      if (change.revision !== expected + 1) throw new CorruptStoreError(`the etcd journal jumps from revision ${expected} to ${change.revision}`)
      expected = change.revision
    }
    if (expected !== head) throw new CorruptStoreError(`the etcd head says revision ${head} but the journal ends at ${expected}`)
    const recent = contiguousTail(
      journal.filter((change) => change.revision <= baseRevision),
      baseRevision
    )
    this.readAt = at
    this.delivered = head
    return { base, changes, recent }
  }

  private async rangeAll(key: string, rangeEnd: string, revision: number): Promise<EtcdKv[]> {
    const out: EtcdKv[] = []
    let from = key
    for (;;) {
      const page = await this.etcd.range(from, { rangeEnd, revision, limit: RANGE_PAGE })
      out.push(...page.kvs)
      if (!page.more || page.kvs.length === 0) return out
      from = `${(page.kvs[page.kvs.length - 1] as EtcdKv).key}\u0000`
    }
  }

  // ---- following ----

  private startWatch(fromRevision: number): void {
    if (this.closed) return
    const watch = this.etcd.watch(this.layout.journal, prefixEnd(this.layout.journal), fromRevision, (events) => this.onJournalEvents(events))
    this.watch = watch
    watch.ended.then(
      () => undefined,
      (error: unknown) => {
        if (this.closed || this.watch !== watch) return
        this.onError(error as Error, 'the journal watch ended; listing the journal from the last delivered revision')
        this.brokenSince ??= Date.now()
        void this.relist()
      }
    )
  }

  private onJournalEvents(events: readonly EtcdWatchEvent[]): void {
    for (const event of events) {
      if (event.type !== 'put') continue
      const change = JSON.parse(event.kv.value) as RegistryChange
      if (change.revision <= this.delivered) continue
      if (change.revision !== this.delivered + 1) {
        // Never apply past a gap: find out what is missing from the journal itself.
        this.watch?.cancel()
        this.watch = undefined
        void this.relist()
        return
      }
      this.deliver(change)
    }
  }

  private deliver(change: RegistryChange): void {
    this.delivered = change.revision
    this.follower?.change(change)
    this.maybeCompact(change.revision)
  }

  /**
   * The watch broke: list the journal after the last delivered revision, deliver it, and
   * watch again from the etcd revision of that list. If the journal no longer goes back
   * that far, start over from the snapshot.
   */
  private async relist(): Promise<void> {
    for (let attempt = 0; !this.closed; attempt++) {
      try {
        const page = await this.etcd.range(this.layout.journalKey(this.delivered + 1), { rangeEnd: prefixEnd(this.layout.journal), limit: 1 })
        const first = page.kvs[0]
        if (first && this.layout.revisionOf(first.key) !== this.delivered + 1) {
          const loaded = await this.load()
          this.follower?.reset(loaded)
          this.brokenSince = undefined
          this.startWatch(this.readAt + 1)
          return
        }
        const missed = await this.rangeAll(this.layout.journalKey(this.delivered + 1), prefixEnd(this.layout.journal), page.revision)
        for (const kv of missed) {
          const change = JSON.parse(kv.value) as RegistryChange
          if (change.revision === this.delivered + 1) this.deliver(change)
        }
        this.brokenSince = undefined
        this.startWatch(page.revision + 1)
        return
      } catch (error) {
        this.onError(error as Error, 'listing the journal failed; retrying')
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** Math.min(attempt, 6))))
      }
    }
  }

  // ---- compaction: the leader writes snapshots and trims the journal ----

  private maybeCompact(revision: number): void {
    if (this.compacting || !this.compactionSource || !this.role.held() || revision - this.snapshotRevision < this.snapshotEvery) return
    this.compacting = true
    void this.compact()
      .catch((error: unknown) => this.onError(error as Error, 'writing an etcd snapshot failed; the journal grows until the next attempt'))
      .finally(() => {
        this.compacting = false
      })
  }

  /**
   * Writes the followed state as a snapshot in parts, points to it, then deletes journal
   * records more than `historyRetention` below it and the previous snapshot's parts. A
   * crash between the steps leaves extra keys, never a missing one.
   */
  async compact(): Promise<number> {
    const previous = (await this.etcd.range(this.layout.snapshot)).kvs[0]
    const previousPointer = previous ? (JSON.parse(previous.value) as SnapshotPointer) : undefined
    // Another leader before this one may have written one lately.
    if (previousPointer && this.delivered - previousPointer.revision < this.snapshotEvery) {
      this.snapshotRevision = previousPointer.revision
      return previousPointer.revision
    }
    const state = (this.compactionSource as () => PersistedState)()
    const revision = state.snapshot.revision
    const text = JSON.stringify(state)
    const id = `${revision}-${randomUUID().slice(0, 8)}`
    const parts = Math.max(1, Math.ceil(text.length / SNAPSHOT_PART_BYTES))
    for (let part = 0; part < parts; part++) {
      await this.etcd.txn([], [{ put: { key: this.layout.snapshotPartKey(id, part), value: text.slice(part * SNAPSHOT_PART_BYTES, (part + 1) * SNAPSHOT_PART_BYTES) } }], [])
    }
    await this.etcd.txn([], [{ put: { key: this.layout.snapshot, value: JSON.stringify({ revision, id, parts } satisfies SnapshotPointer) } }], [])
    this.snapshotRevision = revision
    const keepFrom = revision - this.retention + 1
    if (keepFrom > 1) await this.etcd.deleteRange(this.layout.journal, this.layout.journalKey(keepFrom))
    if (previousPointer) {
      const old = previousPointer.id
      if (old !== id) await this.etcd.deleteRange(this.layout.snapshotParts + old + '/', prefixEnd(this.layout.snapshotParts + old + '/'))
    }
    return revision
  }
}

/** The changes that end exactly at `revision` without a gap (older ones are useless to a watcher). */
function contiguousTail(changes: readonly RegistryChange[], revision: number): RegistryChange[] {
  let start = changes.length
  let expected = revision
  while (start > 0 && (changes[start - 1] as RegistryChange).revision === expected) {
    start--
    expected--
  }
  return changes.slice(start)
}
