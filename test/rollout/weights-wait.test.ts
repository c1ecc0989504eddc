import t from 'tap'
import { runCli } from '../helpers/processes.js'
import { startProcessMesh } from '../helpers/mesh-processes.js'

void t.test('weights set --wait returns once every router applied it, and names a router that did not', async (t) => {
  // A frozen router stays listed (and lagging) for the whole test, however slow the machine.
  const mesh = await startProcessMesh({ registryArgs: ['--router-timeout-seconds', '120'] })
  t.teardown(() => mesh.close())
  await mesh.startApi('v1.3')
  await mesh.startApi('v1.4')
  const first = await mesh.startRouter('router-a')
  const second = await mesh.startRouter('router-b')
  t.teardown(() => void second.process.child.kill('SIGCONT'))

  const applied = await runCli(['weights', 'set', 'api', 'v1.3=90', 'v1.4=10', '--wait'], mesh.env)
  t.equal(applied.code, 0, applied.stderr)
  t.match(applied.stdout, /applied by 2 router\(s\)/)
  t.same(await mesh.routerWeights(first.adminUrl, 'api'), { 'v1.3': 90, 'v1.4': 10 })

  // A frozen router is still listed (until its reports time out) but applies nothing.
  second.process.child.kill('SIGSTOP')
  const waited = await runCli(['weights', 'set', 'api', 'v1.3=80', 'v1.4=20', '--wait', '--timeout', '2s'], mesh.env)
  t.equal(waited.code, 1)
  t.match(waited.stderr, /not applied within 2s by router-b/)
  t.notMatch(waited.stderr, /router-a/, 'only the laggard is named')
  t.match(waited.stdout, /revision \d+/, 'the change itself was made (and is reported)')

  const json = await runCli(['--json', 'routers'], mesh.env)
  t.equal(json.code, 0)
  const listed = JSON.parse(json.stdout) as { routers: { id: string; lag: number }[] }
  t.same(listed.routers.map((router) => router.id).sort(), ['router-a', 'router-b'])
  t.ok((listed.routers.find((router) => router.id === 'router-b')?.lag ?? 0) > 0, 'the frozen router lags')
  const table = await runCli(['routers'], mesh.env)
  t.match(table.stdout, /router-a\s+http/)

  const badTimeout = await runCli(['weights', 'set', 'api', 'v1.3=80', 'v1.4=20', '--wait', '--timeout', 'soon'], mesh.env)
  t.equal(badTimeout.code, 2)
})
