import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createWriteStream, mkdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { TSchema } from '@sinclair/typebox'
import { request } from 'undici'
import { settingMeta } from '../core/config.js'
import { RegistryClient } from '../registry/client/registry-client.js'
import { RegistrySettings } from '../registry/config.js'
import { RouterSettings } from '../router/config.js'
import { MessageRouterSettings } from '../router/messages/config.js'
import { LoadGenerator } from './load-generator.js'
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
  /** memory: the embedded broker in the message plane process; rabbitmq: AMQP_URL */
  broker: 'memory' | 'rabbitmq'
  /** requests per second of demo traffic to /api/hello (a fifth of it as orders), 0 for none */
  load?: number
}

/** A component's port: its own setting's env variable and default (one declaration, in its settings). */
function portFrom(env: LocalStackOptions['env'], name: string, setting: TSchema): Port {
  const variable = settingMeta(setting).env
  const raw = env[variable]
  const value = raw === undefined || raw === '' ? Number(setting.default) : Number(raw)
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

/** Ctrl-C while starting: stop what already runs, cleanly. */
class Interrupted extends Error {}
const interruption = { requested: false }

async function waitUntil(what: string, check: () => Promise<boolean>, children: Child[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (interruption.requested) throw new Interrupted()
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
  const registryPort = portFrom(env, 'registry', RegistrySettings.properties.port)
  const routerPort = portFrom(env, 'router', RouterSettings.properties.port)
  const adminPort = portFrom(env, 'router admin', RouterSettings.properties.adminPort)
  const messagePort = portFrom(env, 'message router admin', MessageRouterSettings.properties.adminPort)
  for (const port of [registryPort, routerPort, adminPort, messagePort]) await assertFree(port)
  const amqpUrl = env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672'

  const token = env.SWITCHYARD_ADMIN_TOKEN || randomBytes(24).toString('base64url')
  const stateDir = resolve(env.SWITCHYARD_STATE_DIR || join(projectRoot, '.switchyard'))
  const logDir = join(stateDir, 'logs')
  mkdirSync(logDir, { recursive: true })
  const registryUrl = `http://127.0.0.1:${registryPort.value}`
  // Each component names itself in traces unless told otherwise per process.
  const { OTEL_SERVICE_NAME: _sharedName, ...inherited } = { ...process.env, ...env }
  const baseEnv = { ...inherited, SWITCHYARD_REGISTRY_URL: registryUrl, SWITCHYARD_TOKEN: token, SWITCHYARD_ADMIN_TOKEN: token }
  const cli = join(distRoot, 'cli', 'main.js')
  const api = join(distRoot, 'sample-services', 'api', 'main.js')
  const webfront = join(distRoot, 'sample-services', 'webfront', 'main.js')
  const messagePlane = join(distRoot, 'sample-services', 'message-plane', 'main.js')
  const ordersWorker = join(distRoot, 'sample-services', 'orders-worker', 'main.js')
  const routerUrl = `http://127.0.0.1:${routerPort.value}`
  const messageRouterUrl = `http://127.0.0.1:${messagePort.value}`
  const children: Child[] = []

  const launch = (name: string, args: string[], extraEnv: Record<string, string> = {}): Child => {
    const log = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' })
    // Own process group: a terminal's Ctrl-C reaches only this process, which stops the
    // components in order (each one's second signal would cut its draining short).
    const child = spawn(process.execPath, args, { env: { ...baseEnv, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
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
    const byRole = (names: string[]) => children.filter((c) => names.some((name) => c.name.startsWith(name)))
    const order = [...byRole(['webfront', 'api']), ...byRole(['orders-worker', 'message']), ...byRole(['router']), ...byRole(['registry'])]
    for (const child of order) {
      if (child.process.exitCode === null) child.process.kill('SIGTERM')
      const timer = setTimeout(() => child.process.kill('SIGKILL'), 10_000)
      await child.exited
      clearTimeout(timer)
    }
  }

  let interrupt: () => void = () => {}
  const interrupted = new Promise<void>((resolveInterrupt) => (interrupt = resolveInterrupt))
  const onSignal = () => {
    interruption.requested = true
    interrupt()
    // A second Ctrl-C: stop waiting for draining.
    const force = () => children.forEach((child) => child.process.kill('SIGKILL'))
    process.once('SIGINT', force)
    process.once('SIGTERM', force)
  }
  // From the first child on: Ctrl-C at any moment must not leave processes behind.
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  try {
    out(`Starting the switchyard mesh (logs in ${logDir})\n`)
    launch('registry', [cli, 'registry', '--host', '127.0.0.1', '--port', String(registryPort.value), '--data-dir', join(stateDir, 'registry')])
    await waitUntil('the registry', () => answers(`${registryUrl}/readyz`), children)
    out(`  registry        ready on ${registryUrl}\n`)
    const client = new RegistryClient({ url: registryUrl, token })
    // Explicit from the start: v1.4 is a dark release until someone gives it traffic.
    // (set before their instances start: pre-provisioned, so allowUnregistered)
    await client.setWeights('api', { 'v1.3': 100, 'v1.4': 0 }, undefined, { allowUnregistered: true })
    await client.setWeights('webfront', { 'v1.3': 100 }, undefined, { allowUnregistered: true })
    await client.setWeights('orders-worker', { v1: 90, v2: 10 }, undefined, { allowUnregistered: true })

    const count = (variable: string, fallback: number) => {
      const raw = env[variable]
      const value = raw === undefined || raw === '' ? fallback : Number(raw)
      if (!Number.isInteger(value) || value < 0 || value > 50) throw new UsageError(`${variable}=${raw} is not an instance count from 0 to 50`)
      return value
    }
    const apiV13 = count('SWITCHYARD_LOCAL_API_V13', 2)
    const apiV14 = count('SWITCHYARD_LOCAL_API_V14', 1)
    const webfronts = count('SWITCHYARD_LOCAL_WEBFRONT', 2)
    const instances = [
      ...Array.from({ length: apiV13 }, (_, i) => ({ name: `api-v1.3-${i + 1}`, version: 'v1.3' })),
      ...Array.from({ length: apiV14 }, (_, i) => ({ name: `api-v1.4-${i + 1}`, version: 'v1.4' }))
    ]
    for (const instance of instances)
      launch(instance.name, [api], {
        SWITCHYARD_SERVICE: 'api',
        SWITCHYARD_VERSION: instance.version,
        SWITCHYARD_INSTANCE_ID: instance.name,
        SAMPLE_DRAIN_MS: '500',
        PORT: '0',
        // The walkthrough's bad release: v1.4 answering some requests with 500.
        SAMPLE_ERROR_RATE: (instance.version === 'v1.4' ? env.SWITCHYARD_LOCAL_API_V14_ERROR_RATE : undefined) ?? '0'
      })
    await waitUntil('the api instances', async () => (await client.service('api')).instances.length >= instances.length, children)
    out(`  api             ${instances.length} instances registered (v1.3 x${apiV13}, v1.4 x${apiV14} at 0%)\n`)

    for (const name of Array.from({ length: webfronts }, (_, i) => `webfront-v1.3-${i + 1}`)) {
      launch(name, [webfront], {
        SWITCHYARD_VERSION: 'v1.3',
        SWITCHYARD_INSTANCE_ID: name,
        SAMPLE_DRAIN_MS: '500',
        PORT: '0',
        ROUTER_URL: routerUrl,
        MESSAGE_ROUTER_URL: messageRouterUrl
      })
    }
    const messageEnv = {
      SWITCHYARD_MESSAGE_ROUTER_ADMIN_HOST: '127.0.0.1',
      SWITCHYARD_MESSAGE_ROUTER_ADMIN_PORT: String(messagePort.value),
      SWITCHYARD_TOPICS: 'orders=orders-worker',
      // The walkthrough's bad queue consumer: orders-worker v2 rejecting some orders.
      ORDERS_REJECT_RATES: `v2=${env.SWITCHYARD_LOCAL_ORDERS_V2_REJECT_RATE ?? '0'}`
    }
    if (options.broker === 'memory') {
      launch('message-plane', [messagePlane], messageEnv)
    } else {
      launch('message-router', [cli, 'message-router', '--broker', amqpUrl], messageEnv)
      for (const version of ['v1', 'v2'])
        launch(`orders-worker-${version}`, [ordersWorker], {
          SWITCHYARD_VERSION: version,
          AMQP_URL: amqpUrl,
          PORT: '0',
          ORDERS_REJECT_RATE: (version === 'v2' ? env.SWITCHYARD_LOCAL_ORDERS_V2_REJECT_RATE : undefined) ?? '0'
        })
    }
    await waitUntil(
      'webfront and the orders workers',
      async () => (await client.service('webfront')).instances.length >= webfronts && (await client.service('orders-worker')).instances.length >= 2,
      children
    )
    await waitUntil('the message router', () => answers(`${messageRouterUrl}/readyz`), children)
    out(`  webfront        ${webfronts} instances registered (v1.3)\n`)
    out(`  message router  ready on ${messageRouterUrl} (${options.broker === 'memory' ? 'in-memory broker' : 'RabbitMQ'}), orders-worker v1 90% / v2 10%\n`)

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
          ['webfront', `${routerUrl}/`, 'the shop page, through the router'],
          ['router', routerUrl, 'curl localhost:' + routerPort.value + '/api/hello'],
          ['router admin', `http://127.0.0.1:${adminPort.value}`, '/routes /metrics /readyz /healthz'],
          ['registry', registryUrl, '/v1/services /v1/watch /metrics'],
          ['console', `${registryUrl}/console/`, 'sign in with the admin token below'],
          ['api v1.3', `(${apiV13} instances)`, 'weight 100'],
          ['api v1.4', `(${apiV14} instances)`, 'weight 0: curl -H "x-switchyard-version: v1.4" ...'],
          ['message router', messageRouterUrl, `orders: curl -X POST ${routerUrl}/orders`]
        ]
      )
    )
    out(
      `\nAdmin token${env.SWITCHYARD_ADMIN_TOKEN ? ' (from SWITCHYARD_ADMIN_TOKEN)' : ' (generated for this run, shown once)'}:\n` +
        `  export SWITCHYARD_REGISTRY_URL=${registryUrl} SWITCHYARD_TOKEN=${env.SWITCHYARD_ADMIN_TOKEN ? '$SWITCHYARD_ADMIN_TOKEN' : token}\n` +
        `Shift traffic:  npx switchyard weights set api v1.3=90 v1.4=10\n` +
        `Watch changes:  npx switchyard watch\n` +
        (env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_TRACES_EXPORTER
          ? `Tracing:        on (${env.OTEL_TRACES_EXPORTER ?? 'otlp'} ${env.OTEL_EXPORTER_OTLP_ENDPOINT ?? ''})\n`
          : `Tracing:        off; to see traces in Jaeger run it with OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318\n`) +
        `Press Ctrl-C to stop.\n`
    )

    const load = options.load ?? 0
    const generators =
      load > 0
        ? [
            new LoadGenerator({ url: `${routerUrl}/api/hello`, rps: load, method: 'GET', headers: {}, maxInFlight: Math.max(16, load) }),
            new LoadGenerator({
              url: `${routerUrl}/orders`,
              rps: Math.max(1, load / 5),
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ item: 'demo', quantity: 1 }),
              maxInFlight: 16
            })
          ]
        : []
    for (const generator of generators) void generator.run()
    if (load > 0) out(`Demo traffic:   ${load} req/s to /api/hello, ${Math.max(1, load / 5)} orders/s (--load)\n`)

    await new Promise<void>((resolveRun, reject) => {
      void interrupted.then(() => Promise.all(generators.map((generator) => generator.stop()))).then(() => resolveRun())
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
    if (error instanceof Interrupted) {
      out('Stopped while starting.\n')
      return
    }
    throw error
  }
}
