/**
 * The gRPC benchmark's upstream: the Greeter of test/fixtures/greeter.proto on grpc-js,
 * as its own process.
 *
 *   node dist/bench/servers/greeter-server.js PORT VERSION
 */
import { startGreeter } from './greeter.js'
import { serverArgs } from './server-args.js'

const { port, version } = serverArgs('greeter-server.js PORT VERSION')

const greeter = await startGreeter(version, port)
process.stdout.write(`greeter (${version}) listening on 127.0.0.1:${greeter.port}\n`)
const stop = () => void greeter.close().then(() => process.exit(0))
process.once('SIGTERM', stop)
process.once('SIGINT', stop)
