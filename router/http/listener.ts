import type { Server as HttpServer } from 'node:http'
import { createServer as createHttp2Server, type Http2Server, type ServerHttp2Session } from 'node:http2'
import type { Server as HttpsServer } from 'node:https'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { ProxyConfig } from '../config.js'
import type { Http2ProxyHandler } from './proxy.js'

/** What an HTTP/2 client sends first (RFC 9113 3.4); no HTTP/1.1 request starts with "PRI ". */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')

export interface ProxyListenerOptions {
  /** the HTTP/1.1 server Fastify listens with (https.Server for TLS) */
  server: HttpServer | HttpsServer
  tls: boolean
  http2Handler: Http2ProxyHandler
  http2: ProxyConfig['http2']
}

type ConnectionListener = (socket: Socket) => void

/**
 * HTTP/1.1 and HTTP/2 on one port. The listening server stays Node's HTTP/1.1 one
 * (Fastify's), so HTTP/1.1 connections take exactly the path they always took; only how
 * a connection is handed over changes:
 * - cleartext: the first bytes are read once per connection: the HTTP/2 preface goes to
 *   an HTTP/2 server (prior knowledge, RFC 9113 3.3), anything else, put back unread, to
 *   Node's HTTP/1.1 connection handling (whose parser still reads the socket natively);
 * - TLS: ALPN chose already (h2, else http/1.1).
 * HTTP/2 sessions are kept here for drain: a GOAWAY lets their streams finish.
 */
export class ProxyListener {
  readonly http2Server: Http2Server
  private readonly sessions = new Set<ServerHttp2Session>()
  /** cleartext connections whose first bytes have not come yet */
  private readonly sniffing = new Set<Socket>()
  private closing = false

  constructor(private readonly options: ProxyListenerOptions) {
    const { server, http2 } = options
    this.http2Server = createHttp2Server({ settings: { maxConcurrentStreams: http2.maxConcurrentStreams } })
    this.http2Server.on('request', options.http2Handler)
    this.http2Server.on('session', this.onSession)
    // Node's own handover to HTTP/1.1: taken out of the server's listeners and called for HTTP/1.1 connections.
    const event = options.tls ? 'secureConnection' : 'connection'
    const http1 = server.listeners(event) as ConnectionListener[]
    server.removeAllListeners(event)
    const toHttp1 = (socket: Socket) => {
      for (const listener of http1) listener.call(server, socket)
    }
    if (options.tls) {
      server.on('secureConnection', (socket: TLSSocket) => (socket.alpnProtocol === 'h2' ? this.toHttp2(socket) : toHttp1(socket)))
    } else {
      server.on('connection', (socket: Socket) => this.sniff(socket, toHttp1))
    }
  }

  /** HTTP/2 sessions open now */
  get sessionCount(): number {
    return this.sessions.size
  }

  /**
   * Drain: every HTTP/2 client gets a GOAWAY (streams under way finish, new ones go to
   * another connection), new ones get it at once, and connections that have not said
   * which protocol they speak are closed.
   */
  closeSessions(): void {
    this.closing = true
    for (const session of this.sessions) session.close()
    for (const socket of this.sniffing) socket.destroy()
  }

  /** The end of drain: whatever is still open is cut. */
  destroySessions(): void {
    for (const session of this.sessions) session.destroy()
  }

  private toHttp2(socket: Socket): void {
    this.http2Server.emit('connection', socket)
  }

  private readonly onSession = (session: ServerHttp2Session): void => {
    if (this.closing) {
      session.close()
      return
    }
    this.sessions.add(session)
    session.once('close', () => this.sessions.delete(session))
    // An idle client connection is told to go; streams still open on it finish first.
    session.setTimeout(this.options.http2.idleTimeoutMs, () => session.close())
  }

  /** Reads until the bytes tell HTTP/2's preface from anything else, then hands the connection over with them put back. */
  private sniff(socket: Socket, toHttp1: ConnectionListener): void {
    let received: Buffer | undefined
    const done = () => {
      socket.off('readable', onReadable)
      socket.off('error', onError)
      socket.off('timeout', onTimeout)
      socket.off('close', done)
      socket.setTimeout(0)
      this.sniffing.delete(socket)
    }
    const onReadable = () => {
      let chunk: Buffer | null
      while ((chunk = socket.read() as Buffer | null) !== null) received = received ? Buffer.concat([received, chunk]) : chunk
      if (!received) return
      const length = Math.min(received.length, PREFACE.length)
      const preface = received.compare(PREFACE, 0, length, 0, length) === 0
      if (preface && received.length < PREFACE.length) return
      done()
      socket.unshift(received)
      if (preface) this.toHttp2(socket)
      else toHttp1(socket)
    }
    const onError = () => {
      done()
      socket.destroy()
    }
    // As long as Node's HTTP/1.1 server waits for a request's headers.
    const onTimeout = onError
    this.sniffing.add(socket)
    socket.on('readable', onReadable)
    socket.on('error', onError)
    socket.once('close', done)
    socket.setTimeout(this.options.server.headersTimeout, onTimeout)
  }
}
