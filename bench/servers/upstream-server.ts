/**
 * The upstream of the proxy benchmark: one instance of a small HTTP service, as its own
 * process. Every path answers a ~90-byte JSON naming the version and instance; GET
 * /__hits (not counted) answers how many requests it served, so the benchmark can check
 * the split each proxy really did.
 *
 *   node dist/bench/servers/upstream-server.js PORT VERSION ID
 */
import { createServer } from 'node:http'
import { serverArgs } from './server-args.js'

const { port, version, id } = serverArgs('upstream-server.js PORT VERSION ID')

let hits = 0
const body = JSON.stringify({ service: 'api', version, instance: id, message: 'hello' })
const length = String(Buffer.byteLength(body))

const server = createServer((request, response) => {
  if (request.url === '/__hits') {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ hits }))
    return
  }
  hits++
  // Bodies are not expected; drain any so the connection stays reusable.
  request.resume()
  response.writeHead(200, { 'content-type': 'application/json', 'content-length': length })
  response.end(body)
})
// Longer than any proxy's idle keep-alive, so the proxy, not the upstream, closes idle
// connections (no race between an upstream close and a proxy reusing the socket).
server.keepAliveTimeout = 65_000
server.headersTimeout = 66_000
server.listen(port, '127.0.0.1', () => process.stdout.write(`upstream ${id} (${version}) listening on 127.0.0.1:${port}\n`))

const stop = () => {
  server.closeAllConnections()
  server.close(() => process.exit(0))
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
