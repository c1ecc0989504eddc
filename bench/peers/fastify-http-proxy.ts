/**
 * Peer: @fastify/http-proxy (Fastify + @fastify/reply-from over undici, keep-alive
 * pools), splitting /api between the upstream instances by weight with getUpstream.
 * Pool settings match the router's defaults (128 connections per origin, 4 s idle).
 *
 *   node dist/bench/peers/fastify-http-proxy.js PORT http://127.0.0.1:A=90 http://127.0.0.1:B=10
 */
import fastifyHttpProxy from '@fastify/http-proxy'
import Fastify from 'fastify'
import { parsePeerArguments, weightedPicker } from './weighted-targets.js'

const { port, targets } = parsePeerArguments(process.argv.slice(2))
const pick = weightedPicker(targets)
const app = Fastify({ logger: false })
await app.register(fastifyHttpProxy, {
  upstream: '',
  prefix: '/api',
  rewritePrefix: '/api',
  undici: { connections: 128, pipelining: 1, keepAliveTimeout: 4_000 },
  replyOptions: { getUpstream: () => pick() }
})
await app.listen({ host: '127.0.0.1', port })
process.stdout.write(`@fastify/http-proxy listening on 127.0.0.1:${port}\n`)
const stop = () => void app.close().finally(() => process.exit(0))
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
