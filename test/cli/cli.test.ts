import t from 'tap'
import { startTestRegistry, TOKENS } from '../helpers/registry-harness.js'
import { runCli } from '../helpers/processes.js'
import { parseWeightPairs } from '../../cli/commands/registry-client-commands.js'

void t.test('--help documents every command and the registry settings', async (t) => {
  const top = await runCli(['--help'])
  t.equal(top.code, 0)
  for (const command of ['registry', 'router', 'local', 'services', 'weights', 'history', 'watch']) t.match(top.stdout, command)
  t.match(top.stdout, 'SWITCHYARD_REGISTRY_URL')
  const registry = await runCli(['registry', '--help'])
  t.equal(registry.code, 0)
  for (const flag of ['--port', '--data-dir', '--lease-seconds', '--renew-seconds', '--self-preservation-threshold', '--tokens-file', 'SWITCHYARD_DATA_DIR'])
    t.match(registry.stdout, flag)
  const router = await runCli(['router', '--help'])
  for (const flag of ['--port', '--admin-port', '--config', 'SWITCHYARD_ROUTER_PORT']) t.match(router.stdout, flag)
})

void t.test('sets and reads weights on a running registry', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  const env = { SWITCHYARD_REGISTRY_URL: reg.url, SWITCHYARD_TOKEN: TOKENS.operator }
  // no instance is registered here: the versions are pre-provisioned, as the flag says
  const set = await runCli(['weights', 'set', 'api', 'v1.3=90', 'v1.4=10', '--allow-unregistered'], env)
  t.equal(set.code, 0, set.stderr)
  t.match(set.stdout, 'api: v1.3=90 v1.4=10 (revision 1)')
  const got = await runCli(['weights', 'get', 'api', '--json'], env)
  t.same(JSON.parse(got.stdout), { weights: { 'v1.3': 90, 'v1.4': 10 }, revision: 1 })
  const table = await runCli(['weights', 'get', 'api'], env)
  t.match(table.stdout, /v1\.3\s+90%/)
  const flags = await runCli(['--registry', reg.url, '--token', TOKENS.admin, 'weights', 'set', 'api', 'v1.4=100', '--if-match', '1', '--allow-unregistered'])
  t.equal(flags.code, 0, 'flags work as well as env')
  const history = await runCli(['history', 'api'], env)
  t.match(history.stdout, /2\s+\S+\s+admin\s+v1\.3=90 v1\.4=10\s+v1\.4=100/)
  const services = await runCli(['services'], env)
  t.match(services.stdout, /api\s+v1\.4=100/, 'a version without instances or weight is forgotten')
})

void t.test('errors are one clear line and a non-zero exit', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  const env = { SWITCHYARD_REGISTRY_URL: reg.url, SWITCHYARD_TOKEN: TOKENS.operator }
  const cases: [string[], Record<string, string>, number, RegExp][] = [
    [['weights', 'set', 'api', 'v1.3=90', 'v1.4=9.99'], env, 1, /^switchyard: WEIGHTS_SUM_NOT_100 \(400\): weights add up to 99\.99/],
    [['weights', 'set', 'api', 'v1.3=x'], env, 2, /^switchyard: weight of v1\.3 is "x", not a number$/],
    [['weights', 'set', 'api', 'v1.3'], env, 2, /is not VERSION=WEIGHT/],
    [['weights', 'get', 'nope'], env, 1, /SERVICE_NOT_FOUND \(404\)/],
    [['weights', 'set', 'api', 'v1.3=100'], { ...env, SWITCHYARD_TOKEN: TOKENS.reader }, 1, /FORBIDDEN \(403\)/],
    [['services'], { ...env, SWITCHYARD_TOKEN: '' }, 1, /UNAUTHENTICATED \(401\)/],
    [['services'], { SWITCHYARD_REGISTRY_URL: 'http://127.0.0.1:1', SWITCHYARD_TOKEN: 'x' }, 1, /cannot reach the registry at http:\/\/127\.0\.0\.1:1/],
    [['registry', '--port', 'eighty'], {}, 2, /--port: /]
  ]
  for (const [args, caseEnv, code, message] of cases) {
    const result = await runCli(args, caseEnv)
    t.equal(result.code, code, args.join(' '))
    t.match(result.stderr.trim(), message, args.join(' '))
    t.equal(result.stderr.trim().split('\n').length, 1, `one line: ${result.stderr}`)
    t.notMatch(result.stderr, /at .*\.js:\d+/, 'no stack trace')
  }
})

void t.test('weight pairs are parsed strictly', (t) => {
  t.same(parseWeightPairs(['v1.3=99.5', 'v1.4=0.5']), { 'v1.3': 99.5, 'v1.4': 0.5 })
  t.throws(() => parseWeightPairs(['v1.3=1', 'v1.3=99']), /given twice/)
  t.throws(() => parseWeightPairs(['=5']), /VERSION=WEIGHT/)
  t.end()
})
