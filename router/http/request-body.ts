import { Readable } from 'node:stream'

/**
 * The client's request body, handed to one upstream attempt. It starts reading the client
 * only when undici asks for the first chunk, so an attempt that fails before that (a
 * refused or timed-out connection) leaves the body untouched and a retry can send it
 * whole. undici destroys the body of a failed attempt; that destroys this wrapper, never
 * the client's stream.
 */
export class RequestBody extends Readable {
  private source: Readable | undefined
  private started = false

  constructor(source: Readable) {
    super()
    this.source = source
  }

  /** true once any byte may have been taken from the client: the body can no longer be replayed */
  get touched(): boolean {
    return this.started
  }

  private readonly onData = (chunk: Buffer) => {
    if (!this.push(chunk)) this.source?.pause()
  }
  private readonly onEnd = () => this.push(null)
  private readonly onError = (error: Error) => this.destroy(error)

  override _read(): void {
    const source = this.source
    if (!source) return
    if (!this.started) {
      this.started = true
      source.on('data', this.onData)
      source.once('end', this.onEnd)
      source.once('error', this.onError)
    }
    source.resume()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const source = this.source
    if (source) {
      source.off('data', this.onData)
      source.off('end', this.onEnd)
      source.off('error', this.onError)
      source.pause()
    }
    this.source = undefined
    callback(error)
  }
}
