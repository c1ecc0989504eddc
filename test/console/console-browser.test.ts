/**
 * The console in headless Chromium (Debian's package, driven by playwright-core) against a
 * real registry process, a real router process and real upstreams: sign-in, role limits, a
 * weight change end to end, a conflict, escaping, keyboard use, and axe on every page.
 * Screenshots go to a temporary directory, or to docs/console with `npm run docs:console`.
 */
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import { accessibilityViolations, launchBrowser, openPage, screenshotDir, signIn, type WatchedPage } from '../helpers/browser.js'
import { CONSOLE_TOKENS, startConsoleMesh } from '../helpers/console-mesh.js'
import { get } from '../helpers/http.js'
import { runCli } from '../helpers/processes.js'
import { waitFor } from '../helpers/registry-harness.js'

// Chromium and several processes on a shared 2-core machine: more than tap's default per file.
t.setTimeout(600_000)

const MARKUP = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'

const mesh = await startConsoleMesh()
t.teardown(() => mesh.close())
const browser = await launchBrowser()
t.teardown(() => browser.close())
const shots = await screenshotDir()
t.comment(`screenshots in ${shots}`)

await mesh.addUpstream('api', 'v1.3', { zone: 'a' })
await mesh.addUpstream('api', 'v1.3', { zone: 'b' })
await mesh.addUpstream('api', 'v1.4', { zone: 'a', build: '2026-01-05' })
await mesh.addUpstream('orders-worker', 'v1')
await mesh.addUpstream('orders-worker', 'v2')
await mesh.api('PUT', '/v1/services/orders-worker/weights', { weights: { v1: 90, v2: 10 } })
await mesh.addUpstream('markup', 'v1', { note: MARKUP })
const router = await mesh.startRouter('router-a')

async function open(token: keyof typeof CONSOLE_TOKENS, options: { width?: number; height?: number } = {}): Promise<WatchedPage> {
  const watched = await openPage(browser, options)
  await signIn(watched.page, mesh.registryUrl, CONSOLE_TOKENS[token])
  return watched
}

async function openService(page: Page, name: string): Promise<void> {
  await page.getByRole('link', { name, exact: true }).first().click()
  await page.getByRole('heading', { level: 1, name }).waitFor()
  await page.getByRole('heading', { name: 'Instances' }).waitFor()
}

async function weightsOf(service: string): Promise<Record<string, number>> {
  return (await mesh.api('GET', `/v1/services/${service}/weights`)).json.weights
}

function noProblems(t: Test, watched: WatchedPage): void {
  t.same(watched.problems, [], 'no CSP violation, no page error, no request off this machine')
  for (const token of Object.values(CONSOLE_TOKENS))
    t.notOk(
      watched.urls.some((url) => url.includes(token)),
      'no token in any URL'
    )
}

void t.test('sign-in: a wrong token is refused, a right one is kept in this tab only and sent as a header', async (t) => {
  const watched = await openPage(browser)
  const { page } = watched
  t.teardown(() => watched.context.close())
  const authorizations: string[] = []
  page.on('request', (request) => {
    const header = request.headers().authorization
    if (header) authorizations.push(header)
  })
  await page.goto(`${mesh.registryUrl}/console/`)
  await page.screenshot({ path: join(shots, 'sign-in.png') })
  await page.getByLabel('Token').fill('not-a-token-0123456789abcdef')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('alert').filter({ hasText: 'does not accept this token' }).waitFor()
  await page.getByLabel('Token').fill(CONSOLE_TOKENS.operator)
  await page.keyboard.press('Enter')
  await page.getByRole('button', { name: 'Sign out' }).waitFor()
  await page.getByRole('link', { name: 'api', exact: true }).waitFor()
  t.equal(await page.evaluate(() => (globalThis as any).sessionStorage.getItem('switchyard.console.token')), CONSOLE_TOKENS.operator)
  t.equal(await page.evaluate(() => (globalThis as any).localStorage.length), 0, 'nothing in local storage')
  t.same(await watched.context.cookies(), [], 'no cookie')
  t.ok(authorizations.includes(`Bearer ${CONSOLE_TOKENS.operator}`), 'the token travels as a bearer header')
  await page.reload()
  await page.getByRole('button', { name: 'Sign out' }).waitFor()
  t.pass('a reload keeps the session')
  await page.getByRole('button', { name: 'Sign out' }).click()
  await page.getByLabel('Token').waitFor()
  t.equal(await page.evaluate(() => (globalThis as any).sessionStorage.length), 0, 'signing out forgets the token')
  noProblems(t, watched)
})

void t.test('a reader sees everything and is offered no change; an operator of api only, changes to api only', async (t) => {
  const reader = await open('reader')
  t.teardown(() => reader.context.close())
  const { page } = reader
  for (const name of ['api', 'markup', 'orders-worker']) await page.getByRole('link', { name, exact: true }).waitFor()
  await openService(page, 'api')
  await page.getByText('this token may not change the traffic of api').waitFor()
  t.same(await page.locator('main button').allTextContents(), [], 'no button at all on the service page')
  t.equal(await page.getByRole('button', { name: /Apply|Roll back|Start rollout|100%/ }).count(), 0)
  t.equal(await page.locator('main input[type=number], main input[type=range]').count(), 0)
  await page.getByRole('link', { name: 'Rollouts' }).click()
  await page.getByRole('heading', { name: 'Rollouts' }).waitFor()
  t.equal(await page.locator('main button').count(), 0)
  noProblems(t, reader)

  const apiOperator = await open('apiOperator')
  t.teardown(() => apiOperator.context.close())
  await openService(apiOperator.page, 'api')
  await apiOperator.page.getByRole('button', { name: 'Apply…' }).waitFor()
  await apiOperator.page.goto(`${mesh.registryUrl}/console/#/services/orders-worker`)
  await apiOperator.page.getByText('this token may not change the traffic of orders-worker').waitFor()
  t.equal(await apiOperator.page.getByRole('button', { name: 'Apply…' }).count(), 0)
})

void t.test('a weight change by keyboard: preview, confirmation, If-Match, the routers that applied it, and the router routes by it', async (t) => {
  const watched = await open('operator')
  const { page } = watched
  t.teardown(() => watched.context.close())
  await openService(page, 'api')
  const canary = page.getByRole('spinbutton', { name: 'v1.4' })
  await canary.focus()
  await page.keyboard.press('Control+A')
  await page.keyboard.type('30')
  await page.keyboard.press('Tab')
  await waitFor(async () => ((await page.getByRole('spinbutton', { name: 'v1.3' }).inputValue()) === '70' ? true : undefined), 'v1.3 at 70')
  t.pass('the other version follows: the split adds up to 100')
  await page.getByText('v1.3 100% → 70%, v1.4 0% → 30%').first().waitFor()
  // Tab to the Apply button, as a keyboard user would.
  let focused = ''
  const path: string[] = []
  for (let i = 0; i < 20 && focused !== 'Apply…'; i++) {
    await page.keyboard.press('Tab')
    focused = await page.evaluate(() => (globalThis as any).document.activeElement?.textContent ?? '')
    path.push(await page.evaluate(() => `${(globalThis as any).document.activeElement?.tagName}:${(globalThis as any).document.activeElement?.textContent?.slice(0, 20)}`))
  }
  t.equal(focused, 'Apply…', `Apply is reachable with Tab (${path.join(' > ')})`)
  await page.keyboard.press('Enter')
  const dialog = page.getByRole('dialog', { name: 'Apply the new split?' })
  await dialog.waitFor()
  t.match(await dialog.textContent(), /If-Match: revision \d+/)
  await page.screenshot({ path: join(shots, 'weights-confirm.png') })
  await page.keyboard.press('Escape')
  await dialog.waitFor({ state: 'hidden' })
  t.same(await weightsOf('api'), { 'v1.3': 100, 'v1.4': 0 }, 'Escape cancels: nothing written')
  await page.getByRole('button', { name: 'Apply…' }).click()
  await dialog.getByRole('button', { name: 'Apply' }).focus()
  await page.keyboard.press('Enter')
  await page.getByText(/Applied at revision \d+: v1.3=70 v1.4=30/).waitFor()
  await page.getByText(/1 of 1\s+router applied revision/).waitFor()
  await page.getByText('router-a (HTTP router').waitFor()
  t.same(await weightsOf('api'), { 'v1.3': 70, 'v1.4': 30 })
  const history = (await mesh.api('GET', '/v1/services/api/history')).json.history
  t.same(history.at(-1).actor, 'operator', 'audited under the token name')
  await page.screenshot({ path: join(shots, 'weights-applied.png'), fullPage: true })

  const versions: Record<string, number> = {}
  for (let i = 0; i < 100; i++) {
    const answer = await get(`${router.proxyUrl}/api/hello`)
    versions[answer.json.version] = (versions[answer.json.version] ?? 0) + 1
  }
  t.same(versions, { 'v1.3': 70, 'v1.4': 30 }, 'the router splits 100 requests 70/30')

  // A change made with the CLI shows without a reload.
  const legend = page.locator('section[aria-labelledby=traffic-title] .legend').first()
  const cli = await runCli(['weights', 'set', 'api', 'v1.3=50', 'v1.4=50'], { SWITCHYARD_REGISTRY_URL: mesh.registryUrl, SWITCHYARD_TOKEN: CONSOLE_TOKENS.admin })
  const cliDone = Date.now()
  t.equal(cli.code, 0, cli.stderr)
  await legend.filter({ hasText: 'v1.4 50%' }).waitFor({ timeout: 10_000 })
  t.comment(`a CLI weight change showed in the console ${Date.now() - cliDone} ms after the CLI returned`)
  await waitFor(async () => ((await page.getByRole('spinbutton', { name: 'v1.4' }).inputValue()) === '50' ? true : undefined), 'the editor at 50%')
  t.pass('an untouched editor follows the registry')

  // The overview: beside each weight, the share the routers saw in the last 10 s.
  for (let i = 0; i < 20; i++) await get(`${router.proxyUrl}/api/hello`)
  await page.getByRole('link', { name: 'Services', exact: true }).first().click()
  const row = page.locator('tr', { has: page.getByRole('link', { name: 'api', exact: true }) })
  await row
    .getByText(/observed \d+(\.\d+)?%/)
    .first()
    .waitFor({ timeout: 15_000 })
  t.pass('the services page shows the observed share beside the weight')
  noProblems(t, watched)
})

void t.test('a conflict: the weights change while the editor is open; the write is refused and shown', async (t) => {
  const watched = await open('operator')
  const { page } = watched
  t.teardown(() => watched.context.close())
  await openService(page, 'api')
  const before = await weightsOf('api')
  const canary = page.getByRole('spinbutton', { name: 'v1.4' })
  await canary.fill('20')
  await canary.press('Tab')
  await waitFor(async () => ((await page.getByRole('spinbutton', { name: 'v1.3' }).inputValue()) === '80' ? true : undefined), 'v1.3 at 80')
  const other = await mesh.api('PUT', '/v1/services/api/weights', { weights: { 'v1.3': 40, 'v1.4': 60 } })
  t.equal(other.status, 200, `weights were ${JSON.stringify(before)}`)
  await page.getByText('The weights changed since you started editing (by admin').waitFor()
  t.equal(await canary.inputValue(), '20', 'the draft is kept')
  await page.getByRole('button', { name: 'Apply…' }).click()
  await page.getByRole('dialog').getByRole('button', { name: 'Apply' }).click()
  const alert = page.getByRole('alert').filter({ hasText: 'Conflict' })
  await alert.waitFor()
  t.match(await alert.textContent(), /changed by admin .*now v1\.3=40 v1\.4=60\. Your split was not applied/)
  t.same(await weightsOf('api'), { 'v1.3': 40, 'v1.4': 60 }, 'the other change stands')
  await page.screenshot({ path: join(shots, 'conflict.png') })
  await page.getByRole('button', { name: 'Start over from the current weights' }).click()
  await waitFor(async () => ((await canary.inputValue()) === '60' ? true : undefined), 'the editor back at the current 60%')
  noProblems(t, watched)
})

void t.test('quick actions: the canary to 0% (rollback) and to 100%, each confirmed', async (t) => {
  const watched = await open('operator')
  const { page } = watched
  t.teardown(() => watched.context.close())
  await openService(page, 'api')
  await page.getByRole('button', { name: 'Send v1.4 100%' }).click()
  await page.getByRole('dialog', { name: 'Send v1.4 all traffic (100%)?' }).getByRole('button', { name: 'Apply' }).click()
  await waitFor(async () => ((await weightsOf('api'))['v1.4'] === 100 ? true : undefined), 'v1.4 at 100%')
  await page.getByRole('button', { name: 'Roll back v1.4 (0%)' }).click()
  await page.getByRole('dialog', { name: 'Roll back: v1.4 to 0%?' }).getByRole('button', { name: 'Apply' }).click()
  await waitFor(async () => ((await weightsOf('api'))['v1.3'] === 100 ? true : undefined), 'v1.3 back at 100%')
  await page.getByText(/Applied at revision \d+: v1.3=100 v1.4=0/).waitFor()
  noProblems(t, watched)
})

void t.test('escaping: markup in instance metadata is shown as text and never runs', async (t) => {
  const watched = await open('reader')
  const { page } = watched
  t.teardown(() => watched.context.close())
  await openService(page, 'markup')
  await page.getByText(`note=${MARKUP}`).waitFor()
  t.equal(await page.evaluate(() => (globalThis as any).__pwned), undefined, 'no script ran')
  t.equal(await page.locator('main script, main img').count(), 0, 'no element was made from the markup')
  noProblems(t, watched)
})

void t.test('history and routers', async (t) => {
  const watched = await open('reader')
  const { page } = watched
  t.teardown(() => watched.context.close())
  await page.getByRole('link', { name: 'History' }).click()
  await page.getByLabel('Service').selectOption('api')
  await page.getByRole('heading', { name: 'History of api' }).waitFor()
  await page.getByLabel('Actor, version or revision').fill('operator')
  const rows = page.locator('table tbody tr')
  await waitFor(async () => ((await rows.count()) === 3 ? true : undefined), 'three changes by the operator')
  t.match(await rows.last().textContent(), /operatorv1.3=100 v1.4=0v1.3=70 v1.4=30/)
  await page.getByLabel('Made by').selectOption('rollout')
  await waitFor(async () => ((await rows.count()) === 0 ? true : undefined), 'no change by a rollout')
  await page.getByLabel('Made by').selectOption('all')
  await page.getByLabel('Actor, version or revision').fill('')
  await page.screenshot({ path: join(shots, 'history.png') })
  await page.getByRole('link', { name: 'Routers' }).click()
  const row = page.locator('table tbody tr').filter({ hasText: 'router-a' })
  await row.waitFor()
  t.match(await row.textContent(), /HTTP router/)
  await page.screenshot({ path: join(shots, 'routers.png') })
  noProblems(t, watched)
})

void t.test('accessibility: axe finds no serious or critical violation on any page, wide or narrow', async (t) => {
  for (const viewport of [
    { width: 1280, height: 800 },
    { width: 390, height: 844 }
  ]) {
    const watched = await openPage(browser, viewport)
    const { page } = watched
    t.teardown(() => watched.context.close())
    await page.goto(`${mesh.registryUrl}/console/`)
    await page.getByLabel('Token').waitFor()
    t.same(await accessibilityViolations(page), [], `sign-in at ${viewport.width}px`)
    await signIn(page, mesh.registryUrl, CONSOLE_TOKENS.operator)
    const pages: [string, string][] = [
      ['#/services', 'Services'],
      ['#/services/api', 'api'],
      ['#/services/orders-worker', 'orders-worker'],
      ['#/rollouts', 'Rollouts'],
      ['#/history/api', 'History of api'],
      ['#/routers', 'Routers']
    ]
    for (const [hash, heading] of pages) {
      await page.goto(`${mesh.registryUrl}/console/${hash}`)
      await page.getByRole('heading', { level: 1, name: heading, exact: true }).waitFor()
      await page.locator('main').getByText('Loading…').waitFor({ state: 'detached' })
      t.same(await accessibilityViolations(page), [], `${hash} at ${viewport.width}px`)
    }
    await page.goto(`${mesh.registryUrl}/console/#/services/api`)
    await page.getByRole('heading', { name: 'Instances' }).waitFor()
    await page.locator('.quick-actions button:enabled').first().click()
    await page.getByRole('dialog').waitFor()
    t.same(await accessibilityViolations(page), [], `the confirmation dialog at ${viewport.width}px`)
    await page.keyboard.press('Escape')
    if (viewport.width < 600) await page.screenshot({ path: join(shots, 'narrow.png'), fullPage: true })
    else {
      await page.goto(`${mesh.registryUrl}/console/#/services`)
      await page.getByRole('link', { name: 'orders-worker', exact: true }).waitFor()
      await page.screenshot({ path: join(shots, 'services.png') })
    }
    noProblems(t, watched)
  }
})
