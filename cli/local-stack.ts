import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createWriteStream, mkdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { RegistryClient } from '../registry/client/registry-client.js'
import { formatTable } from './output.js'
import { UsageError } from './usage-error.js'

const distRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const projectRoot = resolve(distRoot, '..')

interface Port {
  name: string
  env: string
  value: number
}

interface Child {
  name: string
  process: ChildProcess
  exited: Promise<number | null>
}

export interface LocalStackOptions {
  env: Readonly<Record<string, string | undefined>>
  out: (text: string) => void
}

function portFrom(env: LocalStackOptions['env'], name: string, variable: string, fallback: number): Port {
  const raw = env[variable]
  const value = raw === undefined || raw === '' ? fallback : Number(raw)
  if (!Number.isInteger(value) || value < 1 || value > 65535) throw new UsageError(`${variable}=${raw} is not a port number`)
  return { name, env: variable, value }
}

function assertFree(port: Port): Promise<void> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer()
    probe.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new UsageError(`port ${port.value} (${port.name}) is ${error.code === 'EADDRINUSE' ? 'already in use' : `unavailable: ${error.code}`}; set ${port.env} to use another`)
      )
    )
    probe.listen(port.value, '127.0.0.1', () => probe.close(() => resolvePort()))
  })
}

async function waitUntil(what: string, check: () => Promise<boolean>, children: Child[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check().catch(() => false)) return
    for (const child of children)
      if (child.process.exitCode !== null) throw new Error(`${child.name} exited with code ${child.process.exitCode} while waiting for ${what}; see its log`)
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function answers(url: string): Promise<boolean> {
  const response = await request(url, { headersTimeout: 1_000, bodyTimeout: 1_000 })
  await response.body.dump()
  return response.statusCode === 200
}

/**
 * `npm start`: the whole mesh on this machine from one command. Each component runs as
 * its own process (as in production), logs go to .switchyard/logs, and Ctrl-C stops
 * them in order: services drain first, the router last but one, the registry last.
 */
export async function runLocalStack(options: LocalStackOptions): Promise<void> {
  const { env, out } = options
  const registryPort = portFrom(env, 'registry', 'SWITCHYARD_REGISTRY_PORT', 8761)
  const routerPort = portFrom(env, 'router', 'SWITCHYARD_ROUTER_PORT', 8080)
  const adminPort = portFrom(env, 'router admin', 'SWITCHYARD_ROUTER_ADMIN_PORT', 9901)
  for (const port of [registryPort, routerPort, adminPort]) await assertFree(port)

  const token = env.SWITCHYARD_ADMIN_TOKEN || randomBytes(24).toString('base64url')
  const stateDir = resolve(env.SWITCHYARD_STATE_DIR || join(projectRoot, '.switchyard'))
  const logDir = join(stateDir, 'logs')
  mkdirSync(logDir, { recursive: true })
  const registryUrl = `http://127.0.0.1:${registryPort.value}`
  const baseEnv = { ...process.env, ...env, SWITCHYARD_REGISTRY_URL: registryUrl, SWITCHYARD_TOKEN: token, SWITCHYARD_ADMIN_TOKEN: token }
  const cli = join(distRoot, 'cli', 'main.js')
  const api = join(distRoot, 'sample-services', 'api', 'main.js')
  const children: Child[] = []

  const launch = (name: string, args: string[], extraEnv: Record<string, string> = {}): Child => {
    const log = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' })
    const child = spawn(process.execPath, args, { env: { ...baseEnv, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout?.pipe(log)
    child.stderr?.pipe(log)
    const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)))
    const entry = { name, process: child, exited }
    children.push(entry)
    return entry
  }

  let stopping = false
  const stopAll = async () => {
    stopping = true
    // Services first (they drain and deregister), then the router, then the registry.
    const order = [...children.filter((c) => c.name.startsWith('api')), ...children.filter((c) => c.name === 'router'), ...children.filter((c) => c.name === 'registry')]
    for (const child of order) {
      if (child.process.exitCode === null) child.process.kill('SIGTERM')
      const timer = setTimeout(() => child.process.kill('SIGKILL'), 10_000)
      await child.exited
      clearTimeout(timer)
    }
  }

  try {
    out(`Starting the switchyard mesh (logs in ${logDir})\n`)
    launch('registry', [cli, 'registry', '--host', '127.0.0.1', '--port', String(registryPort.value), '--data-dir', join(stateDir, 'registry')])
    await waitUntil('the registry', () => answers(`${registryUrl}/readyz`), children)
    out(`  registry        ready on ${registryUrl}\n`)
    const client = new RegistryClient({ url: registryUrl, token })
    // Explicit from the start: v1.4 is a dark release until someone gives it traffic.
    await client.setWeights('api', { 'v1.3': 100, 'v1.4': 0 })

    const instances = [
      { name: 'api-v1.3-a', version: 'v1.3' },
      { name: 'api-v1.3-b', version: 'v1.3' },
      { name: 'api-v1.4-a', version: 'v1.4' }
    ]
    for (const instance of instances)
      launch(instance.name, [api], { SWITCHYARD_SERVICE: 'api', SWITCHYARD_VERSION: instance.version, SWITCHYARD_INSTANCE_ID: instance.name, SAMPLE_DRAIN_MS: '500', PORT: '0' })
    await waitUntil('the api instances', async () => (await client.service('api')).instances.length >= instances.length, children)
    out(`  api             ${instances.length} instances registered (v1.3 x2, v1.4 x1 at 0%)\n`)

    launch('router', [
      cli,
      'router',
      '--host',
      '127.0.0.1',
      '--port',
      String(routerPort.value),
      '--admin-host',
      '127.0.0.1',
      '--admin-port',
      String(adminPort.value),
      '--config',
      join(projectRoot, 'deploy', 'router.yaml')
    ])
    await waitUntil('the router', () => answers(`http://127.0.0.1:${adminPort.value}/readyz`), children)
    out(`  router          ready on http://127.0.0.1:${routerPort.value}\n\n`)

    out(
      formatTable(
        ['COMPONENT', 'URL', 'NOTES'],
        [
          ['router', `http://127.0.0.1:${routerPort.value}`, 'curl localhost:' + routerPort.value + '/api/hello'],
          ['router admin', `http://127.0.0.1:${adminPort.value}`, '/routes /metrics /readyz /healthz'],
          ['registry', registryUrl, '/v1/services /v1/watch /metrics'],
          ['api v1.3', '(2 instances)', 'weight 100'],
          ['api v1.4', '(1 instance)', 'weight 0: curl -H "x-switchyard-version: v1.4" ...']
        ]
      )
    )
    out(
      `\nAdmin token${env.SWITCHYARD_ADMIN_TOKEN ? ' (from SWITCHYARD_ADMIN_TOKEN)' : ' (generated for this run, shown once)'}:\n` +
        `  export SWITCHYARD_REGISTRY_URL=${registryUrl} SWITCHYARD_TOKEN=${env.SWITCHYARD_ADMIN_TOKEN ? '$SWITCHYARD_ADMIN_TOKEN' : token}\n` +
        `Shift traffic:  npx switchyard weights set api v1.3=90 v1.4=10\n` +
        `Watch changes:  npx switchyard watch\n` +
        `Press Ctrl-C to stop.\n`
    )

    await new Promise<void>((resolveRun, reject) => {
      const onSignal = () => resolveRun()
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      for (const child of children) {
        void child.exited.then((code) => {
          if (!stopping) reject(new Error(`${child.name} exited unexpectedly with code ${code}; see ${join(logDir, `${child.name}.log`)}`))
        })
      }
    })
    out('\nStopping: services drain first, the router next, the registry last...\n')
    await stopAll()
    out('Stopped.\n')
  } catch (error) {
    await stopAll()
    throw error
  }
}
