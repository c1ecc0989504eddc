import t from 'tap'
import { startTestRegistry, TOKENS } from '../helpers/registry-harness.js'
import { runCli } from '../helpers/processes.js'

void t.test('instances list, status and instances evict against a registry holding expired instances', async (t) => {
  const reg = await startTestRegistry({ selfPreservationMaxMs: 600_000 })
  t.teardown(reg.destroy)
  for (const id of ['api-1', 'api-2', 'api-3', 'api-4', 'api-5']) {
    await reg.registry.register('api', { id, version: 'v1', host: '127.0.0.1', port: 9000 })
  }
  reg.clock.advance(31_000)
  for (const id of ['api-1', 'api-2', 'api-3']) reg.registry.heartbeat('api', id)
  t.equal((await reg.registry.sweep()).selfPreservation, true, '2 of 5 expired at once: held')

  const env = (token: string) => ({ SWITCHYARD_REGISTRY_URL: reg.url, SWITCHYARD_TOKEN: token })
  const status = await runCli(['status'], env(TOKENS.reader))
  t.equal(status.code, 0, status.stderr)
  t.match(status.stdout, /registry ready: revision \d+, 5 instances, file store/)
  t.match(status.stdout, /self-preservation ON since .*: 2 expired instances kept until /)
  const json = await runCli(['status', '--json'], env(TOKENS.reader))
  t.match(JSON.parse(json.stdout), { selfPreservation: true, expiredInstancesKept: 2, store: 'file' })

  const list = await runCli(['instances', 'list', 'api'], env(TOKENS.reader))
  t.equal(list.code, 0, list.stderr)
  t.match(list.stdout, /ID\s+VERSION\s+ADDRESS\s+STATUS\s+LAST HEARTBEAT/)
  t.match(list.stdout, /api-4\s+v1\s+127\.0\.0\.1:9000\s+up/)

  const refused = await runCli(['instances', 'evict', 'api', 'api-4'], env(TOKENS.reader))
  t.not(refused.code, 0, 'a reader may not evict')
  t.match(refused.stderr, /FORBIDDEN/)
  const unknown = await runCli(['instances', 'evict', 'api', 'nope'], env(TOKENS.operator))
  t.not(unknown.code, 0)
  t.match(unknown.stderr, /INSTANCE_NOT_FOUND/)

  for (const id of ['api-4', 'api-5']) {
    const evicted = await runCli(['instances', 'evict', 'api', id], env(TOKENS.operator))
    t.equal(evicted.code, 0, evicted.stderr)
    t.match(evicted.stdout, new RegExp(`evicted ${id} of api \\(revision \\d+\\)`))
  }
  t.same(
    (await reg.registry.snapshot()).services[0]?.instances.map((instance) => instance.id),
    ['api-1', 'api-2', 'api-3']
  )
  await reg.registry.sweep()
  const after = await runCli(['status'], env(TOKENS.reader))
  t.match(after.stdout, /self-preservation off/)
})
