import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import t from 'tap'
import { request } from 'undici'
import { call, type Answer } from '../helpers/http.js'
import { waitFor } from '../helpers/registry-harness.js'

/**
 * The registry as a real separate process (the built CLI), killed without warning.
 * `npm test` builds dist/ before running tap; run `npm run build` before running this file alone.
 */
const ROOT = join(import.meta.dirname, '../..')
const CLI = join(ROOT, 'dist/cli/main.js')
const ADMIN_TOKEN = 'durability-admin-token-0123456789'
/** These tests write weights before (or without) any instance: pre-provisioning, said explicitly. */
const PRE_PROVISION = '?allowUnregistered=true'

type Test = { teardown(fn: () => unknown): void }

interface RegistryProcess {
  child: ChildProcessByStdio<null, Readable, Readable>
  url: string
  stdout: () => string
  stderr: () => string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

async function freePort(): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  server.close()
  await once(server, 'close')
  return port
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-durability-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Environment for the child: ours without tap's hooks or any SWITCHYARD_ setting, plus the admin token. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (key === 'NODE_OPTIONS' || key.startsWith('SWITCHYARD_') || key.startsWith('_TAPJS_')) continue
    env[key] = value
  }
  env.SWITCHYARD_ADMIN_TOKEN = ADMIN_TOKEN
  return env
}

/** Spawns `switchyard registry` on a data dir; `t.teardown` kills it if it is still running. */
async function spawnRegistry(t: Test, dataDir: string): Promise<RegistryProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`)
  const port = await freePort()
  const child = spawn(process.execPath, [CLI, 'registry', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, '--log-level', 'warn'], {
    cwd: ROOT,
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  return { child, url: `http://127.0.0.1:${port}`, stdout: () => stdout, stderr: () => stderr, exited }
}

/** Spawns the registry and polls GET /readyz until it answers 200. */
async function startRegistry(t: Test, dataDir: string): Promise<RegistryProcess> {
  const registry = await spawnRegistry(t, dataDir)
  let last = 'no answer yet'
  await waitFor(
    async () => {
      if (registry.child.exitCode !== null) throw new Error(`the registry exited with ${registry.child.exitCode}: ${registry.stderr()}`)
      try {
        const response = await request(`${registry.url}/readyz`, { headersTimeout: 2_000, bodyTimeout: 2_000 })
        last = `${response.statusCode} ${await response.body.text()}`
        return response.statusCode === 200 ? true : undefined
      } catch (error) {
        last = String(error) // not listening yet
        return undefined
      }
    },
    'the registry to become ready',
    20_000
  ).catch((error: Error) => {
    throw new Error(`${error.message} (last /readyz: ${last}; stdout: ${registry.stdout()}; stderr: ${registry.stderr()})`)
  })
  return registry
}

async function kill(registry: RegistryProcess): Promise<void> {
  registry.child.kill('SIGKILL')
  const { signal } = await registry.exited
  if (signal !== 'SIGKILL') throw new Error(`expected the registry to die of SIGKILL, it exited with ${signal}`)
}

function api(url: string, method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<Answer> {
  return call(method, `${url}${path}`, { token: ADMIN_TOKEN, body })
}

async function filesOf(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const name of (await readdir(dir)).sort()) {
    if (name === 'registry.lock') continue
    out[name] = (await readFile(join(dir, name))).toString('base64')
  }
  return out
}

void t.test('acknowledged weights and instances survive SIGKILL', async (t) => {
  const dataDir = await tempDir(t)
  const first = await startRegistry(t, dataDir)

  let lastWeights: Record<string, number> = {}
  let lastRevision = 0
  for (const canary of [5, 10, 25, 50, 75]) {
    const weights = { v1: 100 - canary, v2: canary }
    const response = await api(first.url, 'PUT', `/v1/services/api/weights${PRE_PROVISION}`, { weights })
    t.equal(response.status, 200, `PUT ${canary}% acknowledged`)
    t.ok(response.json.revision > lastRevision, 'each acknowledgement has a larger revision')
    lastWeights = weights
    lastRevision = response.json.revision as number
  }
  const ids: string[] = []
  for (const [version, port] of [
    ['v1', 9001],
    ['v1', 9002],
    ['v2', 9003]
  ] as const) {
    const response = await api(first.url, 'POST', '/v1/services/api/instances', { version, host: '127.0.0.1', port, id: `api-${port}` })
    t.equal(response.status, 201, `instance ${port} registered`)
    ids.push(response.json.id as string)
  }
  const draining = await api(first.url, 'PUT', '/v1/services/api/instances/api-9001/status', { status: 'draining' })
  t.equal(draining.status, 200)
  const last = await api(first.url, 'PUT', '/v1/services/api/weights', { weights: { v1: 40, v2: 60 } })
  t.equal(last.status, 200)
  lastWeights = { v1: 40, v2: 60 }
  lastRevision = last.json.revision as number

  await kill(first)
  t.ok(existsSync(join(dataDir, 'registry.lock')), 'the killed process left its lock behind')

  const second = await startRegistry(t, dataDir)
  const weights = await api(second.url, 'GET', '/v1/services/api/weights')
  t.same(weights.json.weights, lastWeights, 'the last acknowledged weights are there')
  t.ok(weights.json.revision >= lastRevision, `revision ${weights.json.revision} >= ${lastRevision}`)
  const service = await api(second.url, 'GET', '/v1/services/api')
  t.same((service.json.instances as { id: string }[]).map((instance) => instance.id).sort(), ids.sort(), 'every acknowledged instance is there')
  t.equal((service.json.instances as { id: string; status: string }[]).find((instance) => instance.id === 'api-9001')?.status, 'draining', 'with its status')
  const history = await api(second.url, 'GET', '/v1/services/api/history')
  t.same(
    (history.json.history as { to: Record<string, number> }[]).map((entry) => entry.to),
    [
      { v1: 95, v2: 5 },
      { v1: 90, v2: 10 },
      { v1: 75, v2: 25 },
      { v1: 50, v2: 50 },
      { v1: 25, v2: 75 },
      { v1: 40, v2: 60 }
    ],
    'the whole weight history survived'
  )

  const next = await api(second.url, 'PUT', '/v1/services/api/weights', { weights: { v1: 0, v2: 100 } })
  t.equal(next.status, 200)
  t.ok(next.json.revision > weights.json.revision, 'a new change gets a larger revision')
  const beat = await api(second.url, 'PUT', '/v1/services/api/instances/api-9002/heartbeat')
  t.equal(beat.status, 200, 'a persisted instance can heartbeat the restarted registry')

  // A write torn by the crash (never acknowledged) is cut off with a warning on the next start.
  await kill(second)
  const journal = join(dataDir, 'journal.log')
  const size = (await stat(journal)).size
  await appendFile(journal, '1234abcd {"type":"weights-changed","revision":')
  const third = await startRegistry(t, dataDir)
  t.match(third.stdout(), /torn final record/, 'the repair is logged')
  t.equal((await stat(journal)).size, size, 'the torn bytes are gone')
  const after = await api(third.url, 'GET', '/v1/services/api/weights')
  t.same(after.json, { weights: { v1: 0, v2: 100 }, revision: next.json.revision }, 'and nothing acknowledged was lost')
})

interface ServiceLog {
  /** every acknowledged PUT, in order */
  acked: { revision: number; weights: Record<string, number> }[]
  /** the PUT that had no answer when the registry died */
  unanswered: Record<string, number> | undefined
}

void t.test('every PUT acknowledged before a SIGKILL under concurrent writes is reflected after restart', async (t) => {
  const dataDir = await tempDir(t)
  const first = await startRegistry(t, dataDir)
  const services = Array.from({ length: 50 }, (_, i) => `svc-${i}`)
  const logs = new Map<string, ServiceLog>(services.map((service) => [service, { acked: [], unanswered: undefined }]))
  let acks = 0
  let killed = false

  // 50 writers, one per service, each sending its next PUT as soon as the last is answered.
  const writers = services.map(async (service) => {
    const log = logs.get(service) as ServiceLog
    for (let round = 1; round < 100; round++) {
      const weights = { v1: 100 - round, v2: round }
      let response: { status: number; json: any }
      try {
        response = await api(first.url, 'PUT', `/v1/services/${service}/weights${PRE_PROVISION}`, { weights })
      } catch {
        log.unanswered = weights
        return
      }
      if (response.status !== 200) throw new Error(`PUT ${service} answered ${response.status}: ${JSON.stringify(response.json)}`)
      log.acked.push({ revision: response.json.revision as number, weights })
      acks++
      if (acks >= 300 && !killed) {
        killed = true
        first.child.kill('SIGKILL')
      }
    }
    throw new Error(`${service} ran out of rounds before the registry was killed`)
  })
  await Promise.all(writers)
  t.equal((await first.exited).signal, 'SIGKILL')
  t.ok(acks >= 300, `${acks} PUTs were acknowledged before the kill`)
  const unanswered = [...logs.values()].filter((log) => log.unanswered !== undefined).length
  t.equal(unanswered, 50, 'every writer ended with a PUT the dead registry never answered')

  const second = await startRegistry(t, dataDir)
  const maxAcked = Math.max(...[...logs.values()].flatMap((log) => log.acked.map((entry) => entry.revision)))
  const overall = await api(second.url, 'GET', '/v1/services')
  t.ok(overall.json.revision >= maxAcked, `revision ${overall.json.revision} >= the last acknowledged ${maxAcked}`)

  let exact = 0
  const problems: string[] = []
  for (const service of services) {
    const log = logs.get(service) as ServiceLog
    const lastAcked = log.acked.at(-1)
    const weights = await api(second.url, 'GET', `/v1/services/${service}/weights`)
    if (!lastAcked) {
      // Never acknowledged: absent, or present with the unanswered PUT's weights.
      if (weights.status !== 404 && JSON.stringify(weights.json.weights) !== JSON.stringify(log.unanswered)) problems.push(`${service}: unexpected ${JSON.stringify(weights.json)}`)
      continue
    }
    const got = JSON.stringify(weights.json.weights)
    if (got === JSON.stringify(lastAcked.weights)) exact++
    else if (got !== JSON.stringify(log.unanswered))
      problems.push(`${service}: has ${got}, last acknowledged ${JSON.stringify(lastAcked.weights)}, unanswered ${JSON.stringify(log.unanswered)}`)
    const history = await api(second.url, 'GET', `/v1/services/${service}/history`)
    const byRevision = new Map((history.json.history as { revision: number; to: Record<string, number> }[]).map((entry) => [entry.revision, JSON.stringify(entry.to)]))
    for (const entry of log.acked) {
      if (byRevision.get(entry.revision) !== JSON.stringify(entry.weights)) problems.push(`${service}: acknowledged revision ${entry.revision} is missing from its history`)
    }
  }
  t.same(problems, [], 'each service has its last acknowledged weights (or the unanswered PUT after them), and every acknowledged revision in its history')
  t.comment(`${exact} of 50 services hold exactly their last acknowledged weights; the rest also kept their unanswered PUT`)

  const next = await api(second.url, 'PUT', `/v1/services/svc-0/weights${PRE_PROVISION}`, { weights: { v1: 100 } })
  t.equal(next.status, 200)
  t.ok(next.json.revision > overall.json.revision, 'the restarted registry keeps counting up')
})

void t.test('a corrupt journal stops start-up with one clear line and changes nothing', async (t) => {
  const dataDir = await tempDir(t)
  const first = await startRegistry(t, dataDir)
  for (let i = 1; i <= 5; i++) t.equal((await api(first.url, 'PUT', `/v1/services/api/weights${PRE_PROVISION}`, { weights: { v1: 100 - i, v2: i } })).status, 200)
  await kill(first)

  const journal = join(dataDir, 'journal.log')
  const lines = (await readFile(journal, 'utf8')).split('\n')
  t.ok(lines.length >= 5, 'several records')
  const line = lines[1] as string
  lines[1] = `${line.slice(0, 30)}${line[30] === 'x' ? 'y' : 'x'}${line.slice(31)}`
  await writeFile(journal, lines.join('\n'))
  const before = await filesOf(dataDir)

  const broken = await spawnRegistry(t, dataDir)
  const { code, signal } = await broken.exited
  t.equal(signal, null)
  t.not(code, 0, `exited non-zero (${code})`)
  const stderr = broken.stderr().trimEnd()
  t.equal(stderr.split('\n').length, 1, 'exactly one line on stderr')
  t.match(stderr, /^switchyard: /, 'prefixed with the program name')
  t.match(stderr, journal, 'naming the journal')
  t.match(stderr, /damaged at line 2/, 'and the damaged line')
  t.notMatch(stderr, /\n|at .*\.js:\d+/, 'no stack trace')
  t.same(await filesOf(dataDir), before, 'the data dir was not reset or repaired')

  const refused = await request(broken.url + '/readyz').then(
    () => 'answered',
    () => 'refused'
  )
  t.equal(refused, 'refused', 'nothing is listening')
})

void t.test('SIGTERM closes the registry gracefully with exit code 0', async (t) => {
  const dataDir = await tempDir(t)
  const registry = await startRegistry(t, dataDir)
  const set = await api(registry.url, 'PUT', `/v1/services/api/weights${PRE_PROVISION}`, { weights: { v1: 100 } })
  t.equal(set.status, 200)
  registry.child.kill('SIGTERM')
  const { code, signal } = await registry.exited
  t.equal(code, 0, 'exit code 0')
  t.equal(signal, null, 'it exited by itself, not by the signal')
  t.equal(registry.stderr(), '', 'nothing on stderr')
  t.notOk(existsSync(join(dataDir, 'registry.lock')), 'the lock was released')

  const again = await startRegistry(t, dataDir)
  t.same((await api(again.url, 'GET', '/v1/services/api/weights')).json, { weights: { v1: 100 }, revision: set.json.revision }, 'and its state is there on the next start')
  again.child.kill('SIGTERM')
  t.equal((await again.exited).code, 0)
})
