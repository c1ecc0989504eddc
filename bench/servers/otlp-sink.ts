/**
 * A stand-in trace collector for the tracing configurations of the proxy benchmark: it
 * accepts OTLP/HTTP exports (POST /v1/traces, protobuf or JSON), reads and drops them,
 * and answers an empty success. GET /__received answers how many exports and bytes it
 * took, so the benchmark can show that spans really left the router.
 *
 *   node dist/bench/servers/otlp-sink.js PORT
 */
import { createServer } from 'node:http'

const port = Number(process.argv[2])
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('usage: otlp-sink.js PORT\n')
  process.exit(2)
}

let exports = 0
let bytes = 0
const server = createServer((request, response) => {
  if (request.method === 'GET' && request.url === '/__received') {
    response.writeHead(200, { 'content-type': 'application/json' })
    response.end(JSON.stringify({ exports, bytes }))
    return
  }
  request.on('data', (chunk: Buffer) => (bytes += chunk.length))
  request.on('end', () => {
    exports++
    const json = (request.headers['content-type'] ?? '').includes('json')
    // An empty ExportTraceServiceResponse: zero bytes in protobuf, {} in JSON.
    response.writeHead(200, { 'content-type': json ? 'application/json' : 'application/x-protobuf' })
    response.end(json ? '{}' : '')
  })
})
server.listen(port, '127.0.0.1', () => process.stdout.write(`OTLP sink listening on 127.0.0.1:${port}\n`))
const stop = () => {
  server.closeAllConnections()
  server.close(() => process.exit(0))
}
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
