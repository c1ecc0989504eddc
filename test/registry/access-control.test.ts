import t, { type Test } from 'tap'
import { request, type Dispatcher } from 'undici'
import { readAnswer, type Answer } from '../helpers/http.js'
import { startTestRegistry, TOKENS, waitFor } from '../helpers/registry-harness.js'

/**
 * Every route of the registry against every kind of caller, over real HTTP: who gets in,
 * who is turned away with which status and code, and that a refused write changes nothing.
 * Finally no token may surface in the logs or the metrics.
 */

type TokenName = keyof typeof TOKENS
type Permission = 'read' | 'register' | 'set-weights'
type Method = Dispatcher.HttpMethod

interface Caller {
  name: string
  authorization: string | undefined
  token?: TokenName
}

const WRONG_TOKEN = 'wrong-token-0123456789abcdef-0000'
const ROLE_TOKENS: TokenName[] = ['reader', 'registrar', 'operator', 'admin', 'apiOperator', 'apiRegistrar']

const callers: Caller[] = [
  { name: 'no Authorization header', authorization: undefined },
  { name: 'Basic scheme', authorization: 'Basic x' },
  { name: 'Basic scheme carrying a real token', authorization: `Basic ${TOKENS.admin}` },
  { name: 'a real token without a scheme', authorization: TOKENS.admin },
  { name: 'Bearer without a token', authorization: 'Bearer' },
  { name: 'Bearer with two words', authorization: `Bearer ${TOKENS.admin} ${TOKENS.admin}` },
  { name: 'a wrong token', authorization: `Bearer ${WRONG_TOKEN}` },
  { name: 'a real token in upper case', authorization: `Bearer ${TOKENS.admin.toUpperCase()}` },
  { name: 'a real token with a byte missing', authorization: `Bearer ${TOKENS.admin.slice(0, -1)}` },
  ...ROLE_TOKENS.map((token) => ({ name: token, authorization: `Bearer ${TOKENS[token]}`, token }))
]

/** The rules, written out independently of registry/access/permissions.ts. */
const BOTH = ['api', 'other']
const mayChange: Record<TokenName, Record<'register' | 'set-weights', string[]>> = {
  reader: { register: [], 'set-weights': [] },
  registrar: { register: BOTH, 'set-weights': [] },
  operator: { register: [], 'set-weights': BOTH },
  router: { register: [], 'set-weights': [] },
  admin: { register: BOTH, 'set-weights': BOTH },
  apiOperator: { register: [], 'set-weights': ['api'] },
  apiRegistrar: { register: ['api'], 'set-weights': [] }
}
/** the principal name each token is audited under */
const principalName: Record<TokenName, string> = {
  reader: 'reader',
  registrar: 'registrar',
  operator: 'operator',
  router: 'router',
  admin: 'admin',
  apiOperator: 'api-operator',
  apiRegistrar: 'api-registrar'
}

function expected(caller: Caller, permission: Permission, service: string | undefined): 'allowed' | 401 | 403 {
  if (caller.token === undefined) return 401
  if (permission === 'read') return 'allowed'
  return mayChange[caller.token][permission].includes(service ?? '') ? 'allowed' : 403
}

interface Route {
  method: Method
  /** `:service` and `:id` are filled in */
  path: string
  permission: Permission
  okStatus: number
  body?: (n: number) => unknown
  /** needs instance `target` of the service to exist */
  target?: boolean
  watch?: boolean
}

const routes: Route[] = [
  { method: 'GET', path: '/v1/services', permission: 'read', okStatus: 200 },
  { method: 'HEAD', path: '/v1/services', permission: 'read', okStatus: 200 },
  { method: 'GET', path: '/v1/watch', permission: 'read', okStatus: 200, watch: true },
  { method: 'GET', path: '/v1/services/:service', permission: 'read', okStatus: 200 },
  { method: 'HEAD', path: '/v1/services/:service', permission: 'read', okStatus: 200 },
  { method: 'GET', path: '/v1/services/:service/weights', permission: 'read', okStatus: 200 },
  { method: 'HEAD', path: '/v1/services/:service/weights', permission: 'read', okStatus: 200 },
  { method: 'PUT', path: '/v1/services/:service/weights', permission: 'set-weights', okStatus: 200, body: () => ({ weights: { v1: 100 } }) },
  { method: 'GET', path: '/v1/services/:service/history', permission: 'read', okStatus: 200 },
  { method: 'HEAD', path: '/v1/services/:service/history', permission: 'read', okStatus: 200 },
  {
    method: 'POST',
    path: '/v1/services/:service/instances',
    permission: 'register',
    okStatus: 201,
    body: (n) => ({ id: `probe-${n}`, version: 'v1', host: '127.0.0.1', port: 20_000 + n })
  },
  { method: 'PUT', path: '/v1/services/:service/instances/:id/heartbeat', permission: 'register', okStatus: 200, target: true },
  { method: 'PUT', path: '/v1/services/:service/instances/:id/status', permission: 'register', okStatus: 200, target: true, body: () => ({ status: 'draining' }) },
  { method: 'DELETE', path: '/v1/services/:service/instances/:id', permission: 'register', okStatus: 204, target: true }
]

const reg = await startTestRegistry()
t.teardown(reg.destroy)

/** One real HTTP request with exactly the Authorization header given (or none). */
async function send(method: Method, path: string, authorization: string | undefined, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = {}
  if (authorization !== undefined) headers.authorization = authorization
  if (body !== undefined) headers['content-type'] = 'application/json'
  const response = await request(`${reg.url}${path}`, { method, headers, body: body === undefined ? null : JSON.stringify(body) })
  if (String(response.headers['content-type']).startsWith('text/event-stream')) {
    // A watch stream never ends by itself: the head is all this test wants.
    response.body.destroy()
    return { status: response.statusCode, headers: response.headers, json: undefined, text: '' }
  }
  return readAnswer(response)
}

/** Everything a write could change, as an admin sees it (instances carry their last heartbeat). */
async function registryState() {
  const [all, apiHistory, otherHistory] = await Promise.all([
    reg.call('GET', '/v1/services', { token: 'admin' }),
    reg.call('GET', '/v1/services/api/history', { token: 'admin' }),
    reg.call('GET', '/v1/services/other/history', { token: 'admin' })
  ])
  return { all: all.json as unknown, apiHistory: apiHistory.json as unknown, otherHistory: otherHistory.json as unknown }
}

async function ensureTarget(t: Test, service: string): Promise<void> {
  const registered = await reg.call('POST', `/v1/services/${service}/instances`, { token: 'admin', body: { id: 'target', version: 'v1', host: '127.0.0.1', port: 19_999 } })
  t.ok(registered.status === 200 || registered.status === 201, `instance target of ${service} is up (${registered.status})`)
}

function errorBody(reply: Answer): { code?: unknown; message?: unknown } {
  return (reply.json ?? {}) as { code?: unknown; message?: unknown }
}

void t.test('set-up: services api and other, each with an instance of v1', async (t) => {
  for (const service of BOTH) {
    const registered = await reg.call('POST', `/v1/services/${service}/instances`, {
      token: 'admin',
      body: { id: `${service}-base`, version: 'v1', host: '127.0.0.1', port: 19_000 }
    })
    t.equal(registered.status, 201)
  }
  t.same((await reg.call('GET', '/v1/services/other/weights', { token: 'reader' })).json.weights, { v1: 100 })
})

let probe = 0
let matrixCases = 0
for (const route of routes) {
  const services = route.path.includes(':service') ? BOTH : [undefined]
  for (const service of services) {
    const routeName = `${route.method} ${route.path.replace(':service', service ?? ':service').replace(':id', 'target')}`
    void t.test(routeName, async (t) => {
      for (const caller of callers) {
        const outcome = expected(caller, route.permission, service)
        const label = `${caller.name}: ${routeName}`
        const write = route.method !== 'GET' && route.method !== 'HEAD'
        if (route.target && service !== undefined) await ensureTarget(t, service)
        const before = write && outcome !== 'allowed' ? await registryState() : undefined
        // A heartbeat that got through would now show a later lastHeartbeat.
        reg.clock.advance(1)
        const n = ++probe
        const path = route.path.replace(':service', service ?? '').replace(':id', 'target')
        const reply = await send(route.method, path, caller.authorization, route.body?.(n))
        matrixCases++
        if (outcome === 'allowed') {
          t.equal(reply.status, route.okStatus, `${label} is allowed`)
          if (route.watch) t.match(String(reply.headers['content-type']), /^text\/event-stream/, `${label} opens an event stream`)
          else if (route.okStatus !== 204) t.match(String(reply.headers['content-type']), /^application\/json/, `${label} answers JSON`)
          if (route.method === 'PUT' && route.permission === 'set-weights' && caller.token) {
            const history = (await reg.call('GET', `/v1/services/${service}/history`, { token: 'reader' })).json as { history: { actor: string }[] }
            t.equal(history.history.at(-1)?.actor, principalName[caller.token], `${label} is audited under its principal`)
          }
          if (route.method === 'POST') t.equal((reply.json as { id?: unknown } | undefined)?.id, `probe-${n}`, `${label} registered its instance`)
          if (route.method === 'DELETE') {
            const listed = (await reg.call('GET', `/v1/services/${service}`, { token: 'reader' })).json as { instances: { id: string }[] }
            t.notOk(
              listed.instances.some((instance) => instance.id === 'target'),
              `${label} removed the instance`
            )
          }
        } else {
          t.equal(reply.status, outcome, `${label} is refused with ${outcome}`)
          if (outcome === 401) t.match(String(reply.headers['www-authenticate']), /^Bearer realm="switchyard"/, `${label} is told to authenticate`)
          else t.equal(reply.headers['www-authenticate'], undefined, `${label} is not asked to authenticate again`)
          if (route.method !== 'HEAD') {
            t.equal(errorBody(reply).code, outcome === 401 ? 'UNAUTHENTICATED' : 'FORBIDDEN', `${label} gets a stable code`)
            const message = errorBody(reply).message
            t.ok(typeof message === 'string' && message.length > 0, `${label} gets a message`)
          }
          if (before) t.same(await registryState(), before, `${label} changed nothing`)
        }
      }
    })
  }
}

void t.test('the matrix covered every route and caller', async (t) => {
  t.equal(matrixCases, callers.length * routes.reduce((sum, route) => sum + (route.path.includes(':service') ? 2 : 1), 0))
  // every destroyed watch stream is gone on the server side too
  await waitFor(async () => ((await send('GET', '/metrics', undefined)).text.match(/^switchyard_registry_watchers 0$/m) ? true : undefined), 'watch streams to close')
  t.pass('no watch stream is left open')
})

void t.test('health, readiness and metrics are public whatever the Authorization header', async (t) => {
  for (const path of ['/healthz', '/readyz', '/metrics']) {
    for (const caller of callers) {
      const reply = await send('GET', path, caller.authorization)
      t.equal(reply.status, 200, `${caller.name}: GET ${path}`)
      t.equal(reply.headers['www-authenticate'], undefined, `${caller.name}: GET ${path} asks for no credentials`)
    }
  }
  const health = await send('GET', '/healthz', undefined)
  t.match(health.json, { status: 'ok', revision: Number })
})

void t.test('no token appears in the logs or the metrics', async (t) => {
  const metrics = await send('GET', '/metrics', undefined)
  t.equal(metrics.status, 200)
  t.match(metrics.text, /switchyard_registry_http_request_duration_seconds_count\{[^}]*code="403"/, 'the metrics saw the refused requests')
  // Closing waits for every response, so every request has been logged.
  await reg.close()
  const logs = reg.logs.join('')
  t.ok(reg.logs.length > matrixCases, `the registry logged at trace level (${reg.logs.length} lines)`)
  t.match(logs, /\/v1\/services\/other\/instances\/target\/heartbeat/, 'the logs name the URLs the matrix requested')
  const secrets: [string, string][] = [...Object.entries(TOKENS), ['wrong token', WRONG_TOKEN], ['upper-case admin token', TOKENS.admin.toUpperCase()]]
  for (const [name, secret] of secrets) {
    t.notOk(logs.includes(secret), `the ${name} token is not in the logs`)
    t.notOk(metrics.text.includes(secret), `the ${name} token is not in the metrics`)
  }
})
