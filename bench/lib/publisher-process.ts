import { fileURLToPath } from 'node:url'
import type { PublishReply, PublishRequest } from '../servers/confirmed-publisher.js'
import { spawnChild, type Child } from './children.js'

const publisherPath = fileURLToPath(new URL('../servers/confirmed-publisher.js', import.meta.url))

/**
 * The messages scenario's producer (bench/servers/confirmed-publisher.ts) as a process of
 * its own, kept for the whole scenario: one publish at a time, each answered with the
 * seconds from the first publish to the last confirm.
 */
export class PublisherProcess {
  readonly child: Child
  private pending: { resolve(seconds: number): void; reject(error: Error): void } | undefined

  constructor(brokerUrl: string, cpus: string | undefined) {
    this.child = spawnChild('publisher', process.execPath, [publisherPath], { cpus, ipc: true, env: { AMQP_URL: brokerUrl } })
    this.child.process.on('message', (reply: PublishReply) => {
      const pending = this.pending
      this.pending = undefined
      if (reply.ok) pending?.resolve(reply.seconds)
      else pending?.reject(new Error(`the publisher failed: ${reply.error}`))
    })
    void this.child.exited.then((code) => {
      this.pending?.reject(new Error(`the publisher exited (${code}): ${this.child.output().slice(-2000)}`))
      this.pending = undefined
    })
  }

  /** Publishes and resolves with the seconds it took, confirms included. */
  publish(request: PublishRequest): Promise<number> {
    if (this.pending) return Promise.reject(new Error('the publisher runs one publish at a time'))
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject }
      this.child.process.send(request)
    })
  }
}
