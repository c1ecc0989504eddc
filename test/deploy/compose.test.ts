/**
 * docker-compose.yml, deploy/prometheus.yml and deploy/grafana checked against the code,
 * without a Docker engine: the Compose Specification schema, the files and subcommands
 * each service runs, the env each is given (from the settings schemas, imported), every
 * port (resolved by the components' own config parsers from the flags and env compose
 * passes), the healthcheck one-liners and the shell entrypoints (run here for real),
 * the Prometheus targets and the Grafana dashboard's metric names. The profile `ha` is
 * held to the same checks, and its etcd members are started here (Debian's etcd, on
 * 127.0.0.1) with the flags compose gives them.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Ajv } from 'ajv'
import type { TObject, TSchema } from '@sinclair/typebox'
import { parse as parseYaml } from 'yaml'
import { parseConfig, settingMeta } from '../../core/config.js'
import { parseRegistryUrls } from '../../core/registry-urls.js'
import { parseRegistryConfig, RegistrySettings } from '../../registry/config.js'
import { loadProxyConfig, parseRouterSettings, RouterSettings } from '../../router/config.js'
import { MessageRouterSettings, parseMessageRouterSettings } from '../../router/messages/config.js'
import { SampleServiceSettings } from '../../sample-services/api/server.js'
import { OrdersWorkerSettings } from '../../sample-services/orders-worker/settings.js'
import { WebfrontSettings } from '../../sample-services/webfront/settings.js'
import { freePorts } from '../../bench/lib/ports.js'
import { ETCD_BINARY, ETCDCTL_BINARY, etcdInstalled } from '../helpers/etcd-cluster.js'
import { startTestRegistry, TOKENS } from '../helpers/registry-harness.js'
import {
  cleanEnv,
  composePath,
  composeSchemaPath,
  dockerfilePath,
  environmentOf,
  execForm,
  copyArgs,
  freePort,
  isIgnored,
  parseDockerfile,
  portsOf,
  projectRoot,
  readCompose,
  readComposeRaw,
  readDockerignore,
  run,
  sourceOf,
  waitFor
} from './helpers.js'

const TOKEN = 'compose-test-admin-token-0123456789'
const compose = readCompose({ SWITCHYARD_ADMIN_TOKEN: TOKEN })
const services: Record<string, any> = compose.services
const stages = parseDockerfile(readFileSync(dockerfilePath, 'utf8'))
const finalStage = stages.at(-1)!
const imageEntrypoint = execForm(finalStage.instructions.findLast((i) => i.keyword === 'ENTRYPOINT')!)
const imageCmdInstruction = finalStage.instructions.findLast((i) => i.keyword === 'CMD')
const imageCmd = imageCmdInstruction ? execForm(imageCmdInstruction) : []
const ignoreRules = readDockerignore()
const cli = join(projectRoot, 'dist', 'cli', 'main.js')

/**
 * Environment variables a process may be given although no settings schema declares
 * them. The OTEL_* names are the OpenTelemetry specification's standard SDK variables,
 * read by the SDK that telemetry/tracing.ts starts (service name, exporter, endpoint,
 * sampler, propagators; README "Tracing"), not by our schemas; an explicit list, so a
 * misspelt name fails.
 * NODE_ENV is read by Node.js libraries (the image sets it to production).
 */
const ENV_READ_OUTSIDE_SCHEMAS = new Set([
  'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES',
  'OTEL_TRACES_EXPORTER',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_EXPORTER_OTLP_HEADERS',
  'OTEL_EXPORTER_JAEGER_ENDPOINT',
  'OTEL_TRACES_SAMPLER',
  'OTEL_TRACES_SAMPLER_ARG',
  'OTEL_PROPAGATORS',
  'OTEL_SDK_DISABLED',
  'NODE_ENV'
])

/**
 * Ports the third-party images listen on by default (their own documentation); not
 * switchyard's code, so taken as given.
 */
const THIRD_PARTY: Record<string, { image: RegExp; ports: Record<number, string> }> = {
  rabbitmq: { image: /^rabbitmq:4[.\d]*-management$/, ports: { 5672: 'AMQP', 15672: 'management UI', 15692: 'Prometheus metrics (rabbitmq_prometheus plugin)' } },
  jaeger: { image: /^jaegertracing\/jaeger:2\.\d+\.\d+$/, ports: { 4317: 'OTLP gRPC', 4318: 'OTLP HTTP', 16686: 'UI' } },
  prometheus: { image: /^prom\/prometheus:v3\./, ports: { 9090: 'web and API' } },
  grafana: { image: /^grafana\/grafana:\d/, ports: { 3000: 'web' } },
  // the profile `ha`: etcd's official image, 3.5 (the registry's etcd store is tested on 3.4 and 3.5)
  ...Object.fromEntries(
    ['etcd-1', 'etcd-2', 'etcd-3'].map((name) => [name, { image: /^quay\.io\/coreos\/etcd:v3\.5\.\d+$/, ports: { 2379: 'etcd client API', 2380: 'etcd peers' } }])
  )
}

/** Services `docker compose up` starts with no profile: the stack as it was before the profile `ha`. */
const DEFAULT_STACK = [
  'registry',
  'init-weights',
  'router',
  'message-router',
  'api-v13',
  'api-v14',
  'webfront-v13',
  'webfront-v14',
  'orders-worker-v1',
  'orders-worker-v2',
  'rabbitmq',
  'jaeger',
  'prometheus',
  'grafana'
]
/** What `--profile ha` adds. */
const HA_STACK = ['etcd-1', 'etcd-2', 'etcd-3', 'registry-1', 'registry-2', 'init-weights-ha', 'router-ha', 'api-ha-v13', 'api-ha-v14']

const profilesOf = (service: any): string[] => service?.profiles ?? []
/** The services compose starts with `--profile <profile>` (none: plain `docker compose up`). */
const stackOf = (profile?: string) =>
  Object.keys(services).filter((name) => {
    const profiles = profilesOf(services[name])
    return profiles.length === 0 || (profile !== undefined && profiles.includes(profile))
  })

interface Listener {
  port: number
  host: string
  /** paths served there ('*' for the proxy: anything) */
  paths: string[]
}

interface SwitchyardProcess {
  service: string
  kind: 'registry' | 'router' | 'message-router' | 'cli-client' | 'sample'
  /** the TypeScript source of the file node runs */
  source: string
  settings?: TObject
  config: Record<string, any>
  listeners: Listener[]
  /** env names this process reads */
  reads: Set<string>
  /** CLI subcommands it runs, e.g. ['router'] or ['weights get', 'weights set'] */
  subcommands: string[]
  flags: string[]
}

const SAMPLES: Record<string, { settings: TObject; paths: string[]; registersAs: (config: any) => string }> = {
  'sample-services/api/main.ts': { settings: SampleServiceSettings, paths: ['/healthz', '/'], registersAs: (config) => config.service },
  'sample-services/webfront/main.ts': { settings: WebfrontSettings, paths: ['/healthz', '/'], registersAs: () => 'webfront' },
  'sample-services/orders-worker/main.ts': { settings: OrdersWorkerSettings, paths: ['/healthz', '/stats'], registersAs: () => 'orders-worker' }
}

const isSwitchyard = (service: any) => service.build !== undefined || service.image === services.registry?.image

function envNames(settings: TObject): Set<string> {
  return new Set(Object.values(settings.properties).map((property) => settingMeta(property as TSchema).env))
}

/** --flag value pairs -> settings keys (flags the settings declare, or the program's --registry/--token). */
function flagsFor(settings: TObject, args: string[]): { flags: Record<string, unknown>; names: string[] } {
  const byFlag = new Map(Object.entries(settings.properties).map(([key, property]) => [settingMeta(property as TSchema).flag, key]))
  const flags: Record<string, unknown> = {}
  const names: string[] = []
  for (let i = 0; i < args.length; i += 2) {
    const flag = args[i] as string
    if (!flag.startsWith('--') || args[i + 1] === undefined) throw new Error(`cannot read "${args.join(' ')}" as --flag value pairs`)
    const key = byFlag.get(flag.slice(2))
    if (!key) throw new Error(`${flag} is not a setting of this component`)
    flags[key] = args[i + 1]
    names.push(flag)
  }
  return { flags, names }
}

/** The CLI's server subcommands: their settings, how they parse them, and where they listen. */
const COMPONENTS: Record<
  string,
  {
    settings: TObject
    parse: (flags: Record<string, unknown>, env: Record<string, string>) => any
    alsoReads?: string[]
    listeners: (config: any) => SwitchyardProcess['listeners']
  }
> = {
  registry: {
    settings: RegistrySettings,
    parse: parseRegistryConfig,
    // SWITCHYARD_ADMIN_TOKEN is read by registry/server.ts besides the schema (dockerfile.test.ts proves it works)
    alsoReads: ['SWITCHYARD_ADMIN_TOKEN'],
    listeners: (config) => [{ port: config.port, host: config.host, paths: ['/healthz', '/readyz', '/metrics', '/v1/'] }]
  },
  router: {
    settings: RouterSettings,
    parse: parseRouterSettings,
    listeners: (config) => [
      { port: config.port, host: config.host, paths: ['*'] },
      { port: config.adminPort, host: config.adminHost, paths: ['/healthz', '/readyz', '/metrics', '/routes'] }
    ]
  },
  'message-router': {
    settings: MessageRouterSettings,
    parse: parseMessageRouterSettings,
    listeners: (config) => [{ port: config.adminPort, host: config.adminHost, paths: ['/healthz', '/readyz', '/metrics', '/routes', '/v1/topics/'] }]
  }
}

/** What a compose service runs, resolved the way docker does: entrypoint + command over the image's. */
function describe(name: string, service: any): SwitchyardProcess {
  const entrypoint: string[] = service.entrypoint ?? imageEntrypoint
  const command: string[] = service.command ?? (service.entrypoint ? [] : imageCmd)
  if (!Array.isArray(entrypoint) || !Array.isArray(command)) throw new Error(`${name}: write entrypoint and command as lists`)
  const env = environmentOf(service)
  if (entrypoint[0] === 'node' && entrypoint[1] === 'dist/cli/main.js' && entrypoint.length === 2) {
    const [subcommand, ...args] = command as [string, ...string[]]
    const source = sourceOf(entrypoint[1])
    const component = COMPONENTS[subcommand]
    if (component) {
      const { flags, names } = flagsFor(component.settings, args)
      const config = component.parse(flags, env)
      return {
        service: name,
        kind: subcommand as SwitchyardProcess['kind'],
        source,
        settings: component.settings,
        config,
        reads: new Set([...envNames(component.settings), ...(component.alsoReads ?? [])]),
        subcommands: [subcommand],
        flags: names,
        listeners: component.listeners(config)
      }
    }
    throw new Error(`${name}: no check knows the subcommand "${subcommand}" yet`)
  }
  if (entrypoint[0] === '/bin/sh' && entrypoint[1] === '-c' && typeof entrypoint[2] === 'string') {
    const script = entrypoint[2]
    if (/exec node "\$@"/.test(script)) {
      // the sample entrypoint: `node <command>`
      const [file] = command as [string]
      const source = sourceOf(file)
      const sample = SAMPLES[source]
      if (!sample) throw new Error(`${name}: ${source} is not a known sample service`)
      const config = parseConfig(sample.settings, {}, env) as Record<string, any>
      return {
        service: name,
        kind: 'sample',
        source,
        settings: sample.settings,
        config,
        reads: envNames(sample.settings),
        subcommands: [],
        flags: [],
        listeners: [{ port: config.port, host: config.host, paths: sample.paths }]
      }
    }
    const calls = [...script.matchAll(/node (dist\/cli\/main\.js) (\w[\w-]*)(?: (get|set)\b)?/g)]
    if (calls.length === 0) throw new Error(`${name}: cannot tell what the entrypoint script runs`)
    const source = sourceOf(calls[0]![1] as string)
    const subcommands = [...new Set(calls.map((call) => [call[2], call[3]].filter(Boolean).join(' ')))]
    return { service: name, kind: 'cli-client', source, config: {}, reads: new Set(), subcommands, flags: [], listeners: [] }
  }
  throw new Error(`${name}: no check knows the entrypoint ${JSON.stringify(entrypoint)}`)
}

const processes = Object.entries(services)
  .filter(([, service]) => isSwitchyard(service))
  .map(([name, service]) => describe(name, service))
const processOf = (name: string) => processes.find((p) => p.service === name)

/** The registries a client follows: the URLs it is given, parsed as the clients parse them (comma-separated replicas). */
function registriesOf(p: SwitchyardProcess): URL[] {
  if (p.kind === 'registry') return []
  const text: unknown = p.kind === 'cli-client' ? environmentOf(services[p.service]).SWITCHYARD_REGISTRY_URL : p.config.registry
  if (typeof text !== 'string') throw new Error(`${p.service}: no registry URL`)
  return parseRegistryUrls(text).map((url) => new URL(url))
}

interface EtcdMemberService {
  service: string
  binary: string
  /** --flag=value, by flag */
  flags: Record<string, string>
}

/** The etcd members compose runs, with their command read as --flag=value pairs. */
function etcdMembers(): EtcdMemberService[] {
  return Object.entries<any>(services)
    .filter(([, service]) => /^quay\.io\/coreos\/etcd:/.test(service.image ?? ''))
    .map(([name, service]) => {
      const [binary, ...args] = service.command as string[]
      const flags: Record<string, string> = {}
      for (const arg of args) {
        const match = /^--([a-z-]+)=(.*)$/.exec(arg)
        if (!match) throw new Error(`${name}: write etcd's flags as --flag=value, not "${arg}"`)
        flags[match[1] as string] = match[2] as string
      }
      return { service: name, binary: binary as string, flags }
    })
}

/** The registry a client follows, as one key: its replicas' host:port, sorted. */
const registryKey = (p: SwitchyardProcess) =>
  registriesOf(p)
    .map((url) => url.host)
    .sort()
    .join(',')
const sameRegistry = (a: SwitchyardProcess, b: SwitchyardProcess) => registryKey(a) === registryKey(b)
const sameStack = (a: SwitchyardProcess, b: SwitchyardProcess) => profilesOf(services[a.service]).join() === profilesOf(services[b.service]).join()
/** Switchyard processes of the default stack (no profile). */
const defaultProcesses = () => processes.filter((p) => profilesOf(services[p.service]).length === 0)

/** Options, commands and env names from commander's help text. */
function readHelp(text: string) {
  const section = (title: string) => {
    const at = text.indexOf(`\n${title}:\n`)
    if (at < 0) return ''
    const rest = text.slice(at + title.length + 3)
    const end = rest.search(/\n\S/)
    return end < 0 ? rest : rest.slice(0, end)
  }
  return {
    options: [...section('Options').matchAll(/^ {2}(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1] as string),
    commands: [...section('Commands').matchAll(/^ {2}([\w-]+)/gm)].map((m) => m[1] as string),
    // "(env: NAME)" or "(env NAME, default ...)", as the options word it
    env: [...text.matchAll(/\(env:?\s+(\w+)/g)].map((m) => m[1] as string)
  }
}

const helpTexts = new Map<string, Promise<ReturnType<typeof readHelp>>>()
function help(args: string[]) {
  const key = args.join(' ')
  if (!helpTexts.has(key)) helpTexts.set(key, readHelpOf(args))
  return helpTexts.get(key)!
}

async function readHelpOf(args: string[]) {
  const result = await run(process.execPath, [cli, ...args, '--help'], { cwd: projectRoot, env: cleanEnv(), timeoutMs: 120_000 })
  if (result.code !== 0) throw new Error(`switchyard ${args.join(' ')} --help exited ${result.code}: ${result.stderr}`)
  return readHelp(result.stdout)
}

/** host:port pairs of URLs in a text (http, https, amqp, amqps; user:password@ skipped; a comma ends a URL, as in lists of replicas). */
function urlsIn(text: string): { url: string; host: string; port: number }[] {
  return [...text.matchAll(/\b(?:https?|amqps?):\/\/(?:[^@/\s"',]+@)?([A-Za-z0-9_.-]+):(\d+)[^\s"',]*/g)].map((m) => ({ url: m[0], host: m[1] as string, port: Number(m[2]) }))
}

/** Whether something in the compose network can reach service:port, and what answers there. */
function reachable(host: string, port: number): { ok: boolean; why: string; paths?: string[] } {
  const target = processOf(host)
  if (target) {
    const listener = target.listeners.find((l) => l.port === port)
    if (!listener) return { ok: false, why: `${host} listens on ${target.listeners.map((l) => l.port).join(', ') || 'no port'}, not ${port}` }
    if (listener.host !== '0.0.0.0') return { ok: false, why: `${host} listens on ${listener.host}:${port}, unreachable from other containers` }
    return { ok: true, why: `${host}:${port}`, paths: listener.paths }
  }
  const third = THIRD_PARTY[host]
  if (third && services[host]) return third.ports[port] ? { ok: true, why: `${host}:${port} (${third.ports[port]})` } : { ok: false, why: `${host} does not listen on ${port}` }
  return { ok: false, why: `${host} is not a service of the compose file` }
}

void t.test('the compose file validates against the Compose Specification (draft-07)', (t) => {
  const schema = JSON.parse(readFileSync(composeSchemaPath, 'utf8'))
  // The file names its meta-schema "https://json-schema.org/draft-07/schema" (no "#"), an
  // id Ajv does not register; Ajv's default dialect is draft-07 itself.
  delete schema.$schema
  const ajv = new Ajv({ strict: false, allErrors: true, allowUnionTypes: true })
  const validate = ajv.compile(schema)
  const ok = validate(compose)
  t.ok(ok, 'valid: ' + ajv.errorsText(validate.errors, { separator: '\n' }))
  t.notOk(validate({ services: { registry: { ...services.registry, depends_on: { jaeger: { condition: 'when_ready' } } } } }), 'and the schema does reject a broken service')
  t.notOk(validate({ services: { registry: { ...services.registry, healtcheck: {} } } }), 'and a misspelt key')
  t.equal(compose.name, 'switchyard')
  t.end()
})

void t.test('profiles: the default stack is as it was, and `--profile ha` only adds to it', (t) => {
  t.same(stackOf(), DEFAULT_STACK, '`docker compose up` starts the stack it always did, nothing of the profile ha')
  t.same(stackOf('ha'), [...DEFAULT_STACK, ...HA_STACK], '`--profile ha` adds the etcd members, the registry replicas and their clients')
  t.same([...new Set(Object.values<any>(services).flatMap(profilesOf))], ['ha'], 'ha is the only profile')
  // a service never waits for one that its profiles leave out (compose refuses such a file)
  for (const [name, service] of Object.entries<any>(services)) {
    for (const target of Object.keys(service.depends_on ?? {})) {
      const needed = profilesOf(services[target])
      const ok = needed.length === 0 || (profilesOf(service).length > 0 && profilesOf(service).every((profile) => needed.includes(profile)))
      t.ok(ok, `${name} depends on ${target}, which runs whenever ${name} does`)
    }
  }
  t.end()
})

void t.test('the admin token comes from the environment, required, and is never in the file', (t) => {
  const refusal = { name: 'InterpolationError', message: /SWITCHYARD_ADMIN_TOKEN is missing a value: set SWITCHYARD_ADMIN_TOKEN to a secret of 16 or more characters/ }
  t.throws(() => readCompose({}), refusal, 'compose refuses to start without SWITCHYARD_ADMIN_TOKEN, and says why')
  t.throws(() => readCompose({ SWITCHYARD_ADMIN_TOKEN: '' }), refusal, 'or with an empty one')
  const raw = readComposeRaw()
  const tokenUses: string[] = []
  for (const [name, service] of Object.entries<any>(raw.services)) {
    for (const [key, value] of Object.entries(environmentOf(service))) {
      if (/TOKEN|PASSWORD|SECRET/.test(key) && !key.startsWith('GF_')) tokenUses.push(`${name}.${key}`)
      if (/TOKEN/.test(key)) t.match(value, /^\$\{SWITCHYARD_ADMIN_TOKEN:\?[^}]+\}$/, `${name}.${key} is \${SWITCHYARD_ADMIN_TOKEN:?...}`)
    }
  }
  t.ok(tokenUses.includes('registry.SWITCHYARD_ADMIN_TOKEN'), 'the registry gets the admin token')
  for (const p of processes.filter((p) => p.kind === 'registry')) {
    t.equal(environmentOf(services[p.service]).SWITCHYARD_ADMIN_TOKEN, TOKEN, `${p.service}: the admin token (replicas of one registry accept the same tokens)`)
  }
  for (const p of processes.filter((p) => p.reads.has('SWITCHYARD_TOKEN') || p.kind === 'cli-client')) {
    t.equal(environmentOf(services[p.service]).SWITCHYARD_TOKEN, TOKEN, `${p.service} gets a token for the registry (the admin token, for the demo)`)
  }
  t.notMatch(readFileSync(composePath, 'utf8'), /SWITCHYARD_ADMIN_TOKEN:\s*["']?[A-Za-z0-9]{16,}/, 'no literal token')
  t.end()
})

void t.test('every build context and Dockerfile exists', (t) => {
  let builds = 0
  for (const [name, service] of Object.entries<any>(services)) {
    if (!service.build) continue
    builds++
    const build = typeof service.build === 'string' ? { context: service.build } : service.build
    const context = join(projectRoot, build.context)
    t.ok(existsSync(context), `${name}: context ${build.context} exists`)
    t.ok(existsSync(join(context, build.dockerfile ?? 'Dockerfile')), `${name}: ${build.dockerfile} exists`)
    t.equal(service.image, services.registry.image, `${name}: one image name for every switchyard service`)
  }
  t.ok(builds >= 10, 'every switchyard service builds from the repository')
  t.end()
})

void t.test('every command is a file of the built package, a real subcommand and real flags', async (t) => {
  t.same(imageEntrypoint, ['node', 'dist/cli/main.js'], 'the image runs the CLI by default')
  const workdir = finalStage.instructions.findLast((i) => i.keyword === 'WORKDIR')?.rest
  t.equal(workdir, '/app', 'relative dist/ paths resolve from /app')
  const top = await help([])
  await Promise.all(processes.flatMap((p) => p.subcommands.map((subcommand) => help([subcommand.split(' ')[0] as string]))))
  for (const p of processes) {
    const file = join(projectRoot, p.source)
    t.ok(existsSync(file), `${p.service}: runs dist/${p.source.replace(/\.ts$/, '.js')}, compiled from ${p.source}`)
    t.notOk(isIgnored(p.source, ignoreRules), `${p.service}: ${p.source} is in the build context`)
    for (const subcommand of p.subcommands) {
      const [first, second] = subcommand.split(' ') as [string, string | undefined]
      t.ok(top.commands.includes(first), `${p.service}: \`switchyard ${first}\` exists`)
      const sub = await help([first])
      if (second) t.ok(sub.commands.includes(second), `${p.service}: \`switchyard ${subcommand}\` exists`)
      for (const flag of p.flags) t.ok(sub.options.includes(flag) || top.options.includes(flag), `${p.service}: \`switchyard ${first}\` takes ${flag}`)
    }
  }
  // absolute paths in commands are files the image's last stage copies from the repository
  const copied = finalStage.instructions
    .filter((i) => i.keyword === 'COPY' && !i.flags.from)
    .flatMap((i) => {
      const { sources, destination } = copyArgs(i)
      return sources.length === 1 && !destination.endsWith('/') ? [{ source: sources[0] as string, at: join('/app', destination) }] : []
    })
  for (const p of processes) {
    for (const arg of [...(services[p.service].command ?? [])]) {
      if (typeof arg !== 'string' || !arg.startsWith('/app/')) continue
      const copy = copied.find((c) => c.at === arg)
      t.ok(copy, `${p.service}: ${arg} is copied into the image`)
      if (copy) t.ok(existsSync(join(projectRoot, copy.source)), `${p.service}: ${copy.source} exists`)
    }
  }
  // each router's --config is a file of the repository, copied into the image or mounted,
  // and every route leads to a service that registers in the registry this router follows
  const routers = processes.filter((p) => p.kind === 'router')
  t.same(
    routers.map((p) => p.service),
    ['router', 'router-ha'],
    'a router per stack'
  )
  for (const router of routers) {
    t.ok(router.flags.includes('--config'), `${router.service}: gets its config file`)
    const at = router.config.config as string
    const mounted = (services[router.service].volumes ?? []).map((v: string) => v.split(':')).find(([, target]: string[]) => target === at)?.[0]
    const source = copied.find((c) => c.at === at)?.source ?? mounted
    t.ok(source, `${router.service}: ${at} is in the image or mounted`)
    if (!source) continue
    const proxy = await loadProxyConfig({ config: join(projectRoot, source) })
    t.ok(proxy.routes.length > 0, `${source} is a valid router config`)
    const registered = new Set(processes.filter((p) => p.kind === 'sample' && sameRegistry(p, router) && sameStack(p, router)).map((p) => SAMPLES[p.source]!.registersAs(p.config)))
    for (const route of proxy.routes) {
      t.ok(registered.has(route.service), `${router.service}: route ${route.name ?? route.match.pathPrefix} -> ${route.service}: its stack runs that service`)
    }
  }
})

void t.test('every env var a switchyard service is given is one its code reads', async (t) => {
  const top = await help([])
  for (const p of processes) {
    const reads = p.kind === 'cli-client' ? new Set(top.env) : p.reads
    t.ok(reads.size > 0, `${p.service}: knows what its code reads`)
    for (const key of Object.keys(environmentOf(services[p.service]))) {
      t.ok(reads.has(key) || ENV_READ_OUTSIDE_SCHEMAS.has(key), `${p.service}: ${key} is read by ${p.kind === 'sample' ? p.source : `switchyard ${p.subcommands.join(', ')}`}`)
    }
  }
})

void t.test('every switchyard process is told where to send traces', (t) => {
  t.match(services.jaeger?.image, THIRD_PARTY.jaeger!.image, 'Jaeger v2 all-in-one runs')
  for (const p of processes) {
    if (p.kind === 'cli-client') continue // a one-shot `switchyard weights` call: no tracing there
    const env = environmentOf(services[p.service])
    t.ok(env.OTEL_SERVICE_NAME, `${p.service}: OTEL_SERVICE_NAME=${env.OTEL_SERVICE_NAME}`)
    t.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://jaeger:4318', `${p.service}: OTLP over HTTP to Jaeger`)
  }
  t.end()
})

void t.test('ports: published, health-checked and linked ports are the ones the code listens on', (t) => {
  const expected: Record<string, number[]> = {
    registry: [8761],
    router: [8080, 9901],
    'message-router': [9902],
    'registry-1': [8761],
    'registry-2': [8761],
    'router-ha': [8080, 9901]
  }
  for (const [name, ports] of Object.entries(expected)) {
    t.same(
      processOf(name)!.listeners.map((l) => l.port),
      ports,
      `${name} listens on ${ports.join(' and ')}`
    )
  }
  t.same(
    portsOf(services.router).find((p) => p.target === 8080),
    { target: 8080, published: 8080 },
    'the router is public on 8080'
  )
  for (const p of processes) {
    for (const port of portsOf(services[p.service])) {
      const listener = p.listeners.find((l) => l.port === port.target)
      t.ok(listener, `${p.service}: publishes ${port.target}, a port it listens on`)
      t.equal(listener?.host, '0.0.0.0', `${p.service}: ${port.target} listens on every interface of the container`)
    }
    // every URL a process is given points at a service and port that answer
    const env = environmentOf(services[p.service])
    const texts = [...Object.entries(env).map(([key, value]) => `${key}=${value}`), ...(services[p.service].command ?? []).map(String)]
    for (const text of texts) {
      for (const url of urlsIn(text)) {
        const target = reachable(url.host, url.port)
        t.ok(target.ok, `${p.service}: ${url.url} -> ${target.why}`)
      }
    }
  }
  t.equal(processOf('router')!.config.registry, 'http://registry:8761', 'the router reads the registry in the network')
  t.equal(processOf('message-router')!.config.broker, 'amqp://guest:guest@rabbitmq:5672', 'the message router uses RabbitMQ')
  t.equal(processOf('message-router')!.config.topics, 'orders=orders-worker', 'orders go to orders-worker')
  const webfront = processOf('webfront-v13')!.config
  t.equal(webfront.routerUrl, 'http://router:8080', 'webfront calls api through the router')
  t.equal(webfront.messageRouterUrl, 'http://message-router:9902', 'webfront publishes orders to the message router')
  for (const name of ['orders-worker-v1', 'orders-worker-v2']) t.equal(processOf(name)!.config.broker, 'amqp://guest:guest@rabbitmq:5672', `${name} consumes from RabbitMQ`)
  // third-party services publish only their own ports
  for (const [name, third] of Object.entries(THIRD_PARTY)) {
    t.match(services[name]?.image, third.image, `${name} runs ${services[name]?.image}`)
    for (const port of portsOf(services[name])) t.ok(third.ports[port.target], `${name}: publishes ${port.target} (${third.ports[port.target]})`)
  }
  const published = Object.values<any>(services).flatMap((s) => portsOf(s).map((p) => p.published))
  for (const port of [8080, 16686, 4318, 9090, 3000]) t.ok(published.includes(port), `port ${port} is published`)
  t.same(
    ['registry-1', 'registry-2', 'router-ha'].map((name) => portsOf(services[name])),
    [
      [{ target: 8761, published: 8762, hostIp: '127.0.0.1' }],
      [{ target: 8761, published: 8763, hostIp: '127.0.0.1' }],
      [
        { target: 8080, published: 8081 },
        { target: 9901, published: 9911, hostIp: '127.0.0.1' }
      ]
    ],
    'ha: the replicas on 127.0.0.1:8762 and :8763, its router public on 8081 (admin on 127.0.0.1:9911)'
  )
  t.equal(new Set(published).size, published.length, 'no host port is published twice')
  // the registry's data directory is a volume
  const registry = processOf('registry')!
  const mounts = (services.registry.volumes ?? []).map((v: any) => (typeof v === 'string' ? v.split(':') : [v.source, v.target]))
  t.ok(
    mounts.some(([source, target]: [string, string]) => target === registry.config.dataDir && compose.volumes && source in compose.volumes),
    `the registry's --data-dir ${registry.config.dataDir} is a named volume`
  )
  // each etcd member's --data-dir is a named volume of its own
  const etcdVolumes = etcdMembers().map((member) => {
    const mount = (services[member.service].volumes as string[]).map((v) => v.split(':')).find(([, target]) => target === member.flags['data-dir'])
    t.ok(mount && compose.volumes && (mount[0] as string) in compose.volumes, `${member.service}: --data-dir ${member.flags['data-dir']} is a named volume`)
    return mount?.[0]
  })
  t.equal(new Set(etcdVolumes).size, 3, 'one volume per etcd member')
  // the clients: the default stack follows the registry, the ha stack both replicas, in every URL it is given
  for (const p of processes.filter((p) => p.kind !== 'registry')) {
    const ha = profilesOf(services[p.service]).includes('ha')
    t.same(
      registriesOf(p).map((url) => url.origin),
      ha ? ['http://registry-1:8761', 'http://registry-2:8761'] : ['http://registry:8761'],
      `${p.service}: follows ${ha ? 'both replicas' : 'the registry'}`
    )
  }
  t.end()
})

/** The URL a `node -e "fetch('...')..."` healthcheck fetches. */
function healthcheckUrl(service: any): URL | undefined {
  const test = service.healthcheck?.test
  if (!Array.isArray(test) || test[0] !== 'CMD' || test[1] !== 'node' || test[2] !== '-e') return undefined
  const match = /fetch\('([^']+)'\)/.exec(test[3] as string)
  return match ? new URL(match[1] as string) : undefined
}

void t.test('healthchecks probe the readiness endpoints on the ports the code listens on', async (t) => {
  for (const p of processes) {
    if (p.kind === 'cli-client') {
      t.equal(services[p.service].restart, 'no', `${p.service}: a one-shot job is not restarted`)
      continue
    }
    const url = healthcheckUrl(services[p.service])
    t.ok(url, `${p.service}: has a node -e "fetch(...)" healthcheck (the slim image has no curl)`)
    if (!url) continue
    t.equal(url.hostname, '127.0.0.1', `${p.service}: probes itself`)
    const listener = p.listeners.find((l) => l.port === Number(url.port))
    t.ok(listener, `${p.service}: probes port ${url.port}, where it listens`)
    const wanted = p.kind === 'sample' ? '/healthz' : '/readyz'
    t.equal(url.pathname, wanted, `${p.service}: probes ${wanted}`)
    t.ok(listener?.paths.includes(url.pathname), `${p.service}: ${url.pathname} is served on that port`)
  }
  // docker runs the one-liner: it must exit 0 on 200 and 1 on an error status or no answer
  const serve = (status: number) =>
    new Promise<Server>((resolve) => {
      const server = createServer((_request, response) => response.writeHead(status, { 'content-type': 'application/json' }).end('{}'))
      server.listen(0, '127.0.0.1', () => resolve(server))
    })
  const [healthy, unhealthy] = await Promise.all([serve(200), serve(503)])
  t.teardown(() => {
    healthy.close()
    unhealthy.close()
  })
  const portOf = (server: Server) => (server.address() as { port: number }).port
  const silent = await freePort()
  const snippets = new Set(processes.map((p) => services[p.service].healthcheck?.test?.[3]).filter((s): s is string => typeof s === 'string'))
  t.ok(snippets.size > 0, 'found the healthcheck one-liners')
  const exitCode = async (snippet: string, port: number) =>
    (await run(process.execPath, ['-e', snippet.replace(/http:\/\/127\.0\.0\.1:\d+/, `http://127.0.0.1:${port}`)], { cwd: projectRoot, env: cleanEnv(), timeoutMs: 20_000 })).code
  for (const snippet of snippets) {
    const [onOk, onError, onSilence] = await Promise.all([exitCode(snippet, portOf(healthy)), exitCode(snippet, portOf(unhealthy)), exitCode(snippet, silent)])
    t.equal(onOk, 0, 'healthy on 200')
    t.equal(onError, 1, 'unhealthy on 503')
    t.equal(onSilence, 1, 'unhealthy when nothing answers')
  }
})

void t.test('start-up order: depends_on waits for health where it matters', (t) => {
  for (const [name, service] of Object.entries<any>(services)) {
    const dependsOn = service.depends_on ?? {}
    const entries: [string, any][] = Array.isArray(dependsOn) ? dependsOn.map((d: string) => [d, { condition: 'service_started' }]) : Object.entries(dependsOn)
    for (const [target, options] of entries) {
      t.ok(services[target], `${name} depends on ${target}, a service`)
      if (options.condition === 'service_healthy') t.ok(services[target]?.healthcheck?.test, `${name} waits for ${target} to be healthy: ${target} has a healthcheck`)
      if (options.condition === 'service_completed_successfully') t.equal(services[target]?.restart, 'no', `${name} waits for ${target} to complete: ${target} runs once`)
    }
  }
  const condition = (name: string, target: string) => services[name]?.depends_on?.[target]?.condition
  for (const p of processes) {
    // a client starts once every replica of its registry is ready, a sample once its registry's first splits are set
    for (const url of registriesOf(p)) t.equal(condition(p.service, url.hostname), 'service_healthy', `${p.service} starts once ${url.hostname} is ready`)
    if (p.kind === 'sample') {
      const init = processes.filter((q) => q.kind === 'cli-client' && sameRegistry(q, p))
      t.equal(init.length, 1, `${p.service}: one init job sets the first splits in its registry`)
      for (const q of init) t.equal(condition(p.service, q.service), 'service_completed_successfully', `${p.service} registers after ${q.service} set the first splits`)
    }
    // a registry on etcd starts once every member it is given is healthy (a member is healthy only with a quorum)
    if (p.kind === 'registry' && p.config.store === 'etcd') {
      for (const endpoint of (p.config.etcdEndpoints as string).split(',')) {
        const member = new URL(endpoint).hostname
        t.equal(condition(p.service, member), 'service_healthy', `${p.service} starts once ${member} is healthy`)
      }
    }
    if (urlsIn(JSON.stringify(services[p.service])).some((u) => u.host === 'rabbitmq'))
      t.equal(condition(p.service, 'rabbitmq'), 'service_healthy', `${p.service} starts once RabbitMQ is up`)
  }
  t.end()
})

void t.test('versions and replicas: api v1.3 x5 and dark v1.4, webfront and orders workers per version', (t) => {
  const versions = (registersAs: string, among = defaultProcesses()) =>
    among
      .filter((p) => p.kind === 'sample' && SAMPLES[p.source]!.registersAs(p.config) === registersAs)
      .map((p) => ({ service: p.service, version: p.config.version, replicas: Number(services[p.service].deploy?.replicas ?? 1) }))
  t.same(versions('api'), [
    { service: 'api-v13', version: 'v1.3', replicas: 5 },
    { service: 'api-v14', version: 'v1.4', replicas: 1 }
  ])
  const webfront = versions('webfront')
  t.same(
    webfront.map((w) => w.version),
    ['v1.3', 'v1.4']
  )
  t.ok(webfront[0]!.replicas >= 1 && webfront[0]!.replicas <= 10, `webfront v1.3 runs ${webfront[0]!.replicas} replicas (scale to the use case's 10 with --scale)`)
  t.same(
    versions('orders-worker').map((w) => w.version),
    ['v1', 'v2']
  )
  const ha = processes.filter((p) => profilesOf(services[p.service]).includes('ha'))
  t.same(
    versions('api', ha),
    [
      { service: 'api-ha-v13', version: 'v1.3', replicas: 2 },
      { service: 'api-ha-v14', version: 'v1.4', replicas: 1 }
    ],
    'ha: api v1.3 x2 and the dark v1.4'
  )
  for (const p of processes.filter((p) => p.kind === 'sample')) {
    const service = services[p.service]
    t.notOk(service.container_name, `${p.service}: no container_name, so it can scale`)
    t.same(portsOf(service), [], `${p.service}: no published port, so replicas do not collide`)
    t.equal(p.config.host, '0.0.0.0', `${p.service}: listens on the container's interfaces`)
    t.equal(services[p.service].entrypoint?.[2], services['api-v13'].entrypoint?.[2], `${p.service}: advertises its own address (the sample entrypoint)`)
  }
  t.end()
})

void t.test('the sample entrypoint advertises the container its own IPv4 address', async (t) => {
  const [shell, dashC, script, zero] = services['api-v13'].entrypoint as string[]
  const probe = ['-e', "process.stdout.write(process.env.SWITCHYARD_ADVERTISE_HOST ?? '<unset>')"]
  const own = Object.values(networkInterfaces())
    .flat()
    .find((i) => i?.family === 'IPv4' && !i.internal)?.address
  const result = await run(shell as string, [dashC as string, script as string, zero as string, ...probe], { cwd: projectRoot, env: cleanEnv(), timeoutMs: 10_000 })
  if (own) {
    t.equal(result.code, 0, result.stderr)
    t.equal(result.stdout, own, `advertises ${own}, this machine's (container's) non-loopback address`)
    t.notMatch(result.stdout, /^127\./, 'never loopback')
  } else {
    t.not(result.code, 0, 'with no non-loopback address it fails rather than advertising 127.0.0.1')
  }
  const preset = await run(shell as string, [dashC as string, script as string, zero as string, ...probe], {
    cwd: projectRoot,
    env: cleanEnv({ SWITCHYARD_ADVERTISE_HOST: 'api.internal' }),
    timeoutMs: 10_000
  })
  t.equal(preset.stdout, 'api.internal', 'an address given in the environment wins')
})

void t.test('init-weights sets the first splits once and keeps a split set since', async (t) => {
  const registry = await startTestRegistry()
  t.teardown(registry.destroy)
  const [shell, dashC, script] = services['init-weights'].entrypoint as string[]
  const env = cleanEnv({ ...environmentOf(services['init-weights']), SWITCHYARD_REGISTRY_URL: registry.url, SWITCHYARD_TOKEN: TOKENS.admin })
  const runInit = () => run(shell as string, [dashC as string, script as string], { cwd: projectRoot, env, timeoutMs: 60_000 })
  const weights = async (service: string) => {
    const answer = await registry.call('GET', `/v1/services/${service}/weights`, { token: 'reader' })
    return answer.status === 200 ? answer.json.weights : undefined
  }
  const first = await runInit()
  t.equal(first.code, 0, first.stderr)
  const api = await weights('api')
  t.equal(api['v1.3'], 100, 'api v1.3 takes every request')
  t.equal(api['v1.4'] ?? 0, 0, 'api v1.4 stays dark (weight 0), as the README says')
  t.equal((await weights('webfront'))['v1.3'], 100)
  t.same(await weights('orders-worker'), { v1: 90, v2: 10 })
  // every version a weight names is one compose runs, for every service compose runs (with this registry)
  const running = new Map<string, Set<string>>()
  for (const p of defaultProcesses().filter((p) => p.kind === 'sample' && sameRegistry(p, processOf('init-weights')!))) {
    const name = SAMPLES[p.source]!.registersAs(p.config)
    running.set(name, new Set([...(running.get(name) ?? []), p.config.version]))
  }
  for (const [service, versions] of running) {
    const split = await weights(service)
    t.ok(split, `${service} has a split before its instances start`)
    for (const version of Object.keys(split ?? {})) t.ok(versions.has(version), `${service} ${version}: compose runs it`)
  }
  // no sample runs here, so v1.4 has no instance: the operator pre-provisions it
  const set = await registry.call('PUT', '/v1/services/api/weights?allowUnregistered=true', { token: 'operator', body: { weights: { 'v1.3': 90, 'v1.4': 10 } } })
  t.equal(set.status, 200, 'an operator moves the canary to 10%')
  const again = await runInit()
  t.equal(again.code, 0, again.stderr)
  t.match(again.stdout, 'api: keeping the split in force')
  t.same(await weights('api'), { 'v1.3': 90, 'v1.4': 10 }, 'a restart of the stack keeps the canary where the operator left it')
  const down = await run(shell as string, [dashC as string, script as string], {
    cwd: projectRoot,
    env: { ...env, SWITCHYARD_REGISTRY_URL: 'http://127.0.0.1:1' },
    timeoutMs: 60_000
  })
  t.not(down.code, 0, 'an unreachable registry fails the job instead of being taken for an empty one')
})

void t.test('init-weights-ha sets the first split of the ha registry once, through whichever replica answers', async (t) => {
  const registry = await startTestRegistry()
  t.teardown(registry.destroy)
  const [shell, dashC, script] = services['init-weights-ha'].entrypoint as string[]
  // the first replica is down: the CLI moves on to the next URL of the list
  const down = `http://127.0.0.1:${await freePort()}`
  const env = cleanEnv({ ...environmentOf(services['init-weights-ha']), SWITCHYARD_REGISTRY_URL: `${down},${registry.url}`, SWITCHYARD_TOKEN: TOKENS.admin })
  const runInit = (extra: Record<string, string> = {}) =>
    run(shell as string, [dashC as string, script as string], { cwd: projectRoot, env: { ...env, ...extra }, timeoutMs: 60_000 })
  const weights = async (service: string) => {
    const answer = await registry.call('GET', `/v1/services/${service}/weights`, { token: 'reader' })
    return answer.status === 200 ? answer.json.weights : undefined
  }
  const first = await runInit()
  t.equal(first.code, 0, first.stderr)
  const api = await weights('api')
  t.equal(api?.['v1.3'], 100, 'api v1.3 takes every request')
  t.equal(api?.['v1.4'] ?? 0, 0, 'api v1.4 stays dark (weight 0)')
  const versions = new Set(processes.filter((p) => p.kind === 'sample' && sameRegistry(p, processOf('init-weights-ha')!)).map((p) => p.config.version))
  for (const version of Object.keys(api ?? {})) t.ok(versions.has(version), `api ${version}: the ha stack runs it`)
  const set = await registry.call('PUT', '/v1/services/api/weights?allowUnregistered=true', { token: 'operator', body: { weights: { 'v1.3': 90, 'v1.4': 10 } } })
  t.equal(set.status, 200)
  const again = await runInit()
  t.equal(again.code, 0, again.stderr)
  t.match(again.stdout, 'api: keeping the split in force')
  t.same(await weights('api'), { 'v1.3': 90, 'v1.4': 10 }, 'a restart keeps the split an operator set')
  const none = await runInit({ SWITCHYARD_REGISTRY_URL: `${down},http://127.0.0.1:1` })
  t.not(none.code, 0, 'with no replica answering the job fails instead of taking the registry for an empty one')
})

void t.test('ha: two replicas of one registry, on every member of the etcd compose runs', (t) => {
  const replicas = processes.filter((p) => p.kind === 'registry' && profilesOf(services[p.service]).includes('ha'))
  t.same(
    replicas.map((p) => p.service),
    ['registry-1', 'registry-2']
  )
  const advertised = etcdMembers().map((member) => member.flags['advertise-client-urls'])
  for (const p of replicas) {
    t.equal(p.config.store, 'etcd', `${p.service}: --store etcd`)
    t.same((p.config.etcdEndpoints as string).split(','), advertised, `${p.service}: is given every member's client URL`)
    t.equal(p.config.replicaId, p.service, `${p.service}: --replica-id names it as compose does`)
    t.notOk(services[p.service].volumes, `${p.service}: no volume, its state is in etcd`)
  }
  // replicas of one registry share the prefix (the same keys) and every rule: leases, history, self-preservation
  const shared = replicas.map(({ config: { replicaId: _replicaId, ...rest } }) => rest)
  t.same(shared[1], shared[0], 'the replicas differ only by --replica-id')
  t.equal(processOf('registry')!.config.store, 'file', 'the default stack keeps the file store')
  t.end()
})

void t.test('ha: the etcd members form one cluster from the flags compose gives them, and their healthcheck follows quorum', async (t) => {
  if (!(await etcdInstalled())) {
    t.fail(`no etcd at ${ETCD_BINARY}: install Debian's etcd-server and etcd-client (.ci/run does it) or set SWITCHYARD_TEST_ETCD`)
    return
  }
  const members = etcdMembers()
  t.same(
    members.map((member) => member.service),
    ['etcd-1', 'etcd-2', 'etcd-3']
  )
  // the flags: ones etcd takes (Debian's 3.4 here, the same flags in the image's 3.5), each member's own URLs, one initial cluster
  const etcdHelp = await run(ETCD_BINARY, ['--help'], { cwd: projectRoot, env: cleanEnv(), timeoutMs: 20_000 })
  const known = new Set([...etcdHelp.stdout.matchAll(/^\s+--([a-z0-9-]+)/gm)].map((m) => m[1] as string))
  t.ok(known.has('initial-cluster'), "read etcd's flags from etcd --help")
  const initialCluster = members.map((member) => `${member.service}=http://${member.service}:2380`).join(',')
  for (const member of members) {
    const { service, flags } = member
    t.equal(member.binary, '/usr/local/bin/etcd', `${service}: runs the image's etcd`)
    for (const flag of Object.keys(flags)) t.ok(known.has(flag), `${service}: etcd takes --${flag}`)
    t.equal(flags.name, service, `${service}: --name is the service name`)
    t.equal(flags['advertise-client-urls'], `http://${service}:2379`, `${service}: advertises its client URL in the compose network`)
    t.equal(flags['initial-advertise-peer-urls'], `http://${service}:2380`, `${service}: advertises its peer URL in the compose network`)
    t.equal(flags['listen-client-urls'], 'http://0.0.0.0:2379', `${service}: clients reach it from other containers`)
    t.equal(flags['listen-peer-urls'], 'http://0.0.0.0:2380', `${service}: peers reach it from other containers`)
    t.equal(flags['initial-cluster'], initialCluster, `${service}: --initial-cluster names every member by its name and peer URL`)
    t.equal(flags['initial-cluster-token'], members[0]!.flags['initial-cluster-token'], `${service}: one cluster token`)
    t.equal(flags['initial-cluster-state'], 'new')
    t.match(flags['auto-compaction-mode'], /^(revision|periodic)$/, `${service}: auto-compaction keeps etcd's history bounded`)
    t.not(flags['auto-compaction-retention'] ?? '0', '0', `${service}: auto-compaction is on`)
    const test = services[service].healthcheck?.test as string[]
    t.same(test.slice(0, 2), ['CMD', '/usr/local/bin/etcdctl'], `${service}: the healthcheck runs the image's etcdctl (no shell in a distroless image)`)
    const commandTimeout = Number(/^--command-timeout=(\d+)s$/.exec(test.find((arg) => arg.startsWith('--command-timeout=')) ?? '')?.[1])
    t.ok(commandTimeout < Number(/^(\d+)s$/.exec(services[service].healthcheck.timeout)?.[1]), `${service}: etcdctl gives up (${commandTimeout} s) before docker's timeout`)
  }

  // start them here: the compose host names and ports become free ports on 127.0.0.1, the data dirs temporary ones
  const ports = new Map<string, number>()
  const free = await freePorts(members.length * 2)
  for (const member of members) for (const port of [2379, 2380]) ports.set(`${member.service}:${port}`, free.shift()!)
  const rewrite = (text: string, self: string) =>
    text.replace(/http:\/\/([^:/,]+):(\d+)/g, (_match, host: string, port: string) => {
      const owner = ['0.0.0.0', '127.0.0.1', 'localhost'].includes(host) ? self : host
      const local = ports.get(`${owner}:${port}`)
      if (local === undefined) throw new Error(`${self}: ${host}:${port} is no member's port`)
      return `http://127.0.0.1:${local}`
    })
  const dataRoot = await mkdtemp(join(tmpdir(), 'switchyard-compose-etcd-'))
  const env = Object.fromEntries(Object.entries(cleanEnv()).filter(([key]) => !key.startsWith('ETCD')))
  const children = new Map<string, { child: ChildProcess; output: () => string; exited: Promise<void> }>()
  t.teardown(async () => {
    for (const { child } of children.values()) if (child.exitCode === null) child.kill('SIGKILL')
    await Promise.all([...children.values()].map((c) => c.exited))
    await rm(dataRoot, { recursive: true, force: true })
  })
  for (const member of members) {
    const args = Object.entries(member.flags).map(([flag, value]) => `--${flag}=${flag === 'data-dir' ? join(dataRoot, member.service) : rewrite(value, member.service)}`)
    const child = spawn(ETCD_BINARY, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let log = ''
    const append = (chunk: Buffer) => {
      log = (log + chunk.toString()).slice(-64 * 1024)
    }
    child.stdout!.on('data', append)
    child.stderr!.on('data', append)
    children.set(member.service, { child, output: () => log, exited: new Promise((resolve) => child.once('exit', () => resolve())) })
  }
  // the healthcheck as docker runs it, with Debian's etcdctl for the image's
  const healthcheck = (service: string) => {
    const [, , ...args] = services[service].healthcheck.test as string[]
    return run(
      ETCDCTL_BINARY,
      args.map((arg) => rewrite(arg, service)),
      { cwd: projectRoot, env, timeoutMs: 20_000 }
    )
  }
  const logs = () => [...children].map(([service, c]) => `--- ${service}\n${c.output()}`).join('\n')
  for (const member of members) {
    await waitFor(`${member.service} healthy`, async () => (await healthcheck(member.service)).code === 0, { timeoutMs: 60_000 }).catch((error: Error) => {
      throw new Error(`${error.message}\n${logs()}`)
    })
    t.pass(`${member.service}: healthy once the cluster has formed`)
  }
  const list = await run(ETCDCTL_BINARY, [`--endpoints=${rewrite('http://etcd-1:2379', 'etcd-1')}`, 'member', 'list', '-w', 'json'], { cwd: projectRoot, env, timeoutMs: 20_000 })
  t.equal(list.code, 0, list.stderr)
  const listed = (JSON.parse(list.stdout) as { members: { name: string; peerURLs: string[] }[] }).members
  t.same(listed.map((m) => m.name).sort(), ['etcd-1', 'etcd-2', 'etcd-3'], 'one cluster of the three members')
  // two members gone: no quorum, and the last member's healthcheck says so (the registries then refuse writes)
  for (const service of ['etcd-2', 'etcd-3']) {
    const stopped = children.get(service)!
    stopped.child.kill('SIGTERM')
    await stopped.exited
  }
  await waitFor('etcd-1 unhealthy without a quorum', async () => (await healthcheck('etcd-1')).code !== 0, { timeoutMs: 60_000 })
  t.pass('etcd-1: unhealthy once two of three members are gone')
})

void t.test('Prometheus scrapes every switchyard component where it serves /metrics', (t) => {
  const prometheus = services.prometheus
  const configFlag = (prometheus.command as string[]).find((arg) => arg.startsWith('--config.file='))?.split('=')[1]
  const mount = (prometheus.volumes as string[]).map((v) => v.split(':')).find(([, target]) => target === configFlag)
  t.same(mount?.[0], './deploy/prometheus.yml', `deploy/prometheus.yml is mounted at ${configFlag}`)
  const config = parseYaml(readFileSync(join(projectRoot, 'deploy', 'prometheus.yml'), 'utf8'))
  const scraped = new Set<string>()
  for (const job of config.scrape_configs) {
    for (const target of job.static_configs.flatMap((s: any) => s.targets) as string[]) {
      const [host, port] = target.split(':') as [string, string]
      if (host === 'localhost') {
        t.equal(`${job.job_name}:${port}`, 'prometheus:9090', 'only Prometheus scrapes itself on localhost')
        continue
      }
      const answer = reachable(host, Number(port))
      t.ok(answer.ok, `${job.job_name}: ${target} -> ${answer.why}`)
      if (processOf(host)) {
        t.equal(job.metrics_path ?? '/metrics', '/metrics', `${job.job_name}: scrapes /metrics`)
        t.ok(answer.paths?.includes('/metrics'), `${job.job_name}: ${host} serves /metrics on ${port}`)
        scraped.add(host)
      }
    }
  }
  t.same([...scraped].sort(), ['message-router', 'registry', 'router'], 'the registry, the router and the message router are scraped')
  t.end()
})

/** Metric names and label names the code registers (read from the metrics modules). */
function registeredMetrics(): Map<string, { type: string; labels: string[] }> {
  const metrics = new Map<string, { type: string; labels: string[] }>()
  for (const file of ['router/metrics.ts', 'router/messages/metrics.ts', 'registry/metrics.ts']) {
    const text = readFileSync(join(projectRoot, file), 'utf8')
    const chunks = text.split(/new (?=(?:Counter|Gauge|Histogram)\()/).slice(1)
    for (const chunk of chunks) {
      const type = /^(\w+)/.exec(chunk)![1] as string
      const name = /name: '([^']+)'/.exec(chunk)?.[1]
      if (!name) continue
      const labels = [...(/labelNames: \[([^\]]*)\]/.exec(chunk)?.[1] ?? '').matchAll(/'([^']+)'/g)].map((m) => m[1] as string)
      metrics.set(name, { type, labels })
    }
  }
  return metrics
}

/** Metric names a PromQL expression uses, with the labels its selectors and by() clauses name. */
function promqlUses(expr: string): { metrics: string[]; labels: string[] } {
  const metrics = [...expr.matchAll(/\b(switchyard_[a-z0-9_]+)/g)].map((m) => m[1] as string)
  const labels = [
    ...[...expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) => [...(m[1] as string).matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1] as string)),
    ...[...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) =>
      (m[1] as string)
        .split(',')
        .map((l) => l.trim())
        .filter(Boolean)
    )
  ]
  return { metrics, labels }
}

void t.test('Grafana: provisioned datasource, and a dashboard that queries only metrics the code registers', (t) => {
  const grafana = services.grafana
  const mounts = (grafana.volumes as string[]).map((v) => v.split(':') as [string, string, string?])
  for (const [source] of mounts) t.ok(existsSync(join(projectRoot, source)), `${source} exists`)
  for (const [name, service] of Object.entries<any>(services)) {
    for (const volume of service.volumes ?? []) {
      const source = typeof volume === 'string' ? volume.split(':')[0] : volume.source
      if (source.startsWith('.')) t.ok(existsSync(join(projectRoot, source)), `${name}: bind mount ${source} exists`)
    }
  }
  const mountedAt = (target: string) => mounts.find(([, at]) => at === target)?.[0]
  const datasources = parseYaml(readFileSync(join(projectRoot, mountedAt('/etc/grafana/provisioning/datasources')!, 'prometheus.yml'), 'utf8'))
  const datasource = datasources.datasources[0]
  const url = new URL(datasource.url)
  t.ok(reachable(url.hostname, Number(url.port)).ok, `the datasource reaches ${datasource.url}`)
  const providers = parseYaml(readFileSync(join(projectRoot, mountedAt('/etc/grafana/provisioning/dashboards')!, 'switchyard.yml'), 'utf8'))
  const dashboardsDir = providers.providers[0].options.path as string
  const dashboardsSource = mountedAt(dashboardsDir)
  t.ok(dashboardsSource, `the provider's path ${dashboardsDir} is mounted`)
  const home = environmentOf(grafana).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH as string
  t.ok(home.startsWith(dashboardsDir + '/') && existsSync(join(projectRoot, dashboardsSource!, home.slice(dashboardsDir.length))), `the home dashboard ${home} is there`)

  const dashboard = JSON.parse(readFileSync(join(projectRoot, 'deploy', 'grafana', 'dashboards', 'switchyard.json'), 'utf8'))
  const registered = registeredMetrics()
  t.ok(registered.has('switchyard_requests_total') && registered.get('switchyard_request_duration_seconds')?.type === 'Histogram', 'read the registered metrics')
  const panels: any[] = dashboard.panels.filter((p: any) => p.type !== 'row')
  const exprs: string[] = panels.flatMap((p) => p.targets.map((target: any) => target.expr))
  const variables: string[] = dashboard.templating.list.map((v: any) => (typeof v.query === 'string' ? v.query : v.query.query))
  for (const expr of [...exprs, ...variables]) {
    const uses = promqlUses(expr.replace(/^label_values\((\w+),\s*(\w+)\)$/, '$1{$2=""}'))
    t.ok(uses.metrics.length > 0, `queries a switchyard metric: ${expr}`)
    const allowed = new Set<string>()
    for (const metric of uses.metrics) {
      const base = metric.replace(/_(bucket|sum|count)$/, '')
      const known = registered.get(metric) ?? (registered.get(base)?.type === 'Histogram' ? registered.get(base) : undefined)
      t.ok(known, `${metric} is registered by the code`)
      for (const label of known?.labels ?? []) allowed.add(label)
      if (metric.endsWith('_bucket')) allowed.add('le')
    }
    for (const label of uses.labels) t.ok(allowed.has(label), `label ${label} exists on ${uses.metrics.join(', ')}`)
  }
  for (const panel of panels) t.equal(panel.datasource?.uid, datasource.uid, `${panel.title}: uses the provisioned datasource`)
  const has = (pattern: RegExp, what: string) =>
    t.ok(
      exprs.some((e) => pattern.test(e)),
      what
    )
  has(/sum by \(version\) \(rate\(switchyard_requests_total/, 'request rate per version')
  has(/code=~"5\.\."/, 'error rate per version')
  has(/histogram_quantile\(0\.5, sum by \(version, le\) \(rate\(switchyard_request_duration_seconds_bucket/, 'p50 latency per version')
  has(/histogram_quantile\(0\.99, sum by \(version, le\) \(rate\(switchyard_request_duration_seconds_bucket/, 'p99 latency per version')
  has(/sum by \(version\) \(rate\(switchyard_messages_total/, 'message routing per version')
  t.equal(new Set(panels.map((p) => p.id)).size, panels.length, 'panel ids are unique')
  t.end()
})

void t.test('the build context leaves out what the image must not carry', (t) => {
  for (const path of [
    'node_modules/x/index.js',
    'dist/cli/main.js',
    '.git/config',
    '.env',
    '.switchyard/registry/journal.log',
    'test/deploy/compose.test.ts',
    'registry/node_modules/x'
  ]) {
    t.ok(isIgnored(path, ignoreRules), `${path} stays out of the build context`)
  }
  for (const path of ['package.json', 'package-lock.json', 'tsconfig.build.json', 'cli/main.ts', 'deploy/router.yaml', 'sample-services/api/main.ts']) {
    t.notOk(isIgnored(path, ignoreRules), `${path} is in the build context`)
  }
  t.end()
})
