import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { spawnChild, type Child } from './children.js'
import { waitForHttp } from './http.js'
import { freePorts } from './ports.js'
import { cliPath, TRACING_OFF, type RegistryProcess } from './switchyard-processes.js'

export interface MessageRouterProcess {
  adminUrl: string
  child: Child
}

/**
 * The message router as a real process (`node dist/cli/main.js message-router`), following
 * `registry` and relaying one topic to the queues of `service`'s versions on `brokerUrl`,
 * tracing off. Resolves once /readyz answers 200: it has its first routing table and
 * consumes the topic queue.
 */
export async function startMessageRouterProcess(options: {
  registry: RegistryProcess
  brokerUrl: string
  topic: string
  service: string
  prefetch: number
  /** where its config file goes */
  directory: string
  cpus?: string | undefined
}): Promise<MessageRouterProcess> {
  const [adminPort] = (await freePorts(1)) as [number]
  const configFile = join(options.directory, 'message-router.json')
  await writeFile(configFile, JSON.stringify({ topics: [{ name: options.topic, service: options.service }], prefetch: options.prefetch }))
  const args = [
    cliPath,
    'message-router',
    '--admin-host',
    '127.0.0.1',
    '--admin-port',
    String(adminPort),
    '--registry',
    options.registry.url,
    '--config',
    configFile,
    '--log-level',
    'warn'
  ]
  // The broker URL carries a password: pass it in the environment, not in the (visible) argv.
  const env = { SWITCHYARD_TOKEN: options.registry.routerToken, SWITCHYARD_BROKER: options.brokerUrl, ...TRACING_OFF }
  const child = spawnChild('message router', process.execPath, args, { env, cpus: options.cpus })
  const adminUrl = `http://127.0.0.1:${adminPort}`
  await waitForHttp(`${adminUrl}/readyz`, 'the message router', child, 30_000)
  return { adminUrl, child }
}
