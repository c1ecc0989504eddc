import { spawn } from 'node:child_process'
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { freePort } from './processes.js'

/** Where Debian's `prometheus` package puts the server (.ci/run installs it when missing). */
export const PROMETHEUS_BINARY = process.env.SWITCHYARD_TEST_PROMETHEUS ?? '/usr/bin/prometheus'

export async function prometheusInstalled(): Promise<boolean> {
  return access(PROMETHEUS_BINARY).then(
    () => true,
    () => false
  )
}

export interface PrometheusServer {
  /** base URL, without credentials */
  url: string
  /** the authorization header its web config wants, when it has basic auth */
  authorization: string | undefined
  output(): string
  close(): Promise<void>
}

export interface PrometheusServerOptions {
  /** host:port of the /metrics endpoints to scrape, every second */
  targets: string[]
  /** basic auth on its web endpoints: the user, the password and its bcrypt hash */
  basicAuth?: { user: string; password: string; bcrypt: string }
}

/**
 * A real Prometheus on 127.0.0.1 with a fresh TSDB in a temporary directory, scraping
 * `targets` every second; resolves once /-/ready answers 200. Use `t.teardown(server.close)`.
 */
export async function startPrometheus(options: PrometheusServerOptions): Promise<PrometheusServer> {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-prometheus-'))
  const port = await freePort()
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: switchyard',
    '    static_configs:',
    `      - targets: [${options.targets.map((target) => JSON.stringify(target)).join(', ')}]`
  ]
  await writeFile(join(dir, 'prometheus.yml'), config.join('\n') + '\n')
  const args = [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`]
  let authorization: string | undefined
  if (options.basicAuth) {
    const { user, password, bcrypt } = options.basicAuth
    await writeFile(join(dir, 'web.yml'), `basic_auth_users:\n  ${JSON.stringify(user)}: ${JSON.stringify(bcrypt)}\n`)
    args.push(`--web.config.file=${join(dir, 'web.yml')}`)
    authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
  }
  const child = spawn(PROMETHEUS_BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(killer)
    }
    await rm(dir, { recursive: true, force: true })
  }
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await close()
      throw new Error(`prometheus exited before it was ready:\n${output}`)
    }
    const ready = await request(`${url}/-/ready`, { headers: authorization ? { authorization } : {} }).then(
      async (response) => (await response.body.dump(), response.statusCode === 200),
      () => false
    )
    if (ready) break
    if (Date.now() > deadline) {
      await close()
      throw new Error(`prometheus not ready after 30 s:\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { url, authorization, output: () => output, close }
}
