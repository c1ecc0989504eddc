import t from 'tap'
import { closeFrame, FrameBoundary, isWebSocket } from '../../router/http/websocket-frames.js'

/** A whole frame: header (with the extended length and mask key it needs) and a payload of zeros. */
function frame(opcode: number, length: number, masked = false): Buffer {
  const extended = length > 0xffff ? 8 : length > 125 ? 2 : 0
  const header = Buffer.alloc(2 + extended + (masked ? 4 : 0))
  header[0] = 0x80 | opcode
  header[1] = (masked ? 0x80 : 0) | (extended === 8 ? 127 : extended === 2 ? 126 : length)
  if (extended === 2) header.writeUInt16BE(length, 2)
  if (extended === 8) header.writeBigUInt64BE(BigInt(length), 2)
  if (masked) header.set([9, 8, 7, 6], 2 + extended)
  return Buffer.concat([header, Buffer.alloc(length)])
}

/** `bytes` cut at `cuts` (offsets). */
function pieces(bytes: Buffer, ...cuts: number[]): Buffer[] {
  const edges = [0, ...cuts, bytes.length]
  return edges.slice(1).map((end, index) => bytes.subarray(edges[index], end))
}

void t.test('FrameBoundary follows frames across chunks', (t) => {
  const cases: { name: string; chunks: Buffer[]; stopAtEnd?: boolean; fed: number[]; atBoundary: boolean[]; closeSeen: boolean }[] = [
    { name: 'a small unmasked frame in one chunk', chunks: [frame(0x1, 5)], fed: [7], atBoundary: [true], closeSeen: false },
    { name: 'a masked frame cut inside its payload', chunks: pieces(frame(0x2, 10, true), 9), fed: [9, 7], atBoundary: [false, true], closeSeen: false },
    {
      name: 'a 16-bit length header cut twice',
      chunks: pieces(frame(0x2, 300), 1, 3),
      fed: [1, 2, 301],
      atBoundary: [false, false, true],
      closeSeen: false
    },
    { name: 'a 64-bit length in one chunk', chunks: [frame(0x2, 70_000)], fed: [70_010], atBoundary: [true], closeSeen: false },
    {
      name: 'a masked 64-bit length header cut in the middle',
      chunks: pieces(frame(0x2, 70_000, true), 7, 14),
      fed: [7, 7, 70_000],
      atBoundary: [false, false, true],
      closeSeen: false
    },
    { name: 'a close frame', chunks: [frame(0x8, 2)], fed: [4], atBoundary: [true], closeSeen: true },
    {
      name: 'two frames in a chunk, stopping at the end of the first',
      chunks: [Buffer.concat([frame(0x1, 3), frame(0x1, 4)])],
      stopAtEnd: true,
      fed: [5],
      atBoundary: [true],
      closeSeen: false
    },
    { name: 'an empty ping, stopping at its end', chunks: [Buffer.concat([frame(0x9, 0), frame(0x1, 1)])], stopAtEnd: true, fed: [2], atBoundary: [true], closeSeen: false },
    {
      name: 'an empty ping whose header is cut, stopping at its end',
      chunks: pieces(Buffer.concat([frame(0x9, 0), frame(0x1, 1)]), 1),
      stopAtEnd: true,
      fed: [1, 1],
      atBoundary: [false, true],
      closeSeen: false
    },
    {
      name: 'a payload cut, stopping at the end of the frame',
      chunks: pieces(Buffer.concat([frame(0x2, 6), frame(0x8, 2)]), 4),
      stopAtEnd: true,
      fed: [4, 4],
      atBoundary: [false, true],
      closeSeen: false
    },
    { name: 'a close frame after a data frame, read whole', chunks: [Buffer.concat([frame(0x2, 6), frame(0x8, 2)])], fed: [12], atBoundary: [true], closeSeen: true }
  ]
  for (const { name, chunks, stopAtEnd, fed, atBoundary, closeSeen } of cases) {
    const boundary = new FrameBoundary()
    const seenFed: number[] = []
    const seenBoundary: boolean[] = []
    for (const chunk of chunks) {
      seenFed.push(boundary.feed(chunk, stopAtEnd))
      seenBoundary.push(boundary.atBoundary)
    }
    t.same({ fed: seenFed, atBoundary: seenBoundary, closeSeen: boundary.closeSeen }, { fed, atBoundary, closeSeen }, name)
  }
  t.end()
})

void t.test('closeFrame: exact bytes, unmasked and masked', (t) => {
  t.same([...closeFrame(1001, 'going away')], [0x88, 12, 0x03, 0xe9, ...Buffer.from('going away')], 'to a client: unmasked')
  t.same([...closeFrame(1000, '', Buffer.from([0xff, 0x00, 0xff, 0x00]))], [0x88, 0x82, 0xff, 0x00, 0xff, 0x00, 0xfc, 0xe8], 'to an upstream: masked code')
  t.same([...closeFrame(1001, 'ab', Buffer.from([1, 2, 3, 4]))], [0x88, 0x84, 1, 2, 3, 4, 0x03 ^ 1, 0xe9 ^ 2, 0x61 ^ 3, 0x62 ^ 4], 'to an upstream: masked code and reason')
  const boundary = new FrameBoundary()
  t.equal(boundary.feed(closeFrame(1001, 'x', Buffer.from([1, 2, 3, 4]))), 9, 'FrameBoundary reads it as one frame')
  t.ok(boundary.atBoundary && boundary.closeSeen)
  t.end()
})

void t.test('isWebSocket', (t) => {
  const cases: [string | undefined, boolean][] = [
    ['websocket', true],
    [' WebSocket ', true],
    ['h2c', false],
    ['websocket, h2c', false],
    [undefined, false]
  ]
  for (const [upgrade, expected] of cases) t.equal(isWebSocket(upgrade), expected, String(upgrade))
  t.end()
})
