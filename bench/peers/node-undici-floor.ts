/**
 * Reference, not a product: the least a Node.js proxy can do. node:http in front of
 * undici pools (128 connections per origin, as the router's), `Pool.stream` writing the
 * answer straight into the response, the same weighted split, and nothing else: no
 * header filtering, no request ids, no metrics, no retries, no timeouts of its own.
 * What it reaches is the ceiling of the Node approach on this machine, and its memory
 * the floor, so switchyard's figures can be read against them.
 *
 *   node dist/bench/peers/node-undici-floor.js PORT http://127.0.0.1:A=90 http://127.0.0.1:B=10
 */
import { createServer } from 'node:http'
import { Pool } from 'undici'
import { parsePeerArguments, weightedPicker } from './weighted-targets.js'

const { port, targets } = parsePeerArguments(process.argv.slice(2))
const pools = new Map(targets.map((target) => [target.origin, new Pool(target.origin, { connections: 128, pipelining: 1, keepAliveTimeout: 4_000 })]))
const pick = weightedPicker(targets)

const server = createServer((request, response) => {
  const pool = pools.get(pick()) as Pool
  pool
    .stream({ path: request.url ?? '/', method: 'GET', headers: { 'x-forwarded-for': request.socket.remoteAddress ?? '' } }, ({ statusCode, headers }) => {
      response.writeHead(statusCode, { 'content-type': String(headers['content-type'] ?? 'application/octet-stream') })
      return response
    })
    .catch(() => {
      if (!response.headersSent) response.writeHead(502).end()
      else response.destroy()
    })
})
server.listen(port, '127.0.0.1', () => process.stdout.write(`node:http + undici floor listening on 127.0.0.1:${port}\n`))
const stop = () => {
  server.closeAllConnections()
  server.close(() => {
    void Promise.all([...pools.values()].map((pool) => pool.close())).then(() => process.exit(0))
  })
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
