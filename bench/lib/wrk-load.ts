import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnChild } from './children.js'
import type { LatencySummary, LoadSpec, LoadSummary } from './load-spec.js'

/**
 * wrk as the closed-loop load generator when it is installed (`bench/setup` installs it):
 * written in C on epoll, it drives several times more requests per core than autocannon,
 * so a fast proxy is measured, not the load generator. One thread, `connections`
 * keep-alive connections; a Lua `done` hook prints the summary as JSON with latency
 * percentiles from wrk's microsecond histogram.
 */
const SUMMARY_SCRIPT = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nWRK-JSON {"requests":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d,"mean":%f,"max":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.mean, latency.max))
end
`

let cachedVersion: string | null | undefined
const running = new Set<number>()

/** pids of wrk processes running now (their CPU is the benchmark's own, not other load) */
export function runningWrkPids(): number[] {
  return [...running]
}

let scriptPath: string | undefined

/** wrk's version line, or null when wrk is not on the PATH. */
export function wrkVersion(): string | null {
  if (cachedVersion === undefined) {
    // `wrk -v` prints its version and usage, with a non-zero exit: read the output whatever the code.
    const probe = spawnSync('wrk', ['-v'], { encoding: 'utf8' })
    cachedVersion = probe.error ? null : (/^wrk \S+/m.exec(`${probe.stdout}${probe.stderr}`)?.[0] ?? null)
  }
  return cachedVersion
}

/** What the summary script prints: counts, then the latency figures (us) of a LatencySummary. */
interface WrkJson extends Omit<LatencySummary, 'samples'> {
  requests: number
  durationUs: number
  connect: number
  read: number
  write: number
  status: number
  timeout: number
}

/** One closed-loop run of wrk pinned to `cpus`. */
export async function runWrk(spec: LoadSpec, cpus: string | undefined): Promise<LoadSummary> {
  if (!scriptPath) {
    scriptPath = join(mkdtempSync(join(tmpdir(), 'switchyard-bench-wrk-')), 'summary.lua')
    writeFileSync(scriptPath, SUMMARY_SCRIPT)
  }
  const headers = Object.entries(spec.headers ?? {}).flatMap(([name, value]) => ['-H', `${name}: ${value}`])
  const args = ['-t1', `-c${spec.connections}`, `-d${spec.durationSeconds}s`, '--timeout', '10s', '-s', scriptPath, ...headers, spec.url]
  const child = spawnChild('wrk', 'wrk', args, { cpus, captureStdout: true })
  running.add(child.pid)
  const code = await child.exited.finally(() => running.delete(child.pid))
  const line = /WRK-JSON (\{.*\})/.exec(child.stdout())?.[1]
  if (code !== 0 || !line) throw new Error(`wrk failed (exit ${code}): ${child.output().slice(-2000)}`)
  const result = JSON.parse(line) as WrkJson
  const seconds = result.durationUs / 1e6
  // wrk counts answers outside 2xx/3xx as status errors; they are still answers.
  const ok = result.requests - result.status
  const ms = (us: number) => us / 1000
  const latencyMs: LatencySummary = {
    p50: ms(result.p50),
    p90: ms(result.p90),
    p99: ms(result.p99),
    p999: ms(result.p999),
    mean: ms(result.mean),
    max: ms(result.max),
    samples: result.requests
  }
  return {
    url: spec.url,
    connections: spec.connections,
    rate: null,
    durationSeconds: seconds,
    requests: result.requests,
    ok,
    rps: ok / seconds,
    non2xx: result.status,
    errors: result.connect + result.read + result.write + result.timeout,
    timeouts: result.timeout,
    latencyMs,
    samplesDropped: 0
  }
}
