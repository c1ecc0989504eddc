/**
 * Where the registry keeps its state in etcd, under one prefix (default `/switchyard`):
 *
 *   <prefix>/head                     the registry revision of the newest change ("17")
 *   <prefix>/journal/<revision>       one change (JSON), revision zero-padded to 16 digits
 *                                     so that key order is revision order
 *   <prefix>/snapshot                 pointer to the newest compacted state: {revision, id, parts}
 *   <prefix>/snapshot-parts/<id>/<n>  that state's JSON in parts (etcd refuses values over
 *                                     --max-request-bytes, 1.5 MiB by default)
 *   <prefix>/leader                   the replica that decides lease expiries, rollout steps and
 *                                     snapshots (on its etcd lease)
 *   <prefix>/heartbeats/<replica>     instance heartbeats a replica received lately (on its lease)
 *   <prefix>/routers/<router>         the router's latest report, from the replica it reached (on its lease)
 *
 * Revisions are the registry's own, one per change and without gaps, so they mean the
 * same on every replica and a watcher can resume anywhere; etcd's revisions are not
 * dense (every heartbeat batch takes one).
 */
export class EtcdLayout {
  readonly head: string
  readonly journal: string
  readonly snapshot: string
  readonly snapshotParts: string
  readonly leader: string
  readonly heartbeats: string
  readonly routers: string

  constructor(readonly prefix: string) {
    const base = prefix.replace(/\/+$/, '')
    this.head = `${base}/head`
    this.journal = `${base}/journal/`
    this.snapshot = `${base}/snapshot`
    this.snapshotParts = `${base}/snapshot-parts/`
    this.leader = `${base}/leader`
    this.heartbeats = `${base}/heartbeats/`
    this.routers = `${base}/routers/`
  }

  journalKey(revision: number): string {
    return `${this.journal}${String(revision).padStart(16, '0')}`
  }

  revisionOf(journalKey: string): number {
    return Number(journalKey.slice(this.journal.length))
  }

  snapshotPartKey(id: string, part: number): string {
    return `${this.snapshotParts}${id}/${String(part).padStart(6, '0')}`
  }

  heartbeatKey(replica: string): string {
    return `${this.heartbeats}${replica}`
  }
}
