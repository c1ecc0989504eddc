/**
 * The WebSocket load generator of the websocket scenario, run as its own process (pinned
 * apart from the proxy under test, its CPU never the proxy's). It speaks WebSocket on raw
 * sockets: the handshake by hand (the 101 and its Sec-WebSocket-Accept checked), then one
 * pre-built masked binary frame per connection sent again and again, and the echo
 * counted in bytes. A client library would spend more per message than the proxies under
 * test and, sharing a core with the upstream, cap every configuration alike.
 *
 * - `echo`: N connections, each sending its next message when the whole echo of the last
 *   one is back (closed loop, one in flight per connection), for a fixed duration; every
 *   latency is recorded. The first echo on each connection is compared byte for byte.
 * - `open`: opens idle connections (handshake only) and keeps them; `close` closes them
 *   with a close frame. The websocket scenario's memory measure.
 *
 * Started with an IPC channel, it runs one command per message, in order.
 */
import { createHash, randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { summarizeLatencies, type LatencySummary } from './load-spec.js'
import { serveTasks } from './task-channel.js'

export type WsCommand =
  | { kind: 'echo'; url: string; connections: number; durationSeconds: number; messageBytes: number }
  | { kind: 'open'; url: string; count: number; concurrency: number }
  | { kind: 'close' }

export interface EchoSummary {
  connections: number
  messageBytes: number
  /** time to open every connection (handshakes), before the timed part */
  setupMs: number
  /** from the first message sent to the last echo back */
  durationSeconds: number
  messages: number
  messagesPerSecond: number
  /** latency of each message's round trip, in ms */
  latencyMs: LatencySummary
  /** connections that failed or stalled during the round */
  errors: number
  firstError: string | undefined
}

export interface OpenSummary {
  opened: number
  failed: number
  seconds: number
  firstError: string | undefined
  /** idle connections held now (all `open` commands so far, minus those that closed) */
  holding: number
}

export interface CloseSummary {
  closed: number
  /** idle connections that had closed before they were asked to (the proxy or upstream ended them) */
  closedEarly: number
  seconds: number
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
const HANDSHAKE_TIMEOUT_MS = 10_000
const MAX_SAMPLES = 4_000_000
/** After the round's end, how long outstanding echoes may take before they count as errors. */
const TAIL_MS = 10_000

function headerLength(payloadLength: number): number {
  return payloadLength < 126 ? 2 : payloadLength < 65_536 ? 4 : 10
}

function frameHeader(target: Buffer, firstByte: number, payloadLength: number, masked: boolean): number {
  target[0] = firstByte
  const maskBit = masked ? 0x80 : 0
  if (payloadLength < 126) {
    target[1] = maskBit | payloadLength
  } else if (payloadLength < 65_536) {
    target[1] = maskBit | 126
    target.writeUInt16BE(payloadLength, 2)
  } else {
    target[1] = maskBit | 127
    target.writeBigUInt64BE(BigInt(payloadLength), 2)
  }
  return headerLength(payloadLength)
}

/** A client frame (FIN, `opcode`), masked with a random key as RFC 6455 requires of clients. */
export function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const header = headerLength(payload.length)
  const frame = Buffer.allocUnsafe(header + 4 + payload.length)
  frameHeader(frame, 0x80 | opcode, payload.length, true)
  const mask = randomBytes(4)
  mask.copy(frame, header)
  for (let index = 0; index < payload.length; index++) frame[header + 4 + index] = (payload[index] as number) ^ (mask[index & 3] as number)
  return frame
}

/** The server's echo of `payload`: the same frame, unmasked. */
export function serverFrame(opcode: number, payload: Buffer): Buffer {
  const header = headerLength(payload.length)
  const frame = Buffer.allocUnsafe(header + payload.length)
  frameHeader(frame, 0x80 | opcode, payload.length, false)
  payload.copy(frame, header)
  return frame
}

const CLOSE_NORMAL = maskedFrame(0x8, Buffer.from([0x03, 0xe8]))

/** Opens one WebSocket connection: resolves with the socket once a valid 101 arrived. */
export function handshake(url: URL): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64')
    const accept = createHash('sha1')
      .update(key + GUID)
      .digest('base64')
    const socket = connect({ host: url.hostname, port: Number(url.port) })
    socket.setNoDelay(true)
    let head = Buffer.alloc(0)
    const fail = (error: Error) => {
      clearTimeout(timer)
      socket.destroy()
      reject(error)
    }
    const timer = setTimeout(() => fail(new Error(`no 101 within ${HANDSHAKE_TIMEOUT_MS} ms`)), HANDSHAKE_TIMEOUT_MS)
    socket.once('connect', () => {
      socket.write(
        `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` + `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`,
        'latin1'
      )
    })
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk])
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) {
        if (head.length > 16_384) fail(new Error('answer head over 16 KiB'))
        return
      }
      socket.off('data', onData)
      socket.off('error', fail)
      socket.off('close', onClose)
      clearTimeout(timer)
      const text = head.subarray(0, end).toString('latin1')
      const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]
      const acceptHeader = /^sec-websocket-accept:\s*(\S+)/im.exec(text)?.[1]
      if (status !== '101' || acceptHeader !== accept) {
        socket.destroy()
        reject(new Error(`no valid 101: ${text.split('\r\n')[0] ?? ''}${status === '101' ? ' (bad Sec-WebSocket-Accept)' : ''}`))
        return
      }
      // Nothing is expected after the 101 until a message is sent.
      if (head.length > end + 4) {
        socket.destroy()
        reject(new Error('bytes after the 101 before any message'))
        return
      }
      // Until the caller listens: an error then only closes the socket (the caller sees the close).
      socket.on('error', () => socket.destroy())
      resolve(socket)
    }
    const onClose = () => fail(new Error('closed during the handshake'))
    socket.on('data', onData)
    socket.once('error', fail)
    socket.once('close', onClose)
  })
}

/** Ends a connection politely: a close frame, FIN, then waits (bounded) for the other side to close. */
function closeSocket(socket: Socket, graceMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve()
    const timer = setTimeout(() => socket.destroy(), graceMs)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
    socket.on('error', () => socket.destroy())
    // Whatever the other side still sends (its close frame) is read and dropped.
    socket.removeAllListeners('data')
    socket.resume()
    socket.end(CLOSE_NORMAL)
  })
}

async function openMany(
  url: URL,
  count: number,
  concurrency: number,
  onOpen: (socket: Socket) => void
): Promise<{ opened: number; failed: number; firstError: string | undefined }> {
  let next = 0
  let opened = 0
  let failed = 0
  let firstError: string | undefined
  const lane = async () => {
    while (next < count) {
      next++
      try {
        onOpen(await handshake(url))
        opened++
      } catch (error) {
        failed++
        firstError ??= (error as Error).message
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane))
  return { opened, failed, firstError }
}

async function echo(command: Extract<WsCommand, { kind: 'echo' }>): Promise<EchoSummary> {
  const url = new URL(command.url)
  const payload = randomBytes(command.messageBytes)
  const expected = serverFrame(0x2, payload)
  const sockets: Socket[] = []
  const setupStart = performance.now()
  const opened = await openMany(url, command.connections, command.connections, (socket) => sockets.push(socket))
  const setupMs = performance.now() - setupStart
  if (opened.failed > 0) {
    await Promise.all(sockets.map((socket) => closeSocket(socket)))
    throw new Error(`${opened.failed} of ${command.connections} connections failed to open: ${opened.firstError ?? ''}`)
  }
  const samples = new Float64Array(Math.min(MAX_SAMPLES, Math.ceil(command.durationSeconds * 500_000)))
  let count = 0
  let messages = 0
  let errors = 0
  let firstError: string | undefined
  let active = sockets.length
  let lastEcho = 0
  const started = performance.now()
  const deadline = started + command.durationSeconds * 1000
  await new Promise<void>((resolve) => {
    const guard = setTimeout(
      () => {
        errors += active
        firstError ??= `${active} connection(s) had no echo ${TAIL_MS} ms after the round`
        resolve()
      },
      command.durationSeconds * 1000 + TAIL_MS
    )
    const finished = () => {
      if (--active === 0) {
        clearTimeout(guard)
        resolve()
      }
    }
    for (const socket of sockets) {
      const frame = maskedFrame(0x2, payload)
      let received = 0
      let sentAt = 0
      let first: Buffer[] | undefined = []
      let done = false
      const stop = (error?: string) => {
        if (done) return
        done = true
        if (error) {
          errors++
          firstError ??= error
        }
        finished()
      }
      const send = () => {
        sentAt = performance.now()
        socket.write(frame)
      }
      socket.on('data', (chunk: Buffer) => {
        if (done) return
        if (first) first.push(chunk)
        received += chunk.length
        if (received < expected.length) return
        if (received > expected.length) return stop(`${received} bytes came back for a ${expected.length}-byte echo`)
        received = 0
        if (first) {
          const echoed = Buffer.concat(first)
          first = undefined
          if (!echoed.equals(expected)) return stop('the first echo differs from the message sent')
        }
        const now = performance.now()
        lastEcho = now
        messages++
        if (count < samples.length) samples[count++] = now - sentAt
        if (now < deadline) send()
        else stop()
      })
      socket.on('error', (error) => stop(error.message))
      socket.on('close', () => stop('closed during the round'))
      send()
    }
  })
  const durationSeconds = ((lastEcho || performance.now()) - started) / 1000
  await Promise.all(sockets.map((socket) => closeSocket(socket)))
  return {
    connections: command.connections,
    messageBytes: command.messageBytes,
    setupMs,
    durationSeconds,
    messages,
    messagesPerSecond: durationSeconds > 0 ? messages / durationSeconds : 0,
    latencyMs: summarizeLatencies(samples.subarray(0, count)),
    errors,
    firstError
  }
}

/** Idle connections held between `open` and `close`. */
const idle = new Set<Socket>()
let closedEarly = 0

async function openIdle(command: Extract<WsCommand, { kind: 'open' }>): Promise<OpenSummary> {
  const started = performance.now()
  const result = await openMany(new URL(command.url), command.count, command.concurrency, (socket) => {
    idle.add(socket)
    socket.on('error', () => socket.destroy())
    socket.once('close', () => {
      if (idle.delete(socket)) closedEarly++
    })
  })
  return { ...result, seconds: (performance.now() - started) / 1000, holding: idle.size }
}

async function closeIdle(): Promise<CloseSummary> {
  const started = performance.now()
  const sockets = [...idle]
  idle.clear()
  const early = closedEarly
  closedEarly = 0
  await Promise.all(sockets.map((socket) => closeSocket(socket, 15_000)))
  return { closed: sockets.length, closedEarly: early, seconds: (performance.now() - started) / 1000 }
}

function run(command: WsCommand): Promise<EchoSummary | OpenSummary | CloseSummary> {
  if (command.kind === 'echo') return echo(command)
  if (command.kind === 'open') return openIdle(command)
  return closeIdle()
}

// The parent's exit closes the channel: the held connections go with this process.
if (!serveTasks(run)) {
  process.stderr.write('ws-load-worker: started by the websocket scenario (bench/lib/ws-load.ts) with an IPC channel\n')
  process.exit(2)
}
