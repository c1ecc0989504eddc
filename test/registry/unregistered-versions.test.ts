import t, { type Test } from 'tap'
import { RegistryClient, RegistryRequestError } from '../../registry/client/registry-client.js'
import { runCli } from '../helpers/processes.js'
import { startTestRegistry, TOKENS, type TestRegistry } from '../helpers/registry-harness.js'

/**
 * Issue #15, defect 2: a positive weight for a version with no registered instance (a typo
 * such as v9, or a service nobody registered) is refused with 409 VERSION_NOT_REGISTERED and
 * changes nothing, unless the caller says it is pre-provisioning (allowUnregistered).
 * The CLI tests spawn dist/cli/main.js: run `npm run build` first when running this file alone.
 */

/** Everything a refused request could have changed. */
async function stateOf(reg: TestRegistry, service: string) {
  const weights = await reg.call('GET', `/v1/services/${service}/weights`, { token: 'reader' })
  const all = await reg.call('GET', '/v1/services', { token: 'reader' })
  const history = await reg.call('GET', `/v1/services/${service}/history`, { token: 'reader' })
  return {
    weights: { status: weights.status, etag: weights.headers.etag, json: weights.json as unknown },
    all: all.json as unknown,
    history: { status: history.status, json: history.json as unknown },
    revision: reg.registry.revision
  }
}

async function register(reg: TestRegistry, service: string, version: string, port: number): Promise<string> {
  const answer = await reg.call('POST', `/v1/services/${service}/instances`, { token: 'registrar', body: { version, host: '127.0.0.1', port } })
  if (answer.status !== 201) throw new Error(`register ${service} ${version}: ${answer.status} ${answer.text}`)
  return answer.json.id as string
}

/** api with instances of v1.3 (two) and v1.4 (one, dark at 0 as a later version starts). */
async function apiRegistry(t: Test): Promise<TestRegistry> {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  await register(reg, 'api', 'v1.3', 9001)
  await register(reg, 'api', 'v1.3', 9002)
  await register(reg, 'api', 'v1.4', 9003)
  return reg
}

function putWeights(reg: TestRegistry, service: string, weights: Record<string, number>, query = '') {
  return reg.call('PUT', `/v1/services/${service}/weights${query}`, { token: 'operator', body: { weights } })
}

void t.test('HTTP: a positive weight for a version with no instance is refused with 409 and changes nothing', async (t) => {
  const reg = await apiRegistry(t)
  const set = await putWeights(reg, 'api', { 'v1.3': 90, 'v1.4': 10 })
  t.equal(set.status, 200, 'versions that have instances take weight without a flag')
  const before = await stateOf(reg, 'api')

  const typo = await putWeights(reg, 'api', { 'v1.3': 90, v9: 10 })
  t.equal(typo.status, 409)
  t.match(String(typo.headers['content-type']), /^application\/json/)
  t.equal(typo.json.code, 'VERSION_NOT_REGISTERED')
  t.match(typo.json.message, /^v9 of api has no registered instance/, 'names the version with no instance')
  t.match(typo.json.message, /known versions: v1\.3, v1\.4\b/, 'and the versions the registry knows')
  t.notMatch(typo.json.message, /v1\.3 of api/, 'a registered version is not named as missing')
  t.same(await stateOf(reg, 'api'), before, 'weights, ETag, revision, services and history are unchanged')

  const two = await putWeights(reg, 'api', { 'v1.3': 80, v8: 10, v9: 10 })
  t.equal(two.status, 409)
  t.equal(two.json.code, 'VERSION_NOT_REGISTERED')
  t.match(two.json.message, /^v8, v9 of api have no registered instance/, 'every missing version is named')
  t.same(await stateOf(reg, 'api'), before)

  const explicitNo = await putWeights(reg, 'api', { 'v1.3': 90, v9: 10 }, '?allowUnregistered=false')
  t.equal(explicitNo.status, 409, 'allowUnregistered=false is the default')
  t.equal(explicitNo.json.code, 'VERSION_NOT_REGISTERED')
  t.same(await stateOf(reg, 'api'), before)

  const revision = reg.registry.revision
  const stale = await reg.call('PUT', '/v1/services/api/weights', { token: 'operator', headers: { 'if-match': `"${revision - 1}"` }, body: { weights: { 'v1.3': 90, v9: 10 } } })
  t.equal(stale.status, 412, 'a stale If-Match is answered first: re-reading is the fix either way')
  t.equal(stale.json.code, 'REVISION_MISMATCH')
})

void t.test('HTTP: a split for a service nobody registered is refused', async (t) => {
  const reg = await apiRegistry(t)
  const before = await stateOf(reg, 'ghost')
  t.equal(before.weights.status, 404, 'ghost is not known')

  const refused = await putWeights(reg, 'ghost', { v1: 100 })
  t.equal(refused.status, 409)
  t.equal(refused.json.code, 'VERSION_NOT_REGISTERED')
  t.match(refused.json.message, /^v1 of ghost has no registered instance \(known versions: none\)/)
  t.same(await stateOf(reg, 'ghost'), before, 'ghost is still unknown and the revision did not move')
  t.equal((await reg.call('GET', '/v1/services/ghost', { token: 'reader' })).json.code, 'SERVICE_NOT_FOUND')
})

void t.test('HTTP: a weight of 0 for a version with no instance is accepted', async (t) => {
  const reg = await apiRegistry(t)
  const set = await putWeights(reg, 'api', { 'v1.3': 100, 'v1.4': 0, v9: 0 })
  t.equal(set.status, 200, set.text)
  t.equal(set.json.revision, reg.registry.revision, 'a change was made')
  t.same(set.json.weights, { 'v1.3': 100, 'v1.4': 0 }, 'a version with neither weight nor instances is not kept')
})

void t.test('HTTP: a version is registered while it has an instance, even a draining one, and not after its last goes', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  await register(reg, 'api', 'v1', 9001)
  const canary = await register(reg, 'api', 'v2', 9002)
  t.equal((await reg.call('PUT', `/v1/services/api/instances/${canary}/status`, { token: 'registrar', body: { status: 'draining' } })).status, 200)
  t.equal((await putWeights(reg, 'api', { v1: 90, v2: 10 })).status, 200, 'draining is still registered')

  t.equal((await reg.call('DELETE', `/v1/services/api/instances/${canary}`, { token: 'registrar' })).status, 204)
  const before = await stateOf(reg, 'api')
  const gone = await putWeights(reg, 'api', { v1: 80, v2: 20 })
  t.equal(gone.status, 409)
  t.equal(gone.json.code, 'VERSION_NOT_REGISTERED')
  t.match(gone.json.message, /^v2 of api has no registered instance \(known versions: v1\)/)
  t.same(await stateOf(reg, 'api'), before)
})

void t.test('HTTP: ?allowUnregistered=true pre-provisions; the weight holds once an instance turns up', async (t) => {
  const reg = await apiRegistry(t)
  const set = await putWeights(reg, 'api', { 'v1.3': 90, 'v1.5': 10 }, '?allowUnregistered=true')
  t.equal(set.status, 200, set.text)
  t.same(set.json.weights, { 'v1.3': 90, 'v1.4': 0, 'v1.5': 10 })
  t.equal(set.headers.etag, `"${set.json.revision}"`)
  const history = await reg.call('GET', '/v1/services/api/history', { token: 'reader' })
  t.match(history.json.history.at(-1), { revision: set.json.revision, actor: 'operator', to: { 'v1.3': 90, 'v1.5': 10 } }, 'the change is in the history')

  const ghost = await putWeights(reg, 'ghost', { v1: 100 }, '?allowUnregistered=true')
  t.equal(ghost.status, 200, 'also for a service nobody registered yet')
  t.same((await reg.call('GET', '/v1/services/ghost', { token: 'reader' })).json.versions, ['v1'])

  await register(reg, 'api', 'v1.5', 9005)
  t.same((await reg.call('GET', '/v1/services/api/weights', { token: 'reader' })).json.weights, { 'v1.3': 90, 'v1.4': 0, 'v1.5': 10 }, 'v1.5 keeps its weight when it registers')
  t.equal((await putWeights(reg, 'api', { 'v1.3': 50, 'v1.5': 50 })).status, 200, 'and needs no flag from then on')
})

void t.test('HTTP: allowUnregistered must be true or false', async (t) => {
  const reg = await apiRegistry(t)
  const before = await stateOf(reg, 'api')
  for (const query of ['?allowUnregistered=yes', '?allowUnregistered=1', '?allowUnregistered=', '?allowUnregistered=TRUE', '?allowunregistered=true']) {
    const answer = await putWeights(reg, 'api', { 'v1.3': 90, v9: 10 }, query)
    t.equal(answer.status, 400, query)
    t.equal(answer.json.code, 'VALIDATION_FAILED', query)
  }
  t.same(await stateOf(reg, 'api'), before, 'nothing changed')
})

void t.test('client: setWeights carries the code, and allowUnregistered as an option', async (t) => {
  const reg = await apiRegistry(t)
  const client = new RegistryClient({ url: reg.url, token: TOKENS.operator })
  const error = await client.setWeights('api', { 'v1.3': 90, v9: 10 }).then(
    () => undefined,
    (failure: unknown) => failure
  )
  t.ok(error instanceof RegistryRequestError)
  t.match(error, { status: 409, code: 'VERSION_NOT_REGISTERED', message: /known versions: v1\.3, v1\.4/ })
  t.same((await client.setWeights('api', { 'v1.3': 90, v9: 10 }, undefined, { allowUnregistered: true })).weights, { 'v1.3': 90, 'v1.4': 0, v9: 10 })
})

void t.test('CLI: weights set refuses an unknown version with the code and the known versions; --allow-unregistered sets it', async (t) => {
  const reg = await apiRegistry(t)
  const env = { SWITCHYARD_REGISTRY_URL: reg.url, SWITCHYARD_TOKEN: TOKENS.operator }
  const before = await stateOf(reg, 'api')

  const typo = await runCli(['weights', 'set', 'api', 'v1.3=90', 'v9=10'], env)
  t.equal(typo.code, 1, 'exit 1')
  t.equal(typo.stdout, '', 'nothing on stdout')
  t.match(typo.stderr, /^switchyard: VERSION_NOT_REGISTERED \(409\): v9 of api has no registered instance/, 'the code, the status and the version')
  t.match(typo.stderr, /known versions: v1\.3, v1\.4\b/, 'the known versions')
  t.equal(typo.stderr.trim().split('\n').length, 1, 'one line')
  t.notMatch(typo.stderr, /at .*\.js:\d+/, 'no stack trace')
  t.same(await stateOf(reg, 'api'), before, 'nothing changed')

  const ghost = await runCli(['weights', 'set', 'ghost', 'v1=100'], env)
  t.equal(ghost.code, 1)
  t.match(ghost.stderr, /^switchyard: VERSION_NOT_REGISTERED \(409\): v1 of ghost has no registered instance \(known versions: none\)/)

  const allowed = await runCli(['weights', 'set', 'api', 'v1.3=90', 'v9=10', '--allow-unregistered'], env)
  t.equal(allowed.code, 0, allowed.stderr)
  t.equal(allowed.stdout, `api: v1.3=90 v1.4=0 v9=10 (revision ${before.revision + 1})\n`)
  t.same((await reg.call('GET', '/v1/services/api/weights', { token: 'reader' })).json.weights, { 'v1.3': 90, 'v1.4': 0, v9: 10 })

  const help = await runCli(['weights', 'set', '--help'])
  t.match(help.stdout, '--allow-unregistered', 'the flag is documented')
})
