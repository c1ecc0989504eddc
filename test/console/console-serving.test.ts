import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import t from 'tap'
import { request } from 'undici'
import { buildRegistryApp } from '../../registry/app.js'
import { chooseEncoding, defaultAssetsDir, type AssetManifest } from '../../registry/console/console-assets.js'
import { CONSOLE_CSP } from '../../registry/console/console-routes.js'
import { Registry } from '../../registry/registry.js'
import { FileStore } from '../../registry/store/file-store.js'
import { FakeClock } from '../helpers/fake-clock.js'
import { startTestRegistry, testTokenSet, TOKENS } from '../helpers/registry-harness.js'

/** The console as `npm run build` wrote it (npm test builds before tap). */
const manifest = JSON.parse(await readFile(join(defaultAssetsDir(), 'manifest.json'), 'utf8')) as AssetManifest

async function fetchRaw(url: string, headers: Record<string, string> = {}) {
  const response = await request(url, { headers })
  const body = Buffer.from(await response.body.arrayBuffer())
  return { status: response.statusCode, headers: response.headers, body }
}

void t.test('GET /console/: the page, with a strict CSP and the other security headers, no token needed', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  const redirect = await fetchRaw(`${reg.url}/console`)
  t.equal(redirect.status, 308)
  t.equal(redirect.headers.location, '/console/')
  const page = await fetchRaw(`${reg.url}/console/`)
  t.equal(page.status, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.equal(page.headers['content-security-policy'], CONSOLE_CSP)
  t.match(CONSOLE_CSP, /default-src 'self'/)
  t.match(CONSOLE_CSP, /script-src 'self';/)
  t.match(CONSOLE_CSP, /style-src 'self';/)
  t.match(CONSOLE_CSP, /frame-ancestors 'none'/)
  t.notMatch(CONSOLE_CSP, /unsafe/, "no 'unsafe-inline' or 'unsafe-eval' anywhere")
  t.equal(page.headers['x-content-type-options'], 'nosniff')
  t.equal(page.headers['x-frame-options'], 'DENY')
  t.equal(page.headers['referrer-policy'], 'no-referrer')
  t.equal(page.headers['cache-control'], 'no-cache')
  const html = page.body.toString()
  t.match(html, `<script type="module" src="${manifest.js}"></script>`)
  t.match(html, `<link rel="stylesheet" href="${manifest.css}">`)
  t.notMatch(html, /<script(?![^>]*\ssrc=)[^>]*>/, 'no inline script')
  t.notMatch(html, /<style|\sstyle=/, 'no inline style')
})

void t.test('assets: brotli or gzip as accepted, from memory, immutable when hashed, 304 on a known ETag', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  const url = `${reg.url}/console/${manifest.js}`
  const plain = await fetchRaw(url)
  t.equal(plain.status, 200)
  t.match(plain.headers['content-type'], /^text\/javascript/)
  t.equal(plain.headers['content-encoding'], undefined)
  t.equal(plain.headers['cache-control'], 'public, max-age=31536000, immutable')
  t.equal(plain.headers.vary, 'accept-encoding')
  t.equal(plain.headers['content-security-policy'], CONSOLE_CSP)
  const gzip = await fetchRaw(url, { 'accept-encoding': 'gzip, deflate' })
  t.equal(gzip.headers['content-encoding'], 'gzip')
  t.same(gunzipSync(gzip.body), plain.body)
  t.equal(gzip.body.length, manifest.files[manifest.js]?.gzip)
  const br = await fetchRaw(url, { 'accept-encoding': 'gzip, deflate, br' })
  t.equal(br.headers['content-encoding'], 'br')
  t.same(brotliDecompressSync(br.body), plain.body)
  const css = await fetchRaw(`${reg.url}/console/${manifest.css}`, { 'accept-encoding': 'gzip' })
  t.match(css.headers['content-type'], /^text\/css/)
  t.equal(css.headers['content-encoding'], 'gzip')
  const cached = await fetchRaw(url, { 'if-none-match': String(plain.headers.etag) })
  t.equal(cached.status, 304)
  t.equal(cached.body.length, 0)
  const favicon = await fetchRaw(`${reg.url}/console/assets/favicon.svg`)
  t.equal(favicon.headers['content-type'], 'image/svg+xml')
  t.equal(favicon.headers['cache-control'], 'no-cache', 'an unhashed name may change')
  const missing = await reg.call('GET', '/console/assets/nope.js', { token: null })
  t.equal(missing.status, 404)
  t.same(missing.json, { code: 'ROUTE_NOT_FOUND', message: 'no console asset assets/nope.js' })
  const traversal = await reg.call('GET', '/console/assets/..%2Fmanifest.json', { token: null })
  t.equal(traversal.status, 404, 'only files the build listed are served')
})

void t.test('the JavaScript stays under 200 KB compressed', (t) => {
  const js = Object.entries(manifest.files).filter(([path]) => path.endsWith('.js'))
  const gzip = js.reduce((sum, [, file]) => sum + file.gzip, 0)
  const br = js.reduce((sum, [, file]) => sum + file.br, 0)
  const raw = js.reduce((sum, [, file]) => sum + file.bytes, 0)
  t.comment(`console JS: ${raw} bytes, ${gzip} gzip, ${br} brotli`)
  t.ok(gzip <= 200 * 1024, `${gzip} bytes gzip`)
  t.end()
})

void t.test('encoding choice honours q-values', (t) => {
  t.same(
    [undefined, '', 'gzip', 'br;q=0, gzip', 'gzip;q=0, br;q=0', '*', 'identity', 'BR', 'gzip;q=0.5, br;q=0.1'].map((header) => chooseEncoding(header)),
    ['identity', 'identity', 'gzip', 'gzip', 'identity', 'br', 'identity', 'br', 'br']
  )
  t.end()
})

void t.test('a registry whose console was not built says so', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-no-console-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const registry = await Registry.open({ store: new FileStore({ dataDir: dir }), clock: new FakeClock().now })
  const app = buildRegistryApp({ registry, tokens: testTokenSet(), rollouts: { tickMs: 0 }, console: { assetsDir: join(dir, 'nothing-here') } })
  t.teardown(async () => {
    await app.close()
    await registry.close()
  })
  const answer = await app.inject({ method: 'GET', url: '/console/' })
  t.equal(answer.statusCode, 404)
  t.same(answer.json(), { code: 'ROUTE_NOT_FOUND', message: 'the console is not built: run npm run build' })
})

void t.test('GET /v1/whoami: the token name, role and services, never the secret', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  const answers = []
  for (const token of ['reader', 'operator', 'admin', 'apiOperator', 'router'] as const) {
    const answer = await reg.call('GET', '/v1/whoami', { token })
    t.equal(answer.status, 200)
    t.notMatch(answer.text, TOKENS[token])
    answers.push(answer.json)
  }
  t.same(answers, [
    { name: 'reader', role: 'reader', services: null },
    { name: 'operator', role: 'operator', services: null },
    { name: 'admin', role: 'admin', services: null },
    { name: 'api-operator', role: 'operator', services: ['api'] },
    { name: 'router', role: 'router', services: null }
  ])
  const anonymous = await reg.call('GET', '/v1/whoami', { token: null })
  t.equal(anonymous.status, 401)
  t.equal(anonymous.json.code, 'UNAUTHENTICATED')
  t.equal((await reg.call('GET', '/v1/whoami', { token: null, headers: { authorization: 'Bearer not-a-token-0123456789abcdef' } })).status, 401)
})
