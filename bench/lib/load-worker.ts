/**
 * The load generator, run as its own process (so that it can be pinned to its own core
 * and its CPU never counts as the proxy's): keep-alive HTTP/1.1, no pipelining, against
 * one URL for a fixed duration. Latencies are recorded here, per response, at
 * microsecond resolution (autocannon's own histogram keeps whole milliseconds, too
 * coarse on loopback).
 *
 * - Closed loop (no `rate`): autocannon, each connection sending its next request when
 *   the answer arrives.
 * - Open loop (`rate`): autocannon paces a rate by letting every connection send its
 *   quota back to back at the start of each second, which measures queueing behind that
 *   burst; so requests are sent here instead, evenly spaced, through an undici pool of
 *   `connections` keep-alive connections, and each latency runs from the request's
 *   scheduled time (a proxy that stalls cannot hide the requests it delayed).
 *
 * Started by the benchmark with an IPC channel, it stays up and runs one load per
 * message (no Node.js start-up between rounds, and a warm JIT). Run by hand, it takes
 * one spec as its argument and prints the summary as one line of JSON:
 *
 *   node dist/bench/lib/load-worker.js '{"url":"http://127.0.0.1:8080/api/hello","connections":32,"durationSeconds":5}'
 */
import { performance } from 'node:perf_hooks'
import autocannon from 'autocannon'
import { Pool } from 'undici'
import { summarizeLatencies, type LoadSpec, type LoadSummary } from './load-spec.js'
import { sendPaced } from './paced-sends.js'
import { serveTasks } from './task-channel.js'

const MAX_SAMPLES = 4_000_000

async function runOne(spec: LoadSpec): Promise<LoadSummary> {
  if (!spec.url || !(spec.durationSeconds > 0) || !(spec.connections > 0)) throw new Error(`bad load spec: ${JSON.stringify(spec)}`)
  return spec.rate ? runPaced(spec, spec.rate) : runClosedLoop(spec)
}

/** Open loop: `rate` requests per second, evenly spaced, for `durationSeconds`. */
async function runPaced(spec: LoadSpec, rate: number): Promise<LoadSummary> {
  const url = new URL(spec.url)
  const pool = new Pool(url.origin, { connections: spec.connections, pipelining: 1, keepAliveTimeout: 10_000 })
  const total = Math.max(1, Math.round(rate * spec.durationSeconds))
  const samples = new Float64Array(Math.min(MAX_SAMPLES, total))
  let count = 0
  let ok = 0
  let non2xx = 0
  let errors = 0
  let timeouts = 0
  const path = `${url.pathname}${url.search}`
  const started = await sendPaced(total, rate, (scheduledAt) =>
    pool
      .request({ path, method: 'GET', headers: spec.headers ?? {}, headersTimeout: 10_000, bodyTimeout: 10_000 })
      .then(async (response) => {
        await response.body.dump()
        const latency = performance.now() - scheduledAt
        if (response.statusCode >= 200 && response.statusCode < 300) {
          ok++
          if (count < samples.length) samples[count++] = latency
        } else {
          non2xx++
        }
      })
      .catch((error: { code?: string }) => {
        errors++
        if (error.code === 'UND_ERR_HEADERS_TIMEOUT' || error.code === 'UND_ERR_BODY_TIMEOUT') timeouts++
      })
  )
  const elapsedSeconds = (performance.now() - started) / 1000
  await pool.close()
  return {
    url: spec.url,
    connections: spec.connections,
    rate,
    durationSeconds: elapsedSeconds,
    requests: ok + non2xx,
    ok,
    rps: ok / elapsedSeconds,
    non2xx,
    errors,
    timeouts,
    latencyMs: summarizeLatencies(samples.subarray(0, count)),
    samplesDropped: Math.max(0, ok - count)
  }
}

/** Closed loop with autocannon: each connection sends its next request when the answer arrives. */
async function runClosedLoop(spec: LoadSpec): Promise<LoadSummary> {
  const samples = new Float64Array(Math.min(MAX_SAMPLES, Math.ceil(spec.durationSeconds * 200_000)))
  let count = 0
  let dropped = 0
  const started = process.hrtime.bigint()
  let finish: (result: autocannon.Result) => void = () => {}
  let fail: (error: unknown) => void = () => {}
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    finish = resolve
    fail = reject
  })
  const instance = autocannon(
    {
      url: spec.url,
      connections: spec.connections,
      pipelining: 1,
      duration: spec.durationSeconds,
      timeout: 10,
      ...(spec.headers ? { headers: spec.headers } : {})
    },
    (error: unknown, result: autocannon.Result) => (error ? fail(error) : finish(result))
  )
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    if (statusCode < 200 || statusCode >= 300) return
    if (count < samples.length) samples[count++] = responseTime
    else dropped++
  })
  // Bounded: a run that does not end on its own is stopped.
  const guard = setTimeout(() => instance.stop(), (spec.durationSeconds + 30) * 1000)
  const result = await finished.finally(() => clearTimeout(guard))
  const elapsedSeconds = Number(process.hrtime.bigint() - started) / 1e9
  const ok = result['2xx']
  return {
    url: spec.url,
    connections: spec.connections,
    rate: null,
    durationSeconds: elapsedSeconds,
    requests: ok + result.non2xx,
    ok,
    rps: ok / elapsedSeconds,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    latencyMs: summarizeLatencies(samples.subarray(0, count)),
    samplesDropped: dropped
  }
}

if (!serveTasks(runOne)) {
  runOne(JSON.parse(process.argv[2] ?? '{}') as LoadSpec).then(
    (summary) => {
      process.stdout.write(`${JSON.stringify(summary)}\n`)
      process.exit(0)
    },
    (error: unknown) => {
      process.stderr.write(`load worker: ${(error as Error).stack ?? String(error)}\n`)
      process.exit(1)
    }
  )
}
