/**
 * Static readers for the deployment files (no Docker engine runs here): the compose file
 * as `docker compose` sees it (YAML merge keys, then ${...} interpolation), the Dockerfile
 * as a list of stages, and .dockerignore as a path filter.
 */
import { execFile } from 'node:child_process'
import { projectRoot, spawnNode, type SpawnedProcess } from '../helpers/processes.js'
import { cpSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parse as parseYaml } from 'yaml'

export { projectRoot }
export const composePath = join(projectRoot, 'docker-compose.yml')
export const dockerfilePath = join(projectRoot, 'deploy', 'Dockerfile')
/** vendored (see test/fixtures/README.md): the tests need nothing outside the checkout */
export const composeSchemaPath = join(projectRoot, 'test', 'fixtures', 'compose-spec.json')

// ---------------------------------------------------------------------------------------
// compose interpolation

export class InterpolationError extends Error {
  override name = 'InterpolationError'
}

/**
 * Compose's interpolation of one string: $$ is a literal $, ${VAR}, $VAR, ${VAR:-default},
 * ${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+alt}, ${VAR+alt}.
 */
export function interpolate(text: string, env: Readonly<Record<string, string | undefined>>): string {
  return text.replace(/\$(?:(\$)|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (_match, dollar: string | undefined, braced: string | undefined, bare: string | undefined) => {
    if (dollar) return '$'
    if (bare) return env[bare] ?? ''
    const expression = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?$/s.exec(braced ?? '')
    if (!expression) throw new InterpolationError(`invalid interpolation: \${${braced}}`)
    const [, name, operator, word = ''] = expression as unknown as [string, string, string | undefined, string | undefined]
    const value = env[name]
    const unsetOrEmpty = value === undefined || value === ''
    switch (operator) {
      case undefined:
        return value ?? ''
      case ':-':
        return unsetOrEmpty ? interpolate(word, env) : (value as string)
      case '-':
        return value === undefined ? interpolate(word, env) : value
      case ':?':
        if (unsetOrEmpty) throw new InterpolationError(`required variable ${name} is missing a value: ${word}`)
        return value as string
      case '?':
        if (value === undefined) throw new InterpolationError(`required variable ${name} is missing a value: ${word}`)
        return value
      case ':+':
        return unsetOrEmpty ? '' : interpolate(word, env)
      case '+':
        return value === undefined ? '' : interpolate(word, env)
      default:
        throw new InterpolationError(`invalid interpolation: \${${braced}}`)
    }
  })
}

/** Interpolates every string value (not keys) of a parsed document, as compose does. */
export function interpolateAll(value: unknown, env: Readonly<Record<string, string | undefined>>): unknown {
  if (typeof value === 'string') return interpolate(value, env)
  if (Array.isArray(value)) return value.map((item) => interpolateAll(item, env))
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, interpolateAll(item, env)]))
  return value
}

/** The compose file with anchors and merge keys resolved, before interpolation. */
export function readComposeRaw(): any {
  return parseYaml(readFileSync(composePath, 'utf8'), { merge: true })
}

/** The compose model as `docker compose config` would resolve it, given these variables. */
export function readCompose(env: Readonly<Record<string, string | undefined>>): any {
  return interpolateAll(readComposeRaw(), env)
}

/** `environment` as a mapping, whichever form (list or mapping) the file uses. */
export function environmentOf(service: any): Record<string, string> {
  const environment = service.environment ?? {}
  if (Array.isArray(environment)) {
    return Object.fromEntries(
      environment.map((entry: string) => {
        const at = entry.indexOf('=')
        return at < 0 ? [entry, ''] : [entry.slice(0, at), entry.slice(at + 1)]
      })
    )
  }
  return Object.fromEntries(Object.entries(environment).map(([key, value]) => [key, value === null ? '' : String(value)]))
}

export interface PublishedPort {
  hostIp?: string
  published?: number
  target: number
}

/** Short ("127.0.0.1:8080:80", "80") and long ({target, published}) port syntax. */
export function portsOf(service: any): PublishedPort[] {
  return (service.ports ?? []).map((entry: unknown) => {
    if (typeof entry === 'number') return { target: entry }
    if (typeof entry === 'string') {
      const parts = entry.replace(/\/(tcp|udp)$/, '').split(':')
      const target = Number(parts.pop())
      const published = parts.length > 0 ? Number(parts.pop()) : undefined
      const hostIp = parts.length > 0 ? parts.join(':') : undefined
      return { target, ...(published === undefined ? {} : { published }), ...(hostIp === undefined ? {} : { hostIp }) }
    }
    const long = entry as { target: number | string; published?: number | string; host_ip?: string }
    return { target: Number(long.target), ...(long.published === undefined ? {} : { published: Number(long.published) }), ...(long.host_ip ? { hostIp: long.host_ip } : {}) }
  })
}

// ---------------------------------------------------------------------------------------
// Dockerfile

export interface Instruction {
  keyword: string
  /** the arguments as written (continuations joined) */
  args: string
  /** leading --flag=value options (RUN --mount, COPY --from/--chown) */
  flags: Record<string, string>
  /** the arguments without those options */
  rest: string
  line: number
}

export interface Stage {
  image: string
  name?: string
  instructions: Instruction[]
}

export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = []
  const lines = text.split('\n')
  for (let index = 0; index < lines.length; index++) {
    const start = index
    let line = lines[index] as string
    if (/^\s*(#|$)/.test(line)) continue
    while (/\\\s*$/.test(line) && index + 1 < lines.length) {
      index++
      const next = lines[index] as string
      if (/^\s*#/.test(next)) continue
      line = line.replace(/\\\s*$/, ' ') + next
    }
    const match = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(line)
    if (!match) throw new Error(`Dockerfile line ${start + 1}: cannot read "${line}"`)
    const keyword = (match[1] as string).toUpperCase()
    const args = (match[2] as string).trim()
    const flags: Record<string, string> = {}
    let rest = args
    for (let option = /^--([a-z-]+)=(\S+)\s+/.exec(rest); option; option = /^--([a-z-]+)=(\S+)\s+/.exec(rest)) {
      flags[option[1] as string] = option[2] as string
      rest = rest.slice(option[0].length)
    }
    const instruction = { keyword, args, flags, rest, line: start + 1 }
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest)
      if (!from) throw new Error(`Dockerfile line ${start + 1}: cannot read FROM ${rest}`)
      stages.push({ image: from[1] as string, ...(from[2] ? { name: from[2] } : {}), instructions: [] })
      continue
    }
    const stage = stages.at(-1)
    if (!stage) throw new Error(`Dockerfile line ${start + 1}: ${keyword} before any FROM`)
    stage.instructions.push(instruction)
  }
  return stages
}

/** ["node", "dist/cli/main.js"] (exec form) or the shell form wrapped as sh -c. */
export function execForm(instruction: Instruction): string[] {
  const text = instruction.rest.trim()
  if (text.startsWith('[')) return JSON.parse(text) as string[]
  return ['/bin/sh', '-c', text]
}

/** COPY sources and destination; exec (JSON) and plain forms. */
export function copyArgs(instruction: Instruction): { sources: string[]; destination: string } {
  const parts = instruction.rest.trim().startsWith('[') ? (JSON.parse(instruction.rest) as string[]) : instruction.rest.trim().split(/\s+/)
  const destination = parts.pop()
  if (!destination || parts.length === 0) throw new Error(`Dockerfile line ${instruction.line}: COPY needs a source and a destination`)
  return { sources: parts, destination }
}

// ---------------------------------------------------------------------------------------
// .dockerignore

export interface IgnoreRule {
  negate: boolean
  pattern: RegExp
  text: string
}

/** Docker's rules: Go filepath.Match patterns plus **, matched against the path from the context root; later rules win; ! re-includes. */
export function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#')) continue
    const negate = line.startsWith('!')
    const body = (negate ? line.slice(1) : line).replace(/^\/+/, '').replace(/\/+$/, '')
    let source = ''
    for (let i = 0; i < body.length; i++) {
      const char = body[i] as string
      if (char === '*' && body[i + 1] === '*') {
        // "**/" matches any number of directories, including none
        if (body[i + 2] === '/') {
          source += '(?:.*/)?'
          i += 2
        } else {
          source += '.*'
          i += 1
        }
      } else if (char === '*') source += '[^/]*'
      else if (char === '?') source += '[^/]'
      else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&')
    }
    rules.push({ negate, pattern: new RegExp(`^${source}$`), text: line })
  }
  return rules
}

/** Whether a path (relative to the context, with /) is left out of the build context. */
export function isIgnored(path: string, rules: readonly IgnoreRule[]): boolean {
  const segments = path.split('/')
  // a rule that matches a parent directory excludes everything under it
  const candidates = segments.map((_, i) => segments.slice(0, i + 1).join('/'))
  let ignored = false
  for (const rule of rules) if (candidates.some((candidate) => rule.pattern.test(candidate))) ignored = !rule.negate
  return ignored
}

export function readDockerignore(): IgnoreRule[] {
  return parseDockerignore(readFileSync(join(projectRoot, '.dockerignore'), 'utf8'))
}

/** Copies what `COPY <source> <destination>` would take from the build context. */
export function copyFromContext(source: string, destination: string, rules: readonly IgnoreRule[]): void {
  const from = join(projectRoot, source === '.' ? '' : source)
  if (!existsSync(from)) throw new Error(`COPY ${source}: not in the build context`)
  cpSync(from, destination, {
    recursive: true,
    filter: (path) => {
      const inContext = relative(projectRoot, path).split('\\').join('/')
      return inContext === '' || !isIgnored(inContext, rules)
    }
  })
}

/** Every file of a directory, relative, with / (for assertions). */
export function listFiles(root: string, under = ''): string[] {
  const files: string[] = []
  for (const entry of readdirSync(join(root, under))) {
    const path = under ? `${under}/${entry}` : entry
    if (statSync(join(root, path)).isDirectory()) files.push(...listFiles(root, path))
    else files.push(path)
  }
  return files
}

// ---------------------------------------------------------------------------------------
// processes

/** The environment for child processes: without tap's coverage and loader settings, without our own settings. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue
    if (/^(TAP|_TAPJS|TS_NODE|NODE_V8_COVERAGE|NODE_OPTIONS|SWITCHYARD_|OTEL_|npm_)/.test(key)) continue
    env[key] = value
  }
  return { ...env, ...extra }
}

export function run(
  command: string,
  args: string[],
  options: { cwd: string; env: Record<string, string>; timeoutMs: number }
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: options.cwd, env: options.env, timeout: options.timeoutMs, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0
      resolve({ code, stdout, stderr })
    })
  })
}

/** A node process of the built app, started with exactly `env` in `cwd`. */
export function start(args: string[], options: { cwd: string; env: Record<string, string> }): SpawnedProcess {
  return spawnNode(args, options.env, { cwd: options.cwd, wholeEnv: true })
}

export async function waitFor(what: string, check: () => Promise<boolean>, options: { timeoutMs?: number; processes?: SpawnedProcess[] } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000)
  for (;;) {
    if (await check().catch(() => false)) return
    for (const process of options.processes ?? []) {
      if (process.child.exitCode !== null) throw new Error(`a process exited (${process.child.exitCode}) while waiting for ${what}:\n${process.output()}`)
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

export { freePort, type SpawnedProcess } from '../helpers/processes.js'

/** dist/x/y.js -> x/y.ts, the source tsc compiles it from. */
export function sourceOf(distPath: string): string {
  const match = /^(?:\/app\/)?dist\/(.+)\.js$/.exec(distPath)
  if (!match) throw new Error(`${distPath} is not a file under dist/`)
  return `${match[1]}.ts`
}
