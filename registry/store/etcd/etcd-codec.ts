/**
 * The etcd v3 HTTP/JSON gateway's encoding, turned into plain values: keys and values
 * travel as base64 (bytes), int64 fields as decimal strings, and fields at their default
 * (0, false, empty, the first enum member) are left out of answers altogether.
 */

/** Key or value bytes as the caller gives them: text is UTF-8. */
export type EtcdBytes = string | Uint8Array

export function toBytes(value: EtcdBytes): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value.buffer, value.byteOffset, value.byteLength)
}

export function encodeBytes(value: EtcdBytes): string {
  return toBytes(value).toString('base64')
}

export function decodeText(base64: string | undefined): string {
  return base64 ? Buffer.from(base64, 'base64').toString('utf8') : ''
}

/**
 * An int64 field as a number. Revisions, versions, counts and TTLs stay far below 2^53;
 * one that does not is refused rather than rounded. Lease, member and cluster ids are
 * random 63-bit numbers: they are kept as strings (see `parseId`).
 */
export function parseInt64(value: string | number | undefined, field: string): number {
  if (value === undefined) return 0
  const parsed = typeof value === 'number' ? value : Number(value)
  if (!Number.isSafeInteger(parsed)) throw new TypeError(`etcd sent ${field} = ${String(value).slice(0, 40)}, not a safe integer`)
  return parsed
}

/** An int64 id (lease, member, cluster) as its decimal string; "0" when absent. */
export function parseId(value: string | number | undefined): string {
  return value === undefined ? '0' : String(value)
}

/**
 * The range end that selects every key starting with `prefix` (etcd's "prefix" range):
 * the prefix with its last byte below 0xff incremented and what follows dropped; a
 * prefix of only 0xff bytes (or an empty one) has no end, which etcd spells as one NUL byte.
 */
export function prefixRangeEnd(prefix: EtcdBytes): Buffer {
  const bytes = Buffer.from(toBytes(prefix))
  for (let index = bytes.length - 1; index >= 0; index--) {
    const byte = bytes[index] as number
    if (byte < 0xff) {
      bytes[index] = byte + 1
      return bytes.subarray(0, index + 1)
    }
  }
  return Buffer.from([0])
}

export interface EtcdResponseHeader {
  /** the store's revision when the answer was made */
  revision: number
  raftTerm: number
  memberId: string
  clusterId: string
}

export interface EtcdKeyValue {
  key: string
  /** UTF-8 text; empty for keys-only ranges and delete events */
  value: string
  /** 0 in a delete event's kv */
  createRevision: number
  modRevision: number
  /** how many times the key was written since it was created; 0 in a delete event */
  version: number
  /** the lease the key is attached to; "0" for none */
  lease: string
}

export interface RawHeader {
  cluster_id?: string
  member_id?: string
  revision?: string
  raft_term?: string
}

export interface RawKeyValue {
  key?: string
  value?: string
  create_revision?: string
  mod_revision?: string
  version?: string
  lease?: string
}

export function parseHeader(raw: RawHeader | undefined): EtcdResponseHeader {
  return {
    revision: parseInt64(raw?.revision, 'header.revision'),
    raftTerm: parseInt64(raw?.raft_term, 'header.raft_term'),
    memberId: parseId(raw?.member_id),
    clusterId: parseId(raw?.cluster_id)
  }
}

export function parseKeyValue(raw: RawKeyValue): EtcdKeyValue {
  return {
    key: decodeText(raw.key),
    value: decodeText(raw.value),
    createRevision: parseInt64(raw.create_revision, 'kv.create_revision'),
    modRevision: parseInt64(raw.mod_revision, 'kv.mod_revision'),
    version: parseInt64(raw.version, 'kv.version'),
    lease: parseId(raw.lease)
  }
}
