/**
 * The gRPC benchmark's load generator: unary Greeter.Hello calls, CONCURRENCY in flight on
 * one channel (as a gRPC client keeps one connection), for SECONDS; prints one JSON line
 * {calls, errors, seconds, cpuSeconds} on stdout.
 *
 *   node dist/bench/servers/grpc-load.js HOST:PORT SECONDS CONCURRENCY
 */
import { Metadata } from '@grpc/grpc-js'
import { greeterClient } from './greeter.js'

const target = process.argv[2] ?? ''
const seconds = Number(process.argv[3])
const concurrency = Number(process.argv[4] ?? 32)
if (!target || !(seconds > 0) || !Number.isInteger(concurrency) || concurrency < 1) {
  process.stderr.write('usage: grpc-load.js HOST:PORT SECONDS CONCURRENCY\n')
  process.exit(2)
}

const client = greeterClient(target)
const call = () =>
  new Promise<boolean>((resolve) => {
    client.Hello({ name: 'bench' }, new Metadata(), {}, (error) => resolve(!error))
  })

// Warm the channel (connection, name resolution) before the clock starts.
for (let index = 0; index < 100; index++) await call()

let calls = 0
let errors = 0
const cpuBefore = process.cpuUsage()
const started = performance.now()
const deadline = started + seconds * 1000
const worker = async () => {
  while (performance.now() < deadline) {
    if (await call()) calls++
    else errors++
  }
}
await Promise.all(Array.from({ length: concurrency }, worker))
const elapsed = (performance.now() - started) / 1000
const cpu = process.cpuUsage(cpuBefore)
process.stdout.write(`${JSON.stringify({ calls, errors, seconds: elapsed, cpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`)
client.close()
