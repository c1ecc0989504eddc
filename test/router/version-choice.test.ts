import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import t from 'tap'
import { bucketOf } from '../../core/buckets.js'
import { metric, scrape } from '../helpers/prometheus.js'
import { waitFor } from '../helpers/registry-harness.js'
import { startTestMesh, type TestMesh, type Upstream } from '../helpers/router-harness.js'

/**
 * The load generator runs in a worker thread: the router under test has this thread's event
 * loop to itself, and the two share the machine's cores instead of one.
 */
const LOAD_WORKER = `
const { parentPort, workerData } = require('node:worker_threads')
const { request } = require(workerData.undici)
parentPort.on('message', async ({ id, url, total, headers, concurrency }) => {
  const versions = new Array(total)
  let next = 0
  let error
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (error === undefined) {
      const index = next++
      if (index >= total) return
      try {
        const response = await request(url, { headers: headers ? headers[index] : {} })
        await response.body.dump()
        if (response.statusCode !== 200) throw new Error('request ' + index + ' answered ' + response.statusCode)
        versions[index] = String(response.headers['x-switchyard-version'])
      } catch (caught) {
        error = String((caught && caught.message) || caught)
      }
    }
  }))
  parentPort.postMessage({ id, versions, error })
})
`
const loadWorker = new Worker(LOAD_WORKER, { eval: true, workerData: { undici: createRequire(import.meta.url).resolve('undici') } })
t.teardown(() => loadWorker.terminate())
let loadCalls = 0

/** GETs `url` `total` times, `concurrency` at a time; the version that answered each, in request order. */
function versionsFrom(url: string, total: number, options: { concurrency?: number; headers?: Record<string, string>[] } = {}): Promise<string[]> {
  const id = ++loadCalls
  return new Promise((resolve, reject) => {
    const onMessage = (message: { id: number; versions: string[]; error?: string }) => {
      if (message.id !== id) return
      loadWorker.off('message', onMessage)
      loadWorker.off('error', reject)
      if (message.error !== undefined) reject(new Error(message.error))
      else resolve(message.versions)
    }
    loadWorker.on('message', onMessage)
    loadWorker.once('error', reject)
    loadWorker.postMessage({ id, url, total, headers: options.headers, concurrency: options.concurrency ?? 20 })
  })
}

/** Sends `total` GETs through the proxy and counts the versions that answered. */
async function split(
  mesh: TestMesh,
  total: number,
  options: { concurrency?: number; path?: string; headers?: (index: number) => Record<string, string> } = {}
): Promise<Map<string, number>> {
  const headers = options.headers ? Array.from({ length: total }, (_, index) => options.headers?.(index) ?? {}) : undefined
  const versions = await versionsFrom(`${mesh.proxyUrl}${options.path ?? '/api/split'}`, total, { concurrency: options.concurrency ?? 20, ...(headers ? { headers } : {}) })
  const counts = new Map<string, number>()
  for (const version of versions) counts.set(version, (counts.get(version) ?? 0) + 1)
  return counts
}

/** The cheapest upstream answer: the split tests read the version from the router's response header. */
const tiny = (req: IncomingMessage, res: ServerResponse) => {
  req.resume()
  res.end('ok')
}

function share(counts: Map<string, number>, version: string): number {
  let total = 0
  for (const count of counts.values()) total += count
  return (100 * (counts.get(version) ?? 0)) / total
}

async function deregister(mesh: TestMesh, upstream: Upstream): Promise<void> {
  const answer = await mesh.reg.call('DELETE', `/v1/services/api/instances/${upstream.id}`, { token: 'registrar' })
  if (answer.status !== 204) throw new Error(`deregistration failed: ${answer.status} ${answer.text}`)
  await mesh.waitForRevision(mesh.reg.registry.revision)
}

void t.test('split accuracy over 10,000 requests', (t) => {
  void t.test('90/10 with smooth round-robin', async (t) => {
    const mesh = await startTestMesh()
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3', tiny)
    await mesh.addUpstream('api', 'v1.4', tiny)
    await mesh.setWeights('api', { 'v1.3': 90, 'v1.4': 10 })
    const counts = await split(mesh, 10_000)
    t.ok(Math.abs(share(counts, 'v1.3') - 90) <= 1, `v1.3 got ${share(counts, 'v1.3')}%`)
    t.ok(Math.abs(share(counts, 'v1.4') - 10) <= 1, `v1.4 got ${share(counts, 'v1.4')}%`)
    t.same([...counts.keys()].sort(), ['v1.3', 'v1.4'], 'no other version answered')
  })

  void t.test('50/30/20 over three versions', async (t) => {
    const mesh = await startTestMesh()
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3', tiny)
    await mesh.addUpstream('api', 'v1.4', tiny)
    await mesh.addUpstream('api', 'v1.5', tiny)
    await mesh.setWeights('api', { 'v1.3': 50, 'v1.4': 30, 'v1.5': 20 })
    const counts = await split(mesh, 10_000)
    for (const [version, expected] of [
      ['v1.3', 50],
      ['v1.4', 30],
      ['v1.5', 20]
    ] as const) {
      t.ok(Math.abs(share(counts, version) - expected) <= 1, `${version} got ${share(counts, version)}%, expected ${expected}%`)
    }
  })

  void t.test('90/10 with weightedChoice: random', async (t) => {
    const mesh = await startTestMesh({ weightedChoice: 'random' })
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3', tiny)
    await mesh.addUpstream('api', 'v1.4', tiny)
    await mesh.setWeights('api', { 'v1.3': 90, 'v1.4': 10 })
    const counts = await split(mesh, 10_000)
    // One standard deviation of a 10% share over 10,000 draws is 0.3 pp: 1 pp is 3.3 sigma.
    t.ok(Math.abs(share(counts, 'v1.4') - 10) <= 1, `v1.4 got ${share(counts, 'v1.4')}%`)
    t.ok(Math.abs(share(counts, 'v1.3') - 90) <= 1, `v1.3 got ${share(counts, 'v1.3')}%`)
  })
  t.end()
})

void t.test('forced version', async (t) => {
  const mesh = await startTestMesh()
  t.teardown(mesh.close)
  await mesh.addUpstream('api', 'v1.3')
  const canary = await mesh.addUpstream('api', 'v1.4')
  const dark = await mesh.addUpstream('api', 'v2.0')
  await mesh.setWeights('api', { 'v1.3': 90, 'v1.4': 10 })

  const forced = await mesh.get('/api/x', { 'x-switchyard-version': 'v2.0' })
  t.equal(forced.status, 200)
  t.equal(forced.json.version, 'v2.0', 'a version at 0% answers when forced')
  t.equal(forced.headers['x-switchyard-version'], 'v2.0')
  t.equal(forced.json.headers['x-switchyard-version'], 'v2.0', 'the upstream is told its version')
  for (let i = 0; i < 20; i++) {
    const again = await mesh.get('/api/x', { 'x-switchyard-version': 'v1.4' })
    t.equal(again.json.version, 'v1.4')
  }

  const unknown = await mesh.get('/api/x', { 'x-switchyard-version': 'v9.9' })
  t.equal(unknown.status, 503)
  t.equal(unknown.json.code, 'UNKNOWN_VERSION')

  await deregister(mesh, canary)
  const gone = await mesh.get('/api/x', { 'x-switchyard-version': 'v1.4' })
  t.equal(gone.status, 503, 'a forced version with weight but no instance')
  t.equal(gone.json.code, 'NO_HEALTHY_INSTANCE')

  // A 0% version whose last instance leaves is no longer known to the registry at all.
  await deregister(mesh, dark)
  const vanished = await mesh.get('/api/x', { 'x-switchyard-version': 'v2.0' })
  t.equal(vanished.status, 503)
  t.equal(vanished.json.code, 'UNKNOWN_VERSION', 'a 0% version without instances is forgotten, so it is unknown')
})

void t.test('forced version restricted', (t) => {
  void t.test('to trusted networks: ignored from 127.0.0.1', async (t) => {
    const mesh = await startTestMesh({ forcedVersion: { allowed: true, trustedNetworks: ['10.0.0.0/8'] } })
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3')
    await mesh.addUpstream('api', 'v1.4')
    for (let i = 0; i < 10; i++) {
      const answer = await mesh.get('/api/x', { 'x-switchyard-version': 'v1.4' })
      t.equal(answer.status, 200)
      t.equal(answer.json.version, 'v1.3', 'the weighted answer, not the forced one')
    }
  })

  void t.test('to holders of a secret header', async (t) => {
    const secret = 'canary-secret-0123456789'
    const mesh = await startTestMesh({ forcedVersion: { allowed: true, secretHeader: { name: 'x-canary-secret', value: secret } } })
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3')
    await mesh.addUpstream('api', 'v1.4')
    const none = await mesh.get('/api/x', { 'x-switchyard-version': 'v1.4' })
    t.equal(none.json.version, 'v1.3', 'no secret: ignored')
    const wrong = await mesh.get('/api/x', { 'x-switchyard-version': 'v1.4', 'x-canary-secret': 'canary-secret-0123456780' })
    t.equal(wrong.json.version, 'v1.3', 'wrong secret of the same length: ignored')
    const short = await mesh.get('/api/x', { 'x-switchyard-version': 'v1.4', 'x-canary-secret': 'canary' })
    t.equal(short.json.version, 'v1.3', 'wrong secret of another length: ignored')
    t.notOk('x-canary-secret' in wrong.json.headers, 'a wrong secret is not forwarded either')
    const right = await mesh.get('/api/x', { 'x-switchyard-version': 'v1.4', 'x-canary-secret': secret })
    t.equal(right.status, 200)
    t.equal(right.json.version, 'v1.4', 'the right secret forces the version')
    t.notOk('x-canary-secret' in right.json.headers, 'the upstream never sees the secret')
    t.notOk(JSON.stringify(right.json.headers).includes(secret), 'the secret value appears in no header the upstream saw')
  })

  void t.test('not allowed at all', async (t) => {
    const mesh = await startTestMesh({ forcedVersion: { allowed: false } })
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3')
    await mesh.addUpstream('api', 'v1.4')
    for (let i = 0; i < 10; i++) {
      const answer = await mesh.get('/api/x', { 'x-switchyard-version': 'v1.4' })
      t.equal(answer.json.version, 'v1.3')
    }
    const unknown = await mesh.get('/api/x', { 'x-switchyard-version': 'v9.9' })
    t.equal(unknown.status, 200, 'an unknown forced version is not even looked at')
  })
  t.end()
})

void t.test('sticky keys', (t) => {
  void t.test('the same key always lands on the same version', async (t) => {
    const mesh = await startTestMesh()
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3')
    await mesh.addUpstream('api', 'v1.4')
    await mesh.setWeights('api', { 'v1.3': 50, 'v1.4': 50 })
    const keys = Array.from({ length: 300 }, (_, i) => `user-${i}`)
    // every key three times, the rounds interleaved and in flight together
    const sent = [...keys, ...keys, ...keys]
    const versions = await versionsFrom(`${mesh.proxyUrl}/api/sticky`, sent.length, { headers: sent.map((key) => ({ 'x-switchyard-key': key })) })
    const first = new Map<string, string>()
    let moved = 0
    let mismatched = 0
    for (const [index, key] of sent.entries()) {
      const version = versions[index] as string
      const earlier = first.get(key)
      if (earlier === undefined) first.set(key, version)
      else if (earlier !== version) moved++
      // Versions own bucket ranges in version order: v1.3 [0, 5000), v1.4 [5000, 10000).
      if (version !== (bucketOf(key) < 5000 ? 'v1.3' : 'v1.4')) mismatched++
    }
    t.equal(moved, 0, 'no key changed version between its requests')
    t.equal(mismatched, 0, 'every key is on the version that owns its bucket')
    const onCanary = [...first.values()].filter((version) => version === 'v1.4').length
    t.ok(onCanary > 90 && onCanary < 210, `both versions get keys (${onCanary} of 300 on v1.4)`)
  })

  void t.test('ramping the canary up never moves a key off it', async (t) => {
    const mesh = await startTestMesh()
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3')
    await mesh.addUpstream('api', 'v1.4')
    await mesh.setWeights('api', { 'v1.3': 90, 'v1.4': 10 })
    const keys = Array.from({ length: 2000 }, (_, i) => `session-${i}-${(i * 7919) % 1000}`)
    const versionsOf = async (list: string[]) => {
      const versions = await versionsFrom(`${mesh.proxyUrl}/api/ramp`, list.length, { headers: list.map((key) => ({ 'x-switchyard-key': key })) })
      return new Map(list.map((key, index) => [key, versions[index] as string]))
    }
    const before = await versionsOf(keys)
    const canaryKeys = keys.filter((key) => before.get(key) === 'v1.4')
    t.ok(canaryKeys.length > 120 && canaryKeys.length < 280, `about 10% of keys on the canary at 90/10 (${canaryKeys.length})`)
    await mesh.setWeights('api', { 'v1.3': 50, 'v1.4': 50 })
    // Ask again for every canary key, plus 400 of the others to see the canary's range grow.
    const others = keys.filter((key) => before.get(key) === 'v1.3').slice(0, 400)
    const after = await versionsOf([...canaryKeys, ...others])
    const stayed = canaryKeys.filter((key) => after.get(key) === 'v1.4').length
    t.equal(stayed, canaryKeys.length, 'every key on the canary at 10% is still on it at 50%')
    const moved = others.filter((key) => after.get(key) === 'v1.4').length
    // 4,000 of v1.3's 9,000 buckets moved to the canary: about 44% of its keys
    t.ok(moved > 130 && moved < 230, `about 44% of the other keys moved to the canary (${moved} of 400)`)
  })

  void t.test('a cookie as the sticky key', async (t) => {
    const mesh = await startTestMesh({ stickyKey: { cookie: 'session' } })
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3')
    await mesh.addUpstream('api', 'v1.4')
    await mesh.setWeights('api', { 'v1.3': 50, 'v1.4': 50 })
    let mismatched = 0
    const versions = new Set<string>()
    for (let i = 0; i < 40; i++) {
      const session = `s${i}x${i * 31}`
      const expected = bucketOf(session) < 5000 ? 'v1.3' : 'v1.4'
      for (const cookie of [`session=${session}`, `theme=dark; session=${session}; lang=en`, ` lang=en;session=${session} `]) {
        const answer = await mesh.get('/api/c', { cookie })
        if (answer.json.version !== expected) mismatched++
        versions.add(answer.json.version)
      }
    }
    t.equal(mismatched, 0, 'each session lands on the version owning its bucket, wherever the cookie sits')
    t.same([...versions].sort(), ['v1.3', 'v1.4'], 'sessions spread over both versions')
    // The sticky header is not the key when a cookie is configured: requests are weighted.
    const byHeader = await split(mesh, 100, { concurrency: 1, headers: () => ({ 'x-switchyard-key': 'always-the-same' }) })
    t.same([...byHeader.keys()].sort(), ['v1.3', 'v1.4'], 'x-switchyard-key is ignored under a cookie sticky key')
  })
  t.end()
})

void t.test('fallback and refusals', (t) => {
  void t.test('a weighted version without instances sends its share to the others', async (t) => {
    const mesh = await startTestMesh()
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3')
    const canary = await mesh.addUpstream('api', 'v1.4')
    await mesh.setWeights('api', { 'v1.3': 50, 'v1.4': 50 })
    const both = await split(mesh, 100, { concurrency: 1 })
    t.equal(both.get('v1.4'), 50, 'before: half on v1.4')
    await deregister(mesh, canary)
    const counts = await split(mesh, 200)
    t.same([...counts.entries()], [['v1.3', 200]], 'every request went to v1.3')
    const sticky = await split(mesh, 100, { headers: (i) => ({ 'x-switchyard-key': `k${i}` }) })
    t.same([...sticky.entries()], [['v1.3', 100]], 'sticky keys of v1.4 fall back too')
    const text = await scrape(mesh.adminUrl)
    t.ok(metric(text, 'switchyard_version_fallback_total', { service: 'api', version: 'v1.4' }) > 0, 'the fallback is counted for v1.4')
    t.equal(metric(text, 'switchyard_version_fallback_total', { service: 'api', version: 'v1.3' }), 0, 'not for v1.3')
    const routes = await mesh.routes()
    t.equal(routes.services.find((s: any) => s.name === 'api').fallbackActive, true, '/routes shows the fallback')
  })

  void t.test('no version with weight has an instance', async (t) => {
    const mesh = await startTestMesh()
    t.teardown(mesh.close)
    const stable = await mesh.addUpstream('api', 'v1.3')
    await mesh.addUpstream('api', 'v1.4')
    // v1.4 has an instance but 0%; v1.3 has all the weight and loses its instance
    await deregister(mesh, stable)
    const answer = await mesh.get('/api/x')
    t.equal(answer.status, 503)
    t.equal(answer.json.code, 'NO_HEALTHY_INSTANCE')
    const keyed = await mesh.get('/api/x', { 'x-switchyard-key': 'someone' })
    t.equal(keyed.json.code, 'NO_HEALTHY_INSTANCE', 'sticky requests too')
    const forced = await mesh.get('/api/x', { 'x-switchyard-version': 'v1.4' })
    t.equal(forced.json.version, 'v1.4', 'the 0% version is still reachable when forced')
  })

  void t.test('unknown service and no route', async (t) => {
    const mesh = await startTestMesh({
      routes: [
        { match: { pathPrefix: '/api' }, service: 'api' },
        { match: { pathPrefix: '/other' }, service: 'other' }
      ]
    })
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3')
    const unknown = await mesh.get('/other/x')
    t.equal(unknown.status, 503)
    t.equal(unknown.json.code, 'UNKNOWN_SERVICE')
    const none = await mesh.get('/elsewhere')
    t.equal(none.status, 404)
    t.equal(none.json.code, 'ROUTE_NOT_FOUND')
    t.match(none.headers['x-request-id'], /\S/, 'router answers carry a request id too')
  })
  t.end()
})

void t.test('a weight change through the registry API is applied by the running router', async (t) => {
  const mesh = await startTestMesh()
  t.teardown(mesh.close)
  await mesh.addUpstream('api', 'v1.3')
  await mesh.addUpstream('api', 'v1.4')
  await mesh.setWeights('api', { 'v1.3': 90, 'v1.4': 10 })
  const before = await split(mesh, 200)
  t.equal(before.get('v1.4'), 20, '10% of 200 before')

  const answer = await mesh.reg.call('PUT', '/v1/services/api/weights', { token: 'operator', body: { weights: { 'v1.3': 25, 'v1.4': 75 } } })
  t.equal(answer.status, 200)
  const revision = answer.json.revision as number
  const routes = await waitFor(async () => {
    const current = await mesh.routes()
    return current.revision >= revision ? current : undefined
  }, `router /routes at revision ${revision}`)
  const api = routes.services.find((service: any) => service.name === 'api')
  t.same(
    api.versions.map((version: any) => [version.name, version.weight]),
    [
      ['v1.3', 25],
      ['v1.4', 75]
    ],
    '/routes shows the new weights'
  )
  const after = await split(mesh, 200)
  t.equal(after.get('v1.4'), 150, '75% of 200 after')
  t.equal(after.get('v1.3'), 50)
})
