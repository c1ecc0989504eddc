/**
 * deploy/Dockerfile without a Docker engine: its stages are checked as written, then
 * replayed in temporary directories (/app -> a directory per stage, COPY from the build
 * context filtered by .dockerignore, the npm steps run as written with the local npm
 * cache), and the resulting runtime directory, with production dependencies only, runs
 * the mesh: registry, router (with the copied deploy/router.yaml), message router and
 * the sample services, one request through each path, then SIGTERM and exit 0.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join, resolve } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import {
  cleanEnv,
  copyArgs,
  copyFromContext,
  dockerfilePath,
  execForm,
  freePort,
  listFiles,
  parseDockerfile,
  projectRoot,
  readDockerignore,
  run,
  start,
  waitFor,
  type Stage,
  type SpawnedProcess
} from './helpers.js'

// npm ci twice and a tsc build on a 2-core machine: more than tap's default per file.
t.setTimeout(300_000)

const text = readFileSync(dockerfilePath, 'utf8')
const stages = parseDockerfile(text)
const build = stages[0] as Stage
const runtime = stages.at(-1) as Stage
const runs = (stage: Stage) => stage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.rest)
const packageJson = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8'))

void t.test('the Dockerfile: node:24-slim stages, npm ci without dev dependencies, non-root', (t) => {
  t.ok(stages.length >= 2, 'a build stage and a runtime stage')
  for (const stage of stages) t.equal(stage.image, 'node:24-slim', `stage ${stage.name}: FROM node:24-slim`)
  t.ok(build.name, 'the build stage is named, for COPY --from')
  const install = runs(build).findIndex((r) => /\bnpm ci\b/.test(r))
  const compile = runs(build).findIndex((r) => /\bnpm run build\b/.test(r))
  t.ok(install >= 0 && compile > install, 'build: npm ci, then npm run build')
  t.match(runs(build)[install], /--ignore-scripts/, 'build: npm ci skips `prepare` (tsc before the sources are copied); the build runs explicitly')

  t.ok(
    runs(runtime).some((r) => /\bnpm ci\b/.test(r) && /--omit=dev/.test(r) && /--ignore-scripts/.test(r)),
    'runtime: npm ci --omit=dev --ignore-scripts'
  )
  t.ok(
    runtime.instructions.some((i) => i.keyword === 'ENV' && /\bNODE_ENV=production\b/.test(i.rest)),
    'runtime: NODE_ENV=production'
  )
  const users = runtime.instructions.filter((i) => i.keyword === 'USER')
  t.equal(users.at(-1)?.rest, 'node', 'runtime: runs as USER node')
  const lastRun = runtime.instructions.findLastIndex((i) => i.keyword === 'RUN')
  t.ok(runtime.instructions.findLastIndex((i) => i.keyword === 'USER') > lastRun, 'USER node comes after every RUN')
  const entrypoint = runtime.instructions.findLast((i) => i.keyword === 'ENTRYPOINT')
  t.ok(entrypoint?.rest.startsWith('['), 'ENTRYPOINT in exec form (node is PID 1 and gets SIGTERM)')
  t.same(entrypoint && execForm(entrypoint), ['node', 'dist/cli/main.js'], 'ENTRYPOINT node dist/cli/main.js')
  t.equal(runtime.instructions.findLast((i) => i.keyword === 'WORKDIR')?.rest, '/app', 'runtime: WORKDIR /app (compose commands use dist/... and /app/deploy/router.yaml)')

  // the runtime stage gets only what runs: the compiled dist/ and runtime files, no sources
  const fromBuild = runtime.instructions.filter((i) => i.keyword === 'COPY' && i.flags.from)
  t.same(
    fromBuild.map((i) => [i.flags.from, copyArgs(i).sources]),
    [[build.name, ['/app/dist']]],
    'from the build stage: dist/ only'
  )
  const fromContext = runtime.instructions.filter((i) => i.keyword === 'COPY' && !i.flags.from).flatMap((i) => copyArgs(i).sources)
  t.same(fromContext.sort(), ['deploy/router.yaml', 'package-lock.json', 'package.json'], 'from the context: package files and deploy/router.yaml')

  for (const instruction of stages.flatMap((s) => s.instructions)) {
    if (instruction.keyword === 'ENV' || instruction.keyword === 'ARG') t.notMatch(instruction.rest, /TOKEN|SECRET|PASSWORD/i, `line ${instruction.line}: no secret baked in`)
  }
  if (stages.some((s) => s.instructions.some((i) => i.flags.mount))) t.match(text, /^# syntax=docker\/dockerfile:1/, 'RUN --mount needs the dockerfile:1 syntax')
  t.end()
})

/** Runs a stage's instructions with /app mapped to a directory of its own. */
async function replayStage(stage: Stage, index: number, dirs: Map<string, Promise<string>>, root: string, log: string[]): Promise<string> {
  const dir = join(root, stage.name ?? `stage-${index}`)
  mkdirSync(dir, { recursive: true })
  const rules = readDockerignore()
  const env: Record<string, string> = {}
  let workdir = dir
  for (const instruction of stage.instructions) {
    switch (instruction.keyword) {
      case 'WORKDIR':
        if (instruction.rest !== '/app') throw new Error(`line ${instruction.line}: the replay maps only WORKDIR /app`)
        workdir = dir
        break
      case 'ENV':
        for (const pair of instruction.rest.split(/\s+/)) {
          const [key, ...value] = pair.split('=')
          env[key as string] = value.join('=')
        }
        break
      case 'COPY': {
        const { sources, destination } = copyArgs(instruction)
        const target = resolve(workdir, destination)
        const intoDirectory = destination.endsWith('/') || sources.length > 1
        for (const source of sources) {
          if (instruction.flags.from) {
            const fromDir = await dirs.get(instruction.flags.from)
            if (!fromDir || !source.startsWith('/app/')) throw new Error(`line ${instruction.line}: cannot replay COPY --from=${instruction.flags.from} ${source}`)
            cpSync(join(fromDir, source.slice('/app/'.length)), intoDirectory ? join(target, basename(source)) : target, { recursive: true })
          } else {
            copyFromContext(source, intoDirectory && source !== '.' ? join(target, basename(source)) : target, rules)
          }
        }
        break
      }
      case 'RUN':
        for (const step of instruction.rest.split('&&').map((s) => s.trim())) {
          if (/^npm\s/.test(step)) {
            const started = Date.now()
            const result = await run('/bin/sh', ['-c', step], {
              cwd: workdir,
              // the machine's npm cache stands in for the RUN --mount cache; the registry is reachable for a miss
              env: cleanEnv({ ...env, npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' }),
              timeoutMs: 240_000
            })
            log.push(`${stage.name}: ${step} (${Math.round((Date.now() - started) / 1000)} s)`)
            if (result.code !== 0) throw new Error(`line ${instruction.line}: \`${step}\` exited ${result.code}:\n${(result.stdout + result.stderr).slice(-4000)}`)
          } else if (/^(mkdir -p|chown [\w:]+) \/(?!app\b)[\w/.-]+$/.test(step)) {
            // prepares a directory of the image's root (the registry's /data): only root can
            // do that, and only inside the image; the runtime test passes --data-dir instead
            log.push(`${stage.name}: skipped \`${step}\` (image root only)`)
          } else {
            throw new Error(`line ${instruction.line}: the replay does not know how to run \`${step}\``)
          }
        }
        break
      case 'USER':
      case 'EXPOSE':
      case 'ENTRYPOINT':
      case 'CMD':
      case 'LABEL':
        break
      default:
        throw new Error(`line ${instruction.line}: the replay does not know ${instruction.keyword}`)
    }
  }
  return dir
}

void t.test('the image, replayed: it builds, holds only what runs, and runs the mesh', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'switchyard-image-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const log: string[] = []
  const dirs = new Map<string, Promise<string>>()
  // stages run concurrently, as BuildKit does: the runtime stage's npm ci does not wait for the build
  stages.forEach((stage, index) => dirs.set(stage.name ?? String(index), replayStage(stage, index, dirs, root, log)))
  await Promise.all(dirs.values())
  t.comment(log.join('\n'))
  const app = await dirs.get(runtime.name ?? String(stages.length - 1))!
  const stageEnv = Object.fromEntries(
    runtime.instructions
      .filter((i) => i.keyword === 'ENV')
      .flatMap((i) => i.rest.split(/\s+/))
      .map((pair) => [pair.split('=')[0], pair.split('=').slice(1).join('=')])
  )

  // what the image holds
  t.same(readdirSync(app).sort(), ['deploy', 'dist', 'node_modules', 'package-lock.json', 'package.json'], '/app: dist, node_modules, package files, deploy')
  t.same(listFiles(join(app, 'deploy')), ['router.yaml'], 'deploy/: the router config only')
  const dist = listFiles(join(app, 'dist'))
  for (const file of ['cli/main.js', 'sample-services/api/main.js', 'sample-services/webfront/main.js', 'sample-services/orders-worker/main.js'])
    t.ok(dist.includes(file), `dist/${file}`)
  t.notOk(
    dist.some((f) => /^(test|bench)\//.test(f) || f.endsWith('.ts')),
    'no tests, benchmarks or TypeScript sources'
  )
  for (const dev of ['typescript', 'tap', 'eslint', 'prettier']) {
    if (packageJson.devDependencies[dev]) t.notOk(existsSync(join(app, 'node_modules', dev)), `no dev dependency ${dev}`)
  }
  for (const dependency of Object.keys(packageJson.dependencies)) t.ok(existsSync(join(app, 'node_modules', dependency)), `dependency ${dependency} installed`)

  const env = (extra: Record<string, string> = {}) => cleanEnv({ ...stageEnv, ...extra })
  const help = await run(process.execPath, ['dist/cli/main.js', '--help'], { cwd: app, env: env(), timeoutMs: 60_000 })
  t.equal(help.code, 0, `node dist/cli/main.js --help exits 0 ${help.stderr}`)
  for (const command of ['registry', 'router', 'message-router']) t.match(help.stdout, new RegExp(`^  ${command} `, 'm'), `--help lists ${command}`)

  // the mesh, from the production install
  const token = 'dockerfile-test-admin-token-0123456789'
  const [registryPort, routerPort, adminPort, messagePort] = [await freePort(), await freePort(), await freePort(), await freePort()]
  const registryUrl = `http://127.0.0.1:${registryPort}`
  const started: SpawnedProcess[] = []
  const launch = (args: string[], extra: Record<string, string> = {}) => {
    const child = start(args, { cwd: app, env: env(extra) })
    started.push(child)
    return child
  }
  t.teardown(() => Promise.all(started.map((p) => p.kill('SIGKILL'))))
  const ok = async (url: string) => {
    const response = await request(url, { headersTimeout: 2_000, bodyTimeout: 2_000 })
    await response.body.dump()
    return response.statusCode === 200
  }

  const registry = launch(['dist/cli/main.js', 'registry', '--host', '127.0.0.1', '--port', String(registryPort), '--data-dir', join(root, 'data')], {
    SWITCHYARD_ADMIN_TOKEN: token
  })
  await waitFor('the registry /readyz', () => ok(`${registryUrl}/readyz`), { processes: [registry], timeoutMs: 30_000 })
  const services = await request(`${registryUrl}/v1/services`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(services.statusCode, 200, 'SWITCHYARD_ADMIN_TOKEN is the admin token')
  await services.body.dump()
  const anonymous = await request(`${registryUrl}/v1/services`)
  t.equal(anonymous.statusCode, 401, 'and nothing else is')
  await anonymous.body.dump()
  const registryMetrics = await request(`${registryUrl}/metrics`)
  t.match(await registryMetrics.body.text(), /^switchyard_registry_revision /m, 'the registry serves /metrics')

  const client = { SWITCHYARD_REGISTRY_URL: registryUrl, SWITCHYARD_TOKEN: token }
  const sample = { ...client, HOST: '127.0.0.1', PORT: '0', SAMPLE_DRAIN_MS: '100', SWITCHYARD_VERSION: 'v1.3' }
  const api = launch(['dist/sample-services/api/main.js'], { ...sample, SWITCHYARD_SERVICE: 'api' })
  const webfront = launch(['dist/sample-services/webfront/main.js'], {
    ...sample,
    ROUTER_URL: `http://127.0.0.1:${routerPort}`,
    MESSAGE_ROUTER_URL: `http://127.0.0.1:${messagePort}`
  })
  const messageRouter = launch(
    ['dist/cli/main.js', 'message-router', '--broker', 'memory', '--admin-host', '127.0.0.1', '--admin-port', String(messagePort), '--topics', 'orders=orders-worker'],
    client
  )
  const router = launch(
    [
      'dist/cli/main.js',
      'router',
      '--host',
      '127.0.0.1',
      '--port',
      String(routerPort),
      '--admin-host',
      '127.0.0.1',
      '--admin-port',
      String(adminPort),
      '--config',
      join(app, 'deploy', 'router.yaml')
    ],
    client
  )
  const instances = async (service: string) => {
    const response = await request(`${registryUrl}/v1/services/${service}`, { headers: { authorization: `Bearer ${token}` } })
    return response.statusCode === 200 ? ((await response.body.json()) as any).instances.length : (await response.body.dump(), 0)
  }
  const all = [registry, api, webfront, messageRouter, router]
  await waitFor('api and webfront to register', async () => (await instances('api')) >= 1 && (await instances('webfront')) >= 1, { processes: all, timeoutMs: 30_000 })
  await waitFor('the router /readyz', () => ok(`http://127.0.0.1:${adminPort}/readyz`), { processes: all, timeoutMs: 30_000 })
  await waitFor('the message router /readyz', () => ok(`http://127.0.0.1:${messagePort}/readyz`), { processes: all, timeoutMs: 30_000 })

  let answer: { status: number; version: unknown; body: any } = { status: 0, version: undefined, body: undefined }
  await waitFor(
    'the router to route /api to the api instance',
    async () => {
      const response = await request(`http://127.0.0.1:${routerPort}/api/hello`)
      answer = { status: response.statusCode, version: response.headers['x-switchyard-version'], body: await response.body.json().catch(() => undefined) }
      return answer.status === 200
    },
    { processes: all, timeoutMs: 30_000 }
  )
  t.equal(answer.version, 'v1.3', 'GET /api/hello through the router: answered by api v1.3')
  t.match(answer.body, { service: 'api', version: 'v1.3', path: '/api/hello' }, 'the sample answers who it is')
  const page = await request(`http://127.0.0.1:${routerPort}/`)
  const html = await page.body.text()
  t.equal(page.statusCode, 200, 'GET / through the router: webfront')
  t.match(html, /api answered 200 from version <b>v1\.3<\/b>/, 'webfront called api back through the router')
  const order = await request(`http://127.0.0.1:${routerPort}/orders`, { method: 'POST' })
  const placed: any = await order.body.json()
  t.equal(order.statusCode, 202, 'POST /orders through the router: webfront published the order to the message router')
  t.ok(placed.order?.id, 'an order id')
  const routerMetrics = await request(`http://127.0.0.1:${adminPort}/metrics`)
  t.match(
    await routerMetrics.body.text(),
    /^switchyard_requests_total\{service="api",version="v1\.3",code="200"\} \d+/m,
    'the router counts requests per version on its admin /metrics'
  )

  // graceful stop, in compose's order: services, then routers, then the registry
  for (const [name, child] of [
    ['api', api],
    ['webfront', webfront],
    ['message router', messageRouter],
    ['router', router],
    ['registry', registry]
  ] as const) {
    const code = await child.kill('SIGTERM')
    t.equal(code, 0, `${name}: SIGTERM -> exit 0`)
  }
})
