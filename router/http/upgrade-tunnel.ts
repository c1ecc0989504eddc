import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import type { Endpoint } from '../upstream/endpoint.js'
import { closeFrame, FrameBoundary } from './websocket-frames.js'

/** WebSocket close code 1001: the endpoint (here, one side or the router) is going away. */
export const GOING_AWAY = 1001
/** After the router ends a connection, how long its peers have to close before their sockets are destroyed. */
const CLOSE_GRACE_MS = 2_000

/** One way through the tunnel. */
class Direction {
  /** the router ends this way at the end of the current frame */
  closing = false
  /** this way is over: bytes still arriving are dropped */
  done = false
  readonly resume = () => this.source.resume()

  constructor(
    readonly source: Socket,
    readonly target: Socket,
    /** frame boundaries, for WebSocket only */
    readonly frames: FrameBoundary | undefined,
    /** frames sent this way must be masked (client -> upstream) */
    readonly masked: boolean
  ) {}
}

export interface TunnelTarget {
  endpoint: Endpoint
  service: string
  version: string
}

/**
 * One upgraded connection: bytes both ways with backpressure until either side closes.
 * A side that ends (FIN) ends the other; a side that fails (reset) destroys the other.
 * Where the protocol is WebSocket, a side that goes away without a close frame, and the
 * router itself when it ends the connection (instance drained, shutdown, idle), leave a
 * close frame 1001 between two frames of the other side(s) before ending it.
 */
export class UpgradeTunnel {
  closed = false
  private readonly toUpstream: Direction
  private readonly toClient: Direction
  private grace: NodeJS.Timeout | undefined
  private reason = ''

  constructor(
    readonly client: Socket,
    readonly upstream: Socket,
    readonly target: TunnelTarget,
    websocket: boolean,
    private readonly onClosed: (tunnel: UpgradeTunnel) => void
  ) {
    this.toUpstream = new Direction(client, upstream, websocket ? new FrameBoundary() : undefined, true)
    this.toClient = new Direction(upstream, client, websocket ? new FrameBoundary() : undefined, false)
  }

  /** Starts the flow with the bytes that came with each side's head; idle after `idleMs` without a byte either way. */
  start(clientHead: Buffer, upstreamHead: Buffer, idleMs: number): void {
    for (const direction of [this.toUpstream, this.toClient]) {
      const { source } = direction
      source.on('data', (chunk: Buffer) => this.forward(direction, chunk))
      source.on('end', () => this.ended(direction))
      source.on('error', () => this.failed())
      source.on('close', () => this.sideClosed(direction))
    }
    // Reads and writes both count as activity on the client's socket: one timer covers both ways.
    this.client.setTimeout(idleMs, () => this.close(GOING_AWAY, 'idle timeout'))
    this.client.setNoDelay(true)
    this.upstream.setNoDelay(true)
    if (upstreamHead.length > 0) this.forward(this.toClient, upstreamHead)
    if (clientHead.length > 0) this.forward(this.toUpstream, clientHead)
    // Either side may have gone while the handshake finished.
    if (this.client.destroyed || this.upstream.destroyed) this.failed()
  }

  /** The router ends the connection: at the end of the frame in flight each way, a close frame, then FIN. */
  close(code: number, reason: string): void {
    if (this.closed || this.grace) return
    this.grace = setTimeout(() => this.destroy(), CLOSE_GRACE_MS).unref()
    this.reason = reason
    for (const direction of [this.toUpstream, this.toClient]) {
      if (direction.done) continue
      if (!direction.frames || direction.frames.atBoundary) this.finish(direction, code)
      else direction.closing = true
    }
  }

  private forward(direction: Direction, chunk: Buffer): void {
    if (direction.done) return
    const { frames } = direction
    let data = chunk
    if (frames) {
      if (direction.closing) {
        const used = frames.feed(chunk, true)
        if (used < chunk.length) data = chunk.subarray(0, used)
      } else {
        frames.feed(chunk)
      }
    }
    if (!direction.target.write(data)) {
      direction.source.pause()
      direction.target.once('drain', direction.resume)
    }
    if (direction.closing && frames?.atBoundary) this.finish(direction, GOING_AWAY)
  }

  /** A side sent FIN: the other side is told (a close frame if none went its way) and ended. */
  private ended(direction: Direction): void {
    if (direction.done) return
    this.reason ||= direction.masked ? 'client went away' : 'upstream went away'
    if (direction.frames && !direction.frames.atBoundary) {
      // Cut inside a frame: no frame of the router's can follow it.
      direction.done = true
      direction.target.end()
      return
    }
    this.finish(direction, GOING_AWAY)
  }

  /** Ends one way: a close frame where WebSocket allows one, then FIN. */
  private finish(direction: Direction, code: number): void {
    direction.done = true
    const { target, frames } = direction
    if (frames && !frames.closeSeen && target.writable) {
      frames.closeSeen = true
      target.write(closeFrame(code, this.reason, direction.masked ? randomBytes(4) : undefined))
    }
    target.end()
  }

  /** A reset or socket error on either side: the other side is reset too. */
  private failed(): void {
    this.destroy()
  }

  private sideClosed(direction: Direction): void {
    // The other side's pending writes go out, then it closes.
    if (this.client.destroyed && this.upstream.destroyed) this.done()
    else direction.target.destroySoon()
  }

  private destroy(): void {
    this.client.destroy()
    this.upstream.destroy()
    this.done()
  }

  private done(): void {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.grace)
    this.onClosed(this)
  }
}
