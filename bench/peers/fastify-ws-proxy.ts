/**
 * Peer of the websocket scenario: @fastify/http-proxy with `websocket: true` in front of
 * one WebSocket upstream, /api passed on as /api. It ends each WebSocket at the proxy
 * (a `ws` server) and opens its own `ws` client to the upstream, passing messages, not
 * bytes: that is how the plugin does WebSocket. GET /__heap (outside /api, not proxied)
 * answers process.memoryUsage(), the counterpart of the router's /metrics heap gauge.
 *
 *   node dist/bench/peers/fastify-ws-proxy.js PORT http://127.0.0.1:UPSTREAM
 */
import fastifyHttpProxy from '@fastify/http-proxy'
import Fastify from 'fastify'

const port = Number(process.argv[2])
const upstream = process.argv[3] ?? ''
if (!Number.isInteger(port) || port <= 0 || !upstream.startsWith('http://')) {
  process.stderr.write('usage: fastify-ws-proxy.js PORT http://HOST:PORT\n')
  process.exit(2)
}
const app = Fastify({ logger: false })
app.get('/__heap', (_request, reply) => void reply.send(process.memoryUsage()))
await app.register(fastifyHttpProxy, { upstream, prefix: '/api', rewritePrefix: '/api', websocket: true })
await app.listen({ host: '127.0.0.1', port })
process.stdout.write(`@fastify/http-proxy (websocket) listening on 127.0.0.1:${port}\n`)
const stop = () => void app.close().finally(() => process.exit(0))
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
