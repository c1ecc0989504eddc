import t, { type Test } from 'tap'
import { startTestRegistry, type TestRegistry } from '../helpers/registry-harness.js'

/**
 * Every bad weight change and every bad registration is refused with a precise status
 * and a stable error code, and leaves the registry exactly as it was. A few positive
 * controls pin down the edges the refusals sit next to.
 */

const JSON_TYPE = { 'content-type': 'application/json' }

interface BadRequest {
  name: string
  method?: string
  /** defaults to the weights (or instances) URL of service `api` */
  path?: string
  body?: unknown
  rawBody?: string
  headers?: Record<string, string>
  status: number
  code: string
}

/** n versions v0..v(n-1); the first takes `first`, the others `rest`. */
function versions(n: number, first: number, rest: number): Record<string, number> {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [`v${i}`, i === 0 ? first : rest]))
}

/** Everything a refused request could have changed, read as an admin. */
async function registryState(reg: TestRegistry) {
  const weights = await reg.call('GET', '/v1/services/api/weights', { token: 'reader' })
  const all = await reg.call('GET', '/v1/services', { token: 'reader' })
  const history = await reg.call('GET', '/v1/services/api/history', { token: 'reader' })
  return { weights: { status: weights.status, etag: weights.headers.etag, json: weights.json as unknown }, all: all.json as unknown, history: history.json as unknown }
}

function assertErrorBody(t: Test, response: { status: number; json: unknown; headers: Record<string, string | string[] | undefined> }, status: number, code: string): void {
  t.equal(response.status, status, `status ${status}`)
  t.match(String(response.headers['content-type']), /^application\/json/, 'the error is JSON')
  const body = response.json as { code?: unknown; message?: unknown } | undefined
  t.equal(body?.code, code, `code ${code}`)
  t.type(body?.message, 'string', 'message is a string')
  t.ok(typeof body?.message === 'string' && body.message.trim().length > 0, 'message is not empty')
}

const reg = await startTestRegistry()
t.teardown(reg.destroy)

const WEIGHTS = '/v1/services/api/weights'
const INSTANCES = '/v1/services/api/instances'
const oneMegabyte = JSON.stringify({ weights: { 'v1.3': 90, 'v1.4': 10 }, padding: 'x'.repeat(1024 * 1024) })

const badWeights: BadRequest[] = [
  // the sum
  { name: 'sum 99.99', body: { weights: { 'v1.3': 89.99, 'v1.4': 10 } }, status: 400, code: 'WEIGHTS_SUM_NOT_100' },
  { name: 'sum 100.01', body: { weights: { 'v1.3': 90.01, 'v1.4': 10 } }, status: 400, code: 'WEIGHTS_SUM_NOT_100' },
  { name: 'sum 99.99 across many versions', body: { weights: { 'v1.3': 33.33, 'v1.4': 33.33, 'v1.5': 33.33 } }, status: 400, code: 'WEIGHTS_SUM_NOT_100' },
  { name: 'sum 50 with one version', body: { weights: { 'v1.3': 50 } }, status: 400, code: 'WEIGHTS_SUM_NOT_100' },
  { name: 'sum 200', body: { weights: { 'v1.3': 100, 'v1.4': 100 } }, status: 400, code: 'WEIGHTS_SUM_NOT_100' },
  { name: 'all zero', body: { weights: { 'v1.3': 0, 'v1.4': 0 } }, status: 400, code: 'WEIGHTS_SUM_NOT_100' },
  // the range
  { name: 'negative weight', body: { weights: { 'v1.3': -10, 'v1.4': 110 } }, status: 400, code: 'WEIGHT_OUT_OF_RANGE' },
  { name: 'negative weight that keeps the sum at 100', body: { weights: { 'v1.3': 100, 'v1.4': 10, 'v1.5': -10 } }, status: 400, code: 'WEIGHT_OUT_OF_RANGE' },
  { name: 'tiny negative weight', body: { weights: { 'v1.3': 100.01, 'v1.4': -0.01 } }, status: 400, code: 'WEIGHT_OUT_OF_RANGE' },
  { name: 'weight above 100', body: { weights: { 'v1.3': 150, 'v1.4': -50 } }, status: 400, code: 'WEIGHT_OUT_OF_RANGE' },
  { name: 'weight of 100.5 alone', body: { weights: { 'v1.3': 100.5 } }, status: 400, code: 'WEIGHT_OUT_OF_RANGE' },
  { name: 'weight of 1e308', body: { weights: { 'v1.3': 1e308 } }, status: 400, code: 'WEIGHT_OUT_OF_RANGE' },
  // not numbers
  { name: 'the string "NaN"', body: { weights: { 'v1.3': 'NaN', 'v1.4': 10 } }, status: 400, code: 'WEIGHT_NOT_A_NUMBER' },
  { name: 'numeric strings "50"', body: { weights: { 'v1.3': '50', 'v1.4': '50' } }, status: 400, code: 'WEIGHT_NOT_A_NUMBER' },
  { name: 'the string "abc"', body: { weights: { 'v1.3': 'abc' } }, status: 400, code: 'WEIGHT_NOT_A_NUMBER' },
  { name: 'the string "Infinity"', body: { weights: { 'v1.3': 'Infinity' } }, status: 400, code: 'WEIGHT_NOT_A_NUMBER' },
  { name: 'null weight', body: { weights: { 'v1.3': null, 'v1.4': 100 } }, status: 400, code: 'WEIGHT_NOT_A_NUMBER' },
  { name: 'boolean weight', body: { weights: { 'v1.3': true } }, status: 400, code: 'WEIGHT_NOT_A_NUMBER' },
  { name: 'object weight', body: { weights: { 'v1.3': { percent: 100 } } }, status: 400, code: 'WEIGHT_NOT_A_NUMBER' },
  { name: 'array weight', body: { weights: { 'v1.3': [100] } }, status: 400, code: 'WEIGHT_NOT_A_NUMBER' },
  // precision
  { name: '3 decimals (33.333)', body: { weights: { 'v1.3': 33.333, 'v1.4': 33.333, 'v1.5': 33.334 } }, status: 400, code: 'WEIGHT_TOO_PRECISE' },
  { name: '3 decimals that add up to 100', body: { weights: { 'v1.3': 99.995, 'v1.4': 0.005 } }, status: 400, code: 'WEIGHT_TOO_PRECISE' },
  { name: '0.001', body: { weights: { 'v1.3': 99.999, 'v1.4': 0.001 } }, status: 400, code: 'WEIGHT_TOO_PRECISE' },
  // how many versions
  { name: 'empty weights object', body: { weights: {} }, status: 400, code: 'WEIGHTS_EMPTY' },
  { name: '65 versions', body: { weights: versions(65, 100, 0) }, status: 400, code: 'TOO_MANY_VERSIONS' },
  { name: '100 versions', body: { weights: versions(100, 1, 1) }, status: 400, code: 'TOO_MANY_VERSIONS' },
  // version names
  { name: 'version with a leading dot', body: { weights: { '.v1.3': 100 } }, status: 400, code: 'INVALID_NAME' },
  { name: 'version with a leading dash', body: { weights: { '-v1': 100 } }, status: 400, code: 'INVALID_NAME' },
  { name: 'version with a space', body: { weights: { 'v1 3': 100 } }, status: 400, code: 'INVALID_NAME' },
  { name: 'version with a slash', body: { weights: { 'v1/3': 100 } }, status: 400, code: 'INVALID_NAME' },
  { name: 'version of 65 characters', body: { weights: { ['v'.repeat(65)]: 100 } }, status: 400, code: 'INVALID_NAME' },
  { name: 'unicode version', body: { weights: { 'v1.é': 100 } }, status: 400, code: 'INVALID_NAME' },
  { name: 'emoji version', body: { weights: { '🚀': 100 } }, status: 400, code: 'INVALID_NAME' },
  { name: 'empty version name', body: { weights: { '': 100 } }, status: 400, code: 'INVALID_NAME' },
  { name: 'bad name beside a good one', body: { weights: { 'v1.3': 90, 'v1.4 ': 10 } }, status: 400, code: 'INVALID_NAME' },
  { name: '__proto__ as a version', rawBody: '{"weights":{"__proto__":100}}', headers: JSON_TYPE, status: 400, code: 'MALFORMED_JSON' },
  // the body's shape
  { name: 'weights as an array', body: { weights: [90, 10] }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'weights as an array of pairs', body: { weights: [['v1.3', 100]] }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'weights null', body: { weights: null }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'weights as a string', body: { weights: 'v1.3=100' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'weights as a number', body: { weights: 100 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'weights missing', body: {}, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'weights misspelled', body: { weight: { 'v1.3': 100 } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'unknown top-level field', body: { weights: { 'v1.3': 100 }, force: true }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'body is JSON null', rawBody: 'null', headers: JSON_TYPE, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'body is a JSON array', rawBody: '[{"weights":{"v1.3":100}}]', headers: JSON_TYPE, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'body is a JSON string', rawBody: '"weights"', headers: JSON_TYPE, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'no body at all', status: 400, code: 'VALIDATION_FAILED' },
  // the wire format
  { name: 'text/plain', rawBody: '{"weights":{"v1.3":100}}', headers: { 'content-type': 'text/plain' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'no content type', rawBody: '{"weights":{"v1.3":100}}', status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'application/xml', rawBody: '<weights v1.3="100"/>', headers: { 'content-type': 'application/xml' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'form encoded', rawBody: 'weights[v1.3]=100', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'malformed JSON (truncated)', rawBody: '{"weights":{"v1.3":100', headers: JSON_TYPE, status: 400, code: 'MALFORMED_JSON' },
  { name: 'malformed JSON (trailing comma)', rawBody: '{"weights":{"v1.3":100,}}', headers: JSON_TYPE, status: 400, code: 'MALFORMED_JSON' },
  { name: 'a NaN literal', rawBody: '{"weights":{"v1.3":NaN}}', headers: JSON_TYPE, status: 400, code: 'MALFORMED_JSON' },
  { name: 'single-quoted JSON', rawBody: "{'weights':{'v1.3':100}}", headers: JSON_TYPE, status: 400, code: 'MALFORMED_JSON' },
  { name: 'empty JSON body', rawBody: '', headers: JSON_TYPE, status: 400, code: 'MALFORMED_JSON' },
  { name: 'a 1 MB body', rawBody: oneMegabyte, headers: JSON_TYPE, status: 413, code: 'BODY_TOO_LARGE' },
  // a version with no instance, not said to be pre-provisioned
  { name: 'a positive weight for a version with no instance', body: { weights: { 'v1.3': 90, v9: 10 } }, status: 409, code: 'VERSION_NOT_REGISTERED' },
  {
    name: 'allowUnregistered that is not true or false',
    path: `${WEIGHTS}?allowUnregistered=yes`,
    body: { weights: { 'v1.3': 90, v9: 10 } },
    status: 400,
    code: 'VALIDATION_FAILED'
  },
  { name: 'allowUnregistered=false', path: `${WEIGHTS}?allowUnregistered=false`, body: { weights: { 'v1.3': 90, v9: 10 } }, status: 409, code: 'VERSION_NOT_REGISTERED' },
  // If-Match (the bodies are valid: only the revision is wrong)
  { name: 'If-Match with a stale revision', body: { weights: { 'v1.3': 50, 'v1.4': 50 } }, headers: { 'if-match': 'STALE' }, status: 412, code: 'REVISION_MISMATCH' },
  { name: 'If-Match with a future revision', body: { weights: { 'v1.3': 50, 'v1.4': 50 } }, headers: { 'if-match': 'FUTURE' }, status: 412, code: 'REVISION_MISMATCH' },
  { name: 'If-Match that is not a number', body: { weights: { 'v1.3': 50, 'v1.4': 50 } }, headers: { 'if-match': 'abc' }, status: 400, code: 'INVALID_REVISION' },
  { name: 'If-Match negative', body: { weights: { 'v1.3': 50, 'v1.4': 50 } }, headers: { 'if-match': '-1' }, status: 400, code: 'INVALID_REVISION' },
  { name: 'If-Match with a fraction', body: { weights: { 'v1.3': 50, 'v1.4': 50 } }, headers: { 'if-match': '"1.5"' }, status: 400, code: 'INVALID_REVISION' },
  { name: 'If-Match with 16 digits', body: { weights: { 'v1.3': 50, 'v1.4': 50 } }, headers: { 'if-match': '1234567890123456' }, status: 400, code: 'INVALID_REVISION' },
  // the service in the URL
  { name: 'service with a leading dot', path: '/v1/services/.api/weights', body: { weights: { 'v1.3': 100 } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'service of 65 characters', path: `/v1/services/${'s'.repeat(65)}/weights`, body: { weights: { 'v1.3': 100 } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'unicode service', path: '/v1/services/%C3%A9/weights', body: { weights: { 'v1.3': 100 } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'service with an encoded space', path: '/v1/services/a%20pi/weights', body: { weights: { 'v1.3': 100 } }, status: 400, code: 'VALIDATION_FAILED' }
]

void t.test('bad weight changes are refused and leave the weights as they were', async (t) => {
  const registered = await reg.call('POST', INSTANCES, { token: 'registrar', body: { id: 'api-1', version: 'v1.3', host: '127.0.0.1', port: 9001 } })
  t.equal(registered.status, 201)
  // v1.4 is pre-provisioned (no instance): the refusals below must leave it too
  const set = await reg.call('PUT', `${WEIGHTS}?allowUnregistered=true`, { token: 'operator', body: { weights: { 'v1.3': 90, 'v1.4': 10 } } })
  t.equal(set.status, 200)
  const before = await registryState(reg)
  t.same(before.weights.json, { weights: { 'v1.3': 90, 'v1.4': 10 }, revision: set.json.revision }, 'the weights to protect are in place')
  t.equal(before.weights.etag, `"${set.json.revision}"`)
  const revision = set.json.revision as number

  t.ok(badWeights.length >= 35, `${badWeights.length} bad requests`)
  t.equal(new Set(badWeights.map((c) => c.name)).size, badWeights.length, 'every case has its own name')
  for (const bad of badWeights) {
    await t.test(bad.name, async (t) => {
      const headers = { ...bad.headers }
      if (headers['if-match'] === 'STALE') headers['if-match'] = `"${revision - 1}"`
      if (headers['if-match'] === 'FUTURE') headers['if-match'] = String(revision + 100)
      const response = await reg.call(bad.method ?? 'PUT', bad.path ?? WEIGHTS, {
        token: 'admin',
        headers,
        ...(bad.body === undefined ? {} : { body: bad.body }),
        ...(bad.rawBody === undefined ? {} : { rawBody: bad.rawBody })
      })
      assertErrorBody(t, response, bad.status, bad.code)
      t.same(await registryState(reg), before, 'weights, revision, ETag, services and history are unchanged')
    })
  }
})

const badRegistrations: BadRequest[] = [
  { name: 'port 0', body: { version: 'v1.3', host: '127.0.0.1', port: 0 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'port 65536', body: { version: 'v1.3', host: '127.0.0.1', port: 65536 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'port "80"', body: { version: 'v1.3', host: '127.0.0.1', port: '80' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'negative port', body: { version: 'v1.3', host: '127.0.0.1', port: -80 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'fractional port', body: { version: 'v1.3', host: '127.0.0.1', port: 80.5 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'missing port', body: { version: 'v1.3', host: '127.0.0.1' }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'missing version', body: { host: '127.0.0.1', port: 9002 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'version with a leading dot', body: { version: '.v1.3', host: '127.0.0.1', port: 9002 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'version with a space', body: { version: 'v1 3', host: '127.0.0.1', port: 9002 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'version of 65 characters', body: { version: 'v'.repeat(65), host: '127.0.0.1', port: 9002 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'empty version', body: { version: '', host: '127.0.0.1', port: 9002 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'numeric version', body: { version: 13, host: '127.0.0.1', port: 9002 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'missing host', body: { version: 'v1.3', port: 9002 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'empty host', body: { version: 'v1.3', host: '', port: 9002 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'host with a space', body: { version: 'v1.3', host: 'a host', port: 9002 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'unknown field', body: { version: 'v1.3', host: '127.0.0.1', port: 9002, weight: 100 }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'bad instance id', body: { id: '-api-2', version: 'v1.3', host: '127.0.0.1', port: 9002 }, status: 400, code: 'VALIDATION_FAILED' },
  {
    name: 'metadata with 33 keys',
    body: { version: 'v1.3', host: '127.0.0.1', port: 9002, metadata: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) },
    status: 400,
    code: 'VALIDATION_FAILED'
  },
  { name: 'metadata value that is a number', body: { version: 'v1.3', host: '127.0.0.1', port: 9002, metadata: { zone: 1 } }, status: 400, code: 'VALIDATION_FAILED' },
  {
    name: 'metadata value of 257 characters',
    body: { version: 'v1.3', host: '127.0.0.1', port: 9002, metadata: { zone: 'z'.repeat(257) } },
    status: 400,
    code: 'VALIDATION_FAILED'
  },
  { name: 'metadata key with a leading dot', body: { version: 'v1.3', host: '127.0.0.1', port: 9002, metadata: { '.zone': 'a' } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'metadata key with a space', body: { version: 'v1.3', host: '127.0.0.1', port: 9002, metadata: { 'the zone': 'a' } }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'metadata key of 65 characters', body: { version: 'v1.3', host: '127.0.0.1', port: 9002, metadata: { ['k'.repeat(65)]: 'a' } }, status: 400, code: 'VALIDATION_FAILED' },
  {
    name: 'metadata with a bad key and a nested value',
    body: { version: 'v1.3', host: '127.0.0.1', port: 9002, metadata: { '.zone': { nested: [1, 2] } } },
    status: 400,
    code: 'VALIDATION_FAILED'
  },
  { name: 'metadata as an array', body: { version: 'v1.3', host: '127.0.0.1', port: 9002, metadata: ['zone'] }, status: 400, code: 'VALIDATION_FAILED' },
  { name: 'bad service in the URL', path: '/v1/services/.api/instances', body: { version: 'v1.3', host: '127.0.0.1', port: 9002 }, status: 400, code: 'VALIDATION_FAILED' },
  {
    name: 'text/plain registration',
    rawBody: '{"version":"v1.3","host":"127.0.0.1","port":9002}',
    headers: { 'content-type': 'text/plain' },
    status: 415,
    code: 'UNSUPPORTED_MEDIA_TYPE'
  },
  { name: 'malformed registration JSON', rawBody: '{"version":"v1.3",', headers: JSON_TYPE, status: 400, code: 'MALFORMED_JSON' },
  { name: 'an existing id under another version', body: { id: 'api-1', version: 'v1.4', host: '127.0.0.1', port: 9001 }, status: 409, code: 'INSTANCE_CONFLICT' }
]

void t.test('bad registrations are refused and leave the instances as they were', async (t) => {
  const before = await registryState(reg)
  const instancesBefore = await reg.call('GET', '/v1/services/api', { token: 'reader' })
  t.equal(instancesBefore.json.instances.length, 1, 'one instance of api to protect')
  for (const bad of badRegistrations) {
    await t.test(bad.name, async (t) => {
      const response = await reg.call('POST', bad.path ?? INSTANCES, {
        token: 'registrar',
        ...(bad.headers === undefined ? {} : { headers: bad.headers }),
        ...(bad.body === undefined ? {} : { body: bad.body }),
        ...(bad.rawBody === undefined ? {} : { rawBody: bad.rawBody })
      })
      assertErrorBody(t, response, bad.status, bad.code)
      const instancesAfter = await reg.call('GET', '/v1/services/api', { token: 'reader' })
      t.same(instancesAfter.json, instancesBefore.json, 'the instance list is unchanged')
      t.same(await registryState(reg), before, 'weights, revision and services are unchanged')
    })
  }
})

void t.test('64 versions that add up to 100 are accepted', async (t) => {
  // 10,000 basis points over 64 versions: 48 x 1.56 + 16 x 1.57
  const weights = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`v${i}`, i < 48 ? 1.56 : 1.57]))
  // none of them has an instance: pre-provisioned, so only the count is under test
  const set = await reg.call('PUT', '/v1/services/wide/weights?allowUnregistered=true', { token: 'admin', body: { weights } })
  t.equal(set.status, 200, set.text.slice(0, 200))
  t.same(set.json.weights, weights)
  const got = await reg.call('GET', '/v1/services/wide/weights', { token: 'reader' })
  t.same(got.json, { weights, revision: set.json.revision })
  t.equal(Object.keys(got.json.weights).length, 64)
  const service = await reg.call('GET', '/v1/services/wide', { token: 'reader' })
  t.equal(service.json.versions.length, 64, 'all 64 versions are listed')
})

void t.test('weights with 0.01 precision are accepted exactly', async (t) => {
  for (const version of ['v1', 'v2']) {
    const registered = await reg.call('POST', '/v1/services/fine/instances', { token: 'registrar', body: { version, host: '127.0.0.1', port: 9100 + Number(version.slice(1)) } })
    t.equal(registered.status, 201)
  }
  const splits = [
    { v1: 99.99, v2: 0.01 },
    { v1: 0.01, v2: 99.99 },
    { v1: 33.33, v2: 66.67 },
    { v1: 0.1, v2: 99.9 },
    { v1: 12.34, v2: 87.66 }
  ]
  for (const weights of splits) {
    const set = await reg.call('PUT', '/v1/services/fine/weights', { token: 'operator', body: { weights } })
    t.equal(set.status, 200, JSON.stringify(weights))
    t.same(set.json.weights, weights)
    const got = await reg.call('GET', '/v1/services/fine/weights', { token: 'reader' })
    t.same(got.json, { weights, revision: set.json.revision }, `${JSON.stringify(weights)} reads back exactly`)
  }
})

void t.test('If-Match with the current revision, in any accepted spelling, is accepted', async (t) => {
  for (const spell of [(r: number) => `"${r}"`, (r: number) => String(r), (r: number) => `W/"${r}"`]) {
    const current = await reg.call('GET', '/v1/services/fine/weights', { token: 'reader' })
    const ifMatch = spell(current.json.revision as number)
    const set = await reg.call('PUT', '/v1/services/fine/weights', { token: 'operator', headers: { 'if-match': ifMatch }, body: { weights: { v1: 50, v2: 50 } } })
    t.equal(set.status, 200, `If-Match: ${ifMatch}`)
    t.equal(set.json.revision, current.json.revision + 1)
    t.equal(set.headers.etag, `"${set.json.revision}"`)
  }
})

void t.test('a version pre-provisioned (allowUnregistered) before any instance of it registers is accepted and listed', async (t) => {
  // a service with no instances at all
  const early = await reg.call('PUT', '/v1/services/early/weights?allowUnregistered=true', { token: 'operator', body: { weights: { v2: 100 } } })
  t.equal(early.status, 200)
  t.same(early.json.weights, { v2: 100 })
  const earlyService = await reg.call('GET', '/v1/services/early', { token: 'reader' })
  t.equal(earlyService.status, 200)
  t.same(earlyService.json.versions, ['v2'])
  t.same(earlyService.json.instances, [])

  // a new version of a service that has instances of another
  t.equal((await reg.call('POST', '/v1/services/ahead/instances', { token: 'registrar', body: { version: 'v1', host: '127.0.0.1', port: 9201 } })).status, 201)
  const set = await reg.call('PUT', '/v1/services/ahead/weights?allowUnregistered=true', { token: 'operator', body: { weights: { v1: 90, v2: 10 } } })
  t.equal(set.status, 200)
  t.same(set.json.weights, { v1: 90, v2: 10 })
  const service = await reg.call('GET', '/v1/services/ahead', { token: 'reader' })
  t.same(service.json.versions, ['v1', 'v2'])
  t.same(service.json.weights, { v1: 90, v2: 10 })

  // when its instance turns up, it keeps the weight it was given
  t.equal((await reg.call('POST', '/v1/services/ahead/instances', { token: 'registrar', body: { version: 'v2', host: '127.0.0.1', port: 9202 } })).status, 201)
  const after = await reg.call('GET', '/v1/services/ahead/weights', { token: 'reader' })
  t.same(after.json.weights, { v1: 90, v2: 10 })
  t.equal((await reg.call('POST', '/v1/services/early/instances', { token: 'registrar', body: { version: 'v2', host: '127.0.0.1', port: 9203 } })).status, 201)
  t.same((await reg.call('GET', '/v1/services/early/weights', { token: 'reader' })).json.weights, { v2: 100 })
})

void t.test('versions left out get 0 and stay known while they have instances', async (t) => {
  const ids: Record<string, string> = {}
  for (const version of ['v1', 'v2']) {
    const registered = await reg.call('POST', '/v1/services/dark/instances', { token: 'registrar', body: { version, host: '127.0.0.1', port: 9300 + Number(version.slice(1)) } })
    t.equal(registered.status, 201)
    ids[version] = registered.json.id as string
  }
  t.same((await reg.call('GET', '/v1/services/dark/weights', { token: 'reader' })).json.weights, { v1: 100, v2: 0 }, 'a later version starts dark at 0')

  const shifted = await reg.call('PUT', '/v1/services/dark/weights', { token: 'operator', body: { weights: { v2: 100 } } })
  t.equal(shifted.status, 200)
  t.same(shifted.json.weights, { v1: 0, v2: 100 }, 'the version left out is answered at 0')
  const service = await reg.call('GET', '/v1/services/dark', { token: 'reader' })
  t.same(service.json.versions, ['v1', 'v2'], 'and stays known')
  t.same(service.json.weights, { v1: 0, v2: 100 })

  const explicit = await reg.call('PUT', '/v1/services/dark/weights', { token: 'operator', body: { weights: { v1: 0, v2: 100 } } })
  t.equal(explicit.status, 200)
  t.same((await reg.call('GET', '/v1/services/dark/weights', { token: 'reader' })).json.weights, { v1: 0, v2: 100 }, 'a version set to 0 stays in GET weights')

  const draining = await reg.call('PUT', `/v1/services/dark/instances/${ids.v1}/status`, { token: 'registrar', body: { status: 'draining' } })
  t.equal(draining.status, 200)
  t.same((await reg.call('GET', '/v1/services/dark/weights', { token: 'reader' })).json.weights, { v1: 0, v2: 100 }, 'also while its only instance drains')

  // a version with neither weight nor instances is forgotten (v3 is pre-provisioned, then dropped)
  t.equal((await reg.call('PUT', '/v1/services/dark/weights?allowUnregistered=true', { token: 'operator', body: { weights: { v2: 90, v3: 10 } } })).status, 200)
  t.same((await reg.call('GET', '/v1/services/dark/weights', { token: 'reader' })).json.weights, { v1: 0, v2: 90, v3: 10 })
  t.equal((await reg.call('PUT', '/v1/services/dark/weights', { token: 'operator', body: { weights: { v2: 100 } } })).status, 200)
  t.same((await reg.call('GET', '/v1/services/dark/weights', { token: 'reader' })).json.weights, { v1: 0, v2: 100 }, 'v3 had no instances and is gone; v1 has one and stays')

  t.equal((await reg.call('DELETE', `/v1/services/dark/instances/${ids.v1}`, { token: 'registrar' })).status, 204)
  t.same((await reg.call('GET', '/v1/services/dark/weights', { token: 'reader' })).json.weights, { v2: 100 }, 'once its last instance is gone, a version at 0 is gone too')
})

void t.test('metadata within the limits is accepted', async (t) => {
  const metadata = { ...Object.fromEntries(Array.from({ length: 31 }, (_, i) => [`k${i}`, 'v'])), 'team/owner.name-x_y': 'z'.repeat(256) }
  const registered = await reg.call('POST', '/v1/services/meta/instances', { token: 'registrar', body: { version: 'v1', host: '127.0.0.1', port: 9401, metadata } })
  t.equal(registered.status, 201, registered.text.slice(0, 200))
  const service = await reg.call('GET', '/v1/services/meta', { token: 'reader' })
  t.same(service.json.instances[0]?.metadata, metadata, '32 keys, a 256-character value and a key with / . - _ are kept as sent')
})
