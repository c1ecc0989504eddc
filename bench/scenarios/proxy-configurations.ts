import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { spawnChild } from '../lib/children.js'
import { waitForHttp } from '../lib/http.js'
import type { Pinning } from '../lib/pinning.js'
import { projectRoot } from '../lib/paths.js'
import { freePorts } from '../lib/ports.js'
import { startRouterProcess, TRACING_OFF, type RegistryProcess } from '../lib/switchyard-processes.js'
import { haproxy, nginx, type NativePeer } from '../peers/native-peers.js'
import type { WeightedTarget } from '../peers/weighted-targets.js'

/** One configuration of the proxy scenario, running and ready for load. */
export interface RunningConfiguration {
  name: string
  /** what it is, versions included */
  label: string
  /** where the load generator sends requests */
  url: string
  /** the proxy process whose CPU and memory are sampled; undefined for direct */
  pid: number | undefined
  stop(): Promise<void>
}

export interface ConfigurationEnvironment {
  targets: readonly WeightedTarget[]
  registry: RegistryProcess
  pinning: Pinning
  tempDir: string
  /** base URL of the stand-in OTLP collector, for the tracing configurations */
  otlpSink: string
}

export interface ConfigurationDefinition {
  name: string
  /** why it cannot run here, or undefined */
  missing(): string | undefined
  start(environment: ConfigurationEnvironment): Promise<RunningConfiguration>
}

const PATH = '/api/hello'
const require = createRequire(import.meta.url)

function packageVersion(name: string): string {
  try {
    return (require(`${name}/package.json`) as { version: string }).version
  } catch {
    return '?'
  }
}

function switchyardVersion(): string {
  try {
    return (JSON.parse(readFileSync(`${projectRoot}package.json`, 'utf8')) as { version: string }).version
  } catch {
    return '?'
  }
}

function peerScript(file: string): string {
  return fileURLToPath(new URL(`../peers/${file}`, import.meta.url))
}

const direct: ConfigurationDefinition = {
  name: 'direct',
  missing: () => undefined,
  start({ targets }) {
    const first = targets[0] as WeightedTarget
    return Promise.resolve({
      name: 'direct',
      label: `no proxy: straight to one upstream instance (${first.origin})`,
      url: `${first.origin}${PATH}`,
      pid: undefined,
      stop: async () => {}
    })
  }
}

type TracingVariant = { name: string; description: string; env(sink: string): Record<string, string> } | undefined

function switchyardConfiguration(tracing: TracingVariant): ConfigurationDefinition {
  const name = tracing ? tracing.name : 'switchyard'
  return {
    name,
    missing: () => undefined,
    async start({ registry, pinning, otlpSink }) {
      const router = await startRouterProcess({
        registryUrl: registry.url,
        token: registry.routerToken,
        cpus: pinning.proxy,
        tracingEnv: tracing ? tracing.env(otlpSink) : TRACING_OFF
      })
      await waitForHttp(`${router.proxyUrl}${PATH}`, `${name} (first proxied request)`, router.child)
      return {
        name,
        label: `switchyard router ${switchyardVersion()} (metrics on, ${tracing ? tracing.description : 'tracing off'}; Fastify ${packageVersion('fastify')}, undici ${packageVersion('undici')})`,
        url: `${router.proxyUrl}${PATH}`,
        pid: router.child.pid,
        stop: async () => void (await router.child.stop())
      }
    }
  }
}

const otlp = (sink: string, sampler: Record<string, string>): Record<string, string> => ({
  OTEL_TRACES_EXPORTER: 'otlp',
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${sink}/v1/traces`,
  OTEL_SDK_DISABLED: 'false',
  ...sampler
})

/** Tracing on, 1% of new traces sampled (what a busy production router would run). */
const tracedSampled: TracingVariant = {
  name: 'switchyard-trace-1pct',
  description: 'tracing on, 1% sampled (parentbased_traceidratio 0.01), OTLP/HTTP to a local sink',
  env: (sink) => otlp(sink, { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.01' })
}

/** Tracing on, every request traced and exported: the upper bound of its cost. */
const tracedAll: TracingVariant = {
  name: 'switchyard-trace-all',
  description: 'tracing on, every request sampled (always_on), OTLP/HTTP to a local sink',
  env: (sink) => otlp(sink, { OTEL_TRACES_SAMPLER: 'always_on' })
}

function nodePeer(name: string, script: string, label: () => string): ConfigurationDefinition {
  return {
    name,
    missing: () => undefined,
    async start({ targets, pinning }) {
      const [port] = await freePorts(1)
      const args = [peerScript(script), String(port), ...targets.map((target) => `${target.origin}=${target.weight}`)]
      const child = spawnChild(name, process.execPath, args, { cpus: pinning.proxy })
      const url = `http://127.0.0.1:${port}${PATH}`
      await waitForHttp(url, name, child)
      return { name, label: label(), url, pid: child.pid, stop: async () => void (await child.stop()) }
    }
  }
}

function nativePeer(peer: NativePeer): ConfigurationDefinition {
  return {
    name: peer.name,
    missing: () => peer.missing(),
    async start({ targets, pinning, tempDir }) {
      const [port] = await freePorts(1)
      const { command, args } = peer.prepare(`${tempDir}/${peer.name}`, port as number, targets)
      const child = spawnChild(peer.name, command, args, { cpus: pinning.proxy })
      const url = `http://127.0.0.1:${port}${PATH}`
      await waitForHttp(url, peer.name, child)
      return { name: peer.name, label: `${peer.version()} (1 ${peer.name === 'nginx' ? 'worker' : 'thread'})`, url, pid: child.pid, stop: async () => void (await child.stop()) }
    }
  }
}

/** Every configuration, in the order they take turns in each round. */
export const CONFIGURATIONS: readonly ConfigurationDefinition[] = [
  direct,
  switchyardConfiguration(undefined),
  switchyardConfiguration(tracedSampled),
  switchyardConfiguration(tracedAll),
  nodePeer(
    'fastify-http-proxy',
    'fastify-http-proxy.js',
    () => `@fastify/http-proxy ${packageVersion('@fastify/http-proxy')} (reply-from ${packageVersion('@fastify/reply-from')}, undici pools)`
  ),
  nodePeer('node-http-proxy', 'node-http-proxy.js', () => `http-proxy ${packageVersion('http-proxy')} (node:http keep-alive agent)`),
  // Not a peer but a yardstick: the ceiling of any Node.js proxy's speed and the floor of its memory.
  nodePeer('node-undici-floor', 'node-undici-floor.js', () => `reference: bare node:http + undici ${packageVersion('undici')} Pool.stream, weighted, no features`),
  nativePeer(haproxy),
  nativePeer(nginx)
]
