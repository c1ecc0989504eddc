import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { request } from 'undici'
import { startLocalStack } from '../helpers/local-stack.js'
import { cliPath, spawnNode, type SpawnedProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/registry-harness.js'

const apiMain = fileURLToPath(new URL('../../dist/sample-services/api/main.js', import.meta.url))
const TOKEN = 'walkthrough-admin-token-0123456789'

interface Step {
  line: string
  command: string
  expect: string | undefined
}

/** The `npx switchyard`, `curl` and `npm run sample:api` lines of the README's walkthrough. */
async function walkthroughSteps(): Promise<Step[]> {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
  const start = readme.indexOf('## A release, step by step')
  const section = readme.slice(start, readme.indexOf('\n## ', start + 10))
  const steps: Step[] = []
  for (const block of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const raw of (block[1] as string).split('\n')) {
      const line = raw.trim()
      if (!/^(npx switchyard|curl|SWITCHYARD_VERSION=\S+ npm run sample:api)/.test(line)) continue
      const match = /^(.*?)\s+#\s*expect:\s*(.*)$/.exec(line)
      steps.push({ line, command: (match ? (match[1] as string) : line.replace(/\s+#.*$/, '')).trim(), expect: match ? (match[2] as string).trim() : undefined })
    }
  }
  return steps
}

function run(command: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', command], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.once('close', (code) => resolve({ code, output }))
  })
}

void t.test("the README's walkthrough works against the local stack", async (t) => {
  const steps = await walkthroughSteps()
  t.ok(steps.length >= 15, `${steps.length} steps`)
  const stack = await startLocalStack({ token: TOKEN, env: { SWITCHYARD_LOCAL_WEBFRONT: '1' } })
  const { ports } = stack
  const extra: SpawnedProcess[] = []
  t.teardown(async () => {
    await Promise.all(extra.map((p) => p.kill('SIGKILL')))
    await stack.stop()
  })
  const registryUrl = `http://127.0.0.1:${ports.registry}`
  const env = { SWITCHYARD_REGISTRY_URL: registryUrl, SWITCHYARD_TOKEN: TOKEN }
  const routesRevision = async () => ((await (await request(`http://127.0.0.1:${ports.admin}/routes`)).body.json()) as { revision: number }).revision

  for (const step of steps) {
    if (step.command.includes('npm run sample:api')) {
      const version = /SWITCHYARD_VERSION=(\S+)/.exec(step.command)?.[1] ?? 'v1.3'
      const before = await routesRevision()
      const child = spawnNode([apiMain], { ...env, SWITCHYARD_VERSION: version, PORT: '0' })
      extra.push(child)
      await child.waitForOutput('"event":"ready"')
      await waitFor(async () => ((await routesRevision()) > before ? true : undefined), 'the router routing to the new instance')
      t.pass(step.line)
      continue
    }
    const command = step.command
      .replace(/^npx switchyard/, `node ${cliPath}`)
      .replaceAll('localhost:8080', `127.0.0.1:${ports.router}`)
      .replaceAll('localhost:9901', `127.0.0.1:${ports.admin}`)
      .replaceAll('localhost:9902', `127.0.0.1:${ports.messages}`)
    const result = await run(command, env)
    t.equal(result.code, 0, `${step.line} exits 0`)
    if (step.expect !== undefined) t.match(result.output, step.expect, `${step.line}`)
    if (step.command.includes('weights set')) {
      // A router applies a change within milliseconds; the next curl must not outrun it.
      const revision = Number(/revision (\d+)/.exec(result.output)?.[1])
      await waitFor(async () => ((await routesRevision()) >= revision ? true : undefined), `router at revision ${revision}`)
    }
  }
})
