import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { startLocalStack } from '../helpers/local-stack.js'
import { cliPath } from '../helpers/processes.js'

const TOKEN = 'rollout-walkthrough-token-0123456789'

interface Line {
  text: string
  command: string
  exit: number
  expect: string | undefined
}

interface Scenario {
  env: Record<string, string>
  load: number
  lines: Line[]
}

/** The README's rollout walkthrough: one ```sh block per scenario, its first line starts the stack. */
async function scenarios(): Promise<Scenario[]> {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
  const start = readme.indexOf('### Walkthrough', readme.indexOf('## Rollouts'))
  const section = readme.slice(start, readme.indexOf('\n### ', start + 10))
  const found: Scenario[] = []
  for (const block of section.matchAll(/```sh\n([\s\S]*?)```/g)) {
    const [first, ...rest] = (block[1] as string).trim().split('\n')
    const stack = /^((?:\w+=\S+\s+)*)npm start -- --load (\d+)$/.exec((first ?? '').trim())
    if (!stack) throw new Error(`a walkthrough block must start with "npm start -- --load N": ${first}`)
    const env = Object.fromEntries([...(stack[1] as string).matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1] as string, m[2] as string]))
    const lines = rest.map((raw) => {
      const text = raw.trim()
      const expect = /#\s*expect:\s*(.*)$/.exec(text)?.[1]?.trim()
      const exit = Number(/#\s*exit:\s*(\d+)/.exec(text)?.[1] ?? 0)
      return { text, command: text.replace(/\s+#.*$/, ''), exit, expect }
    })
    found.push({ env, load: Number(stack[2]), lines })
  }
  return found
}

function run(command: string, env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', command], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })
}

void t.test("the README's rollout walkthrough: promoted, rolled back on errors, rolled back on rejects", async (t) => {
  const all = await scenarios()
  t.equal(all.length, 3, 'three scenarios')
  for (const scenario of all) {
    await t.test(
      Object.entries(scenario.env)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ') || 'a healthy release',
      async (t) => {
        // Twice the README's rate: 1-second steps need the requests sooner.
        const stack = await startLocalStack({
          token: TOKEN,
          args: ['--load', String(scenario.load * 2)],
          env: { ...scenario.env, SWITCHYARD_LOCAL_WEBFRONT: '1', SWITCHYARD_LOCAL_API_V13: '1' }
        })
        t.teardown(() => stack.stop())
        const env = stack.env
        for (const line of scenario.lines) {
          // The same commands with 1-second intervals instead of 30.
          const command = line.command.replace(/^npx switchyard/, `node ${cliPath}`).replace('--interval 30s', '--interval 1s')
          const result = await run(command, env, 150_000)
          t.equal(result.code, line.exit, `${line.text}: exit ${line.exit}\n${result.output.slice(-600)}`)
          if (line.expect !== undefined) t.match(result.output, new RegExp(line.expect), line.text)
        }
      }
    )
  }
})
