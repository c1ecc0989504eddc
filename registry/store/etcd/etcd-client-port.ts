import { EtcdClient, type EtcdClientOptions, type EtcdCompare as ClientCompare, type EtcdOp as ClientOp } from './etcd-client.js'
import type { EtcdCompare, EtcdKv, EtcdOp, EtcdPort, EtcdRange, EtcdTxnResult, EtcdWatch, EtcdWatchEvent } from './etcd-port.js'

/**
 * The store's view of etcd (EtcdPort) on the HTTP/JSON gateway client. Commits are not
 * marked idempotent: a commit whose answer was lost is reported, not sent again (sent
 * again it would fail its compare and look like someone else's write).
 */
export class EtcdClientPort implements EtcdPort {
  readonly client: EtcdClient

  constructor(options: EtcdClientOptions | EtcdClient) {
    this.client = options instanceof EtcdClient ? options : new EtcdClient(options)
  }

  async range(key: string, options: { rangeEnd?: string; revision?: number; limit?: number } = {}): Promise<EtcdRange> {
    const result = await this.client.range(key, {
      ...(options.rangeEnd !== undefined ? { rangeEnd: options.rangeEnd } : {}),
      ...(options.revision !== undefined ? { revision: options.revision } : {}),
      ...(options.limit !== undefined ? { limit: options.limit } : {})
    })
    return { revision: result.header.revision, kvs: result.kvs.map(kvOf), more: result.more }
  }

  async txn(compare: readonly EtcdCompare[], success: readonly EtcdOp[], failure: readonly EtcdOp[]): Promise<EtcdTxnResult> {
    const result = await this.client.txn({ compare: compare.map(compareOf), success: success.map(opOf), failure: failure.map(opOf) })
    return {
      succeeded: result.succeeded,
      revision: result.header.revision,
      responses: result.responses.map((response) => ('range' in response ? { kvs: response.range.kvs.map(kvOf) } : {}))
    }
  }

  async deleteRange(key: string, rangeEnd: string): Promise<void> {
    await this.client.delete(key, { rangeEnd, idempotent: true })
  }

  watch(key: string, rangeEnd: string, startRevision: number, onEvents: (events: readonly EtcdWatchEvent[]) => void): EtcdWatch {
    const watch = this.client.watch({ key, rangeEnd, startRevision })
    const ended = (async () => {
      for await (const batch of watch) {
        if (batch.events.length > 0) onEvents(batch.events.map((event) => ({ type: event.type === 'PUT' ? 'put' : 'delete', kv: kvOf(event.kv) })))
      }
    })()
    return { ended, cancel: () => watch.close() }
  }

  async grantLease(ttlSeconds: number): Promise<string> {
    return (await this.client.grantLease(ttlSeconds)).id
  }

  async keepAlive(lease: string): Promise<number> {
    return Math.max(0, await this.client.keepAliveOnce(lease))
  }

  async revokeLease(lease: string): Promise<void> {
    await this.client.revokeLease(lease)
  }

  close(): Promise<void> {
    return this.client.close()
  }
}

function kvOf(kv: { key: string; value: string; createRevision: number; modRevision: number }): EtcdKv {
  return { key: kv.key, value: kv.value, createRevision: kv.createRevision, modRevision: kv.modRevision }
}

function compareOf(compare: EtcdCompare): ClientCompare {
  return compare.target === 'value'
    ? { key: compare.key, result: 'EQUAL', target: 'VALUE', value: compare.value }
    : { key: compare.key, result: 'EQUAL', target: 'CREATE', createRevision: compare.revision }
}

function opOf(op: EtcdOp): ClientOp {
  if ('put' in op) return { put: { key: op.put.key, value: op.put.value, ...(op.put.lease !== undefined ? { lease: op.put.lease } : {}) } }
  if ('range' in op) return { range: { key: op.range.key } }
  return { delete: { key: op.deleteRange.key, rangeEnd: op.deleteRange.rangeEnd } }
}
