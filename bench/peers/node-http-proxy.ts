/**
 * Peer: http-proxy (node-http-proxy) on node:http, with a keep-alive agent (128 sockets
 * per origin, as the router's pools), splitting requests between the upstream instances
 * by weight.
 *
 *   node dist/bench/peers/node-http-proxy.js PORT http://127.0.0.1:A=90 http://127.0.0.1:B=10
 */
import { Agent, createServer } from 'node:http'
import httpProxy from 'http-proxy'
import { parsePeerArguments, weightedPicker } from './weighted-targets.js'

const { port, targets } = parsePeerArguments(process.argv.slice(2))
const pick = weightedPicker(targets)
const agent = new Agent({ keepAlive: true, maxSockets: 128, keepAliveMsecs: 4_000 })
const proxy = httpProxy.createProxyServer({ agent, xfwd: true })
proxy.on('error', (_error, _request, response) => {
  if ('writeHead' in response && !response.headersSent) {
    response.writeHead(502, { 'content-type': 'application/json' })
    response.end('{"code":"UPSTREAM_UNREACHABLE"}')
  } else {
    response.destroy()
  }
})
const server = createServer((request, response) => proxy.web(request, response, { target: pick() }))
server.listen(port, '127.0.0.1', () => process.stdout.write(`http-proxy listening on 127.0.0.1:${port}\n`))
const stop = () => {
  server.closeAllConnections()
  server.close(() => {
    agent.destroy()
    process.exit(0)
  })
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
