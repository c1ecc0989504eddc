/**
 * The gRPC benchmark's upstream: the Greeter of test/fixtures/greeter.proto on grpc-js,
 * as its own process.
 *
 *   node dist/bench/servers/greeter-server.js PORT VERSION
 */
import { startGreeter } from './greeter.js'

const port = Number(process.argv[2])
const version = process.argv[3] ?? 'v1'
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('usage: greeter-server.js PORT VERSION\n')
  process.exit(2)
}

const greeter = await startGreeter(version, port)
process.stdout.write(`greeter (${version}) listening on 127.0.0.1:${greeter.port}\n`)
const stop = () => void greeter.close().then(() => process.exit(0))
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
