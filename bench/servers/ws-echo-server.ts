/**
 * The upstream of the websocket scenario: a WebSocket echo server on `ws` (every message
 * goes back as it came, text or binary) on a node:http server, as its own process. Any
 * path upgrades; a plain GET answers 200 (a readiness probe through a proxy), and GET
 * /__stats answers the open WebSocket connections and the messages echoed, so the
 * benchmark can tell when every idle connection through a proxy has reached it.
 *
 *   node dist/bench/servers/ws-echo-server.js PORT
 */
import { createServer } from 'node:http'
import { WebSocketServer } from 'ws'
import { serverArgs } from './server-args.js'

const { port } = serverArgs('ws-echo-server.js PORT')

let echoed = 0
const server = createServer((request, response) => {
  request.resume()
  if (request.url === '/__stats') {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ connections: wss.clients.size, echoed, memory: process.memoryUsage() }))
    return
  }
  response.writeHead(200, { 'content-type': 'text/plain', 'content-length': '4' })
  response.end('echo')
})
// No compression (ws's server default, said here because the clients may offer it): the
// benchmark measures the proxies' framing and copying, not deflate.
const wss = new WebSocketServer({ server, perMessageDeflate: false })
wss.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => {
    echoed++
    socket.send(data, { binary: isBinary })
  })
  socket.on('error', () => socket.terminate())
})
server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => process.stdout.write(`ws echo listening on 127.0.0.1:${port}\n`))
const stop = () => {
  for (const client of wss.clients) client.terminate()
  server.close(() => process.exit(0))
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
