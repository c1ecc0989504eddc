import t from 'tap'
import { pathToFileURL } from 'node:url'
import { projectRoot, spawnNode } from '../helpers/processes.js'

// A real process per case: the module's whole job is signals and exit codes.
const modulePath = pathToFileURL(`${projectRoot}dist/lifecycle/graceful-shutdown.js`).href
const script = `
import { closeOnSignals } from '${modulePath}'
const mode = process.env.MODE
const shutdown = closeOnSignals(async () => {
  console.log('closing')
  if (mode === 'slow') await new Promise((resolve) => setTimeout(resolve, 60_000))
  if (mode === 'throw') throw new Error('close broke')
  console.log('closed')
}, { info: (message) => console.log('info:', message), error: (detail, message) => console.log('error:', message, detail.err?.message ?? '') })
setInterval(() => {}, 1_000)
console.log('ready')
if (mode === 'fail') shutdown.fail(new Error('store broke'))
if (mode === 'reject') Promise.reject(new Error('nobody caught this'))
`

function run(mode: string) {
  return spawnNode(['--input-type=module', '-e', script], { MODE: mode })
}

const cases: { name: string; mode: string; signals: NodeJS.Signals[]; code: number; output: string[] }[] = [
  { name: 'SIGTERM: close once, exit 0', mode: 'ok', signals: ['SIGTERM'], code: 0, output: ['info: SIGTERM received, closing', 'closing', 'closed'] },
  { name: 'SIGINT: close once, exit 0', mode: 'ok', signals: ['SIGINT'], code: 0, output: ['info: SIGINT received, closing', 'closed'] },
  { name: 'a close that throws exits 1', mode: 'throw', signals: ['SIGTERM'], code: 1, output: ['closing', 'error: close failed close broke'] },
  { name: 'a second signal while closing forces exit 1', mode: 'slow', signals: ['SIGTERM', 'SIGINT'], code: 1, output: ['closing', 'error: second SIGINT, exiting'] },
  { name: 'fail(): close, then exit 1', mode: 'fail', signals: [], code: 1, output: ['error: failed; closing store broke', 'closed'] },
  { name: 'an unhandled rejection: close, then exit 1', mode: 'reject', signals: [], code: 1, output: ['error: failed; closing nobody caught this', 'closed'] }
]

for (const c of cases) {
  void t.test(c.name, async (t) => {
    const child = run(c.mode)
    t.teardown(() => child.kill('SIGKILL'))
    await child.waitForOutput('ready')
    for (const signal of c.signals) {
      child.child.kill(signal)
      // the next signal only once the first one is being handled
      await child.waitForOutput('closing')
    }
    t.equal(await child.exited, c.code, child.output())
    for (const line of c.output) t.match(child.output(), line)
  })
}
