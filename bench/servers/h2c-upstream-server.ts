/**
 * The upstream of the h2 benchmark: the proxy benchmark's small JSON answer, served over
 * HTTP/2 cleartext (prior knowledge) on Node's http2 server, as its own process.
 *
 *   node dist/bench/servers/h2c-upstream-server.js PORT VERSION ID
 */
import { createServer } from 'node:http2'
import { serverArgs } from './server-args.js'

const { port, version, id } = serverArgs('h2c-upstream-server.js PORT VERSION ID')

const body = JSON.stringify({ service: 'api', version, instance: id, message: 'hello' })
const head = { ':status': 200, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }

// As many streams per connection as h2load and the router may open.
const server = createServer({ settings: { maxConcurrentStreams: 1000 } })
server.on('stream', (stream) => {
  stream.on('error', () => {})
  // Bodies are not expected; drain any.
  stream.resume()
  stream.respond(head)
  stream.end(body)
})
server.listen(port, '127.0.0.1', () => process.stdout.write(`h2c upstream ${id} (${version}) listening on 127.0.0.1:${port}\n`))

const stop = () => server.close(() => process.exit(0))
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
