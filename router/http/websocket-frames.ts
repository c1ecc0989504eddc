/**
 * Just enough of WebSocket framing (RFC 6455 5.2) for a proxy that pipes bytes: where
 * frames end, so that the router can put a close frame of its own between two frames
 * (never inside one) when it ends a connection, and whether a close frame already went
 * that way (after which nothing more may be sent). Payloads are never looked at.
 */

const OPCODE_CLOSE = 0x8
const MAX_HEADER = 14

/** Header bytes announced by a frame's second byte: 2, plus the extended length, plus the mask key. */
function headerSize(second: number): number {
  const length7 = second & 0x7f
  return 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) + (second & 0x80 ? 4 : 0)
}

/** The payload length of the header at `offset` (complete in `bytes`). */
function payloadLength(bytes: Buffer, offset: number): number {
  const length7 = (bytes[offset + 1] as number) & 0x7f
  if (length7 === 126) return bytes.readUInt16BE(offset + 2)
  // The top bit must be 0 (RFC 6455 5.2); lengths up to 2^53 stay exact.
  if (length7 === 127) return bytes.readUInt32BE(offset + 2) * 2 ** 32 + bytes.readUInt32BE(offset + 6)
  return length7
}

/** Frame boundaries of one direction of a WebSocket connection, fed every chunk in order. */
export class FrameBoundary {
  /** a close frame went this way */
  closeSeen = false
  /** payload bytes of the current frame still to come */
  private remaining = 0
  /** a header split across chunks, gathered here */
  private readonly header = Buffer.alloc(MAX_HEADER)
  private headerLength = 0

  /** between two frames: a frame of the router's may be sent now */
  get atBoundary(): boolean {
    return this.remaining === 0 && this.headerLength === 0
  }

  /**
   * Follows `chunk`. With `stopAtEnd`, stops just past the first frame that ends in it;
   * returns how many bytes were followed (the whole chunk unless it stopped).
   */
  feed(chunk: Buffer, stopAtEnd = false): number {
    const length = chunk.length
    let offset = 0
    while (offset < length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, length - offset)
        this.remaining -= take
        offset += take
        if (this.remaining === 0 && stopAtEnd) return offset
        continue
      }
      // A whole header in this chunk: read it in place (the usual case).
      if (this.headerLength === 0 && length - offset >= 2) {
        const size = headerSize(chunk[offset + 1] as number)
        if (length - offset >= size) {
          this.startFrame(chunk, offset)
          offset += size
          if (this.remaining === 0 && stopAtEnd) return offset
          continue
        }
      }
      this.header[this.headerLength++] = chunk[offset++] as number
      if (this.headerLength >= 2 && this.headerLength === headerSize(this.header[1] as number)) {
        this.startFrame(this.header, 0)
        this.headerLength = 0
        if (this.remaining === 0 && stopAtEnd) return offset
      }
    }
    return offset
  }

  private startFrame(bytes: Buffer, offset: number): void {
    if (((bytes[offset] as number) & 0x0f) === OPCODE_CLOSE) this.closeSeen = true
    this.remaining = payloadLength(bytes, offset)
  }
}

/**
 * A close frame with `code` and `reason` (at most 123 bytes). Frames a client sends are
 * masked (RFC 6455 5.3): give the 4-byte `mask` for those going to the upstream.
 */
export function closeFrame(code: number, reason: string, mask?: Buffer): Buffer {
  const text = Buffer.from(reason)
  const payload = 2 + text.length
  const start = mask ? 6 : 2
  const frame = Buffer.alloc(start + payload)
  frame[0] = 0x80 | OPCODE_CLOSE
  frame[1] = (mask ? 0x80 : 0) | payload
  frame.writeUInt16BE(code, start)
  text.copy(frame, start + 2)
  if (mask) {
    mask.copy(frame, 2, 0, 4)
    for (let index = 0; index < payload; index++) frame[start + index] = (frame[start + index] as number) ^ (mask[index % 4] as number)
  }
  return frame
}

/** The Upgrade header names the WebSocket protocol. */
export function isWebSocket(upgrade: string | undefined): boolean {
  return upgrade !== undefined && upgrade.trim().toLowerCase() === 'websocket'
}
