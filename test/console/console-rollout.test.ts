/**
 * A rollout driven from the console and followed live, against real processes: the
 * registry, an HTTP router, two sample api versions under load, and the message plane
 * (in-memory broker, message router, orders-worker v1 and v2) with orders flowing.
 */
import { join } from 'node:path'
import t from 'tap'
import { LoadGenerator } from '../../cli/load-generator.js'
import { accessibilityViolations, launchBrowser, openPage, screenshotDir, signIn } from '../helpers/browser.js'
import { CONSOLE_TOKENS, startConsoleMesh } from '../helpers/console-mesh.js'
import { waitFor } from '../helpers/registry-harness.js'

// Chromium and several processes on a shared 2-core machine: more than tap's default per file.
t.setTimeout(600_000)

const mesh = await startConsoleMesh()
t.teardown(() => mesh.close())
await mesh.startApi('v1.3')
await mesh.startApi('v1.4')
const router = await mesh.startRouter('router-a')
const plane = await mesh.startMessagePlane({ rejectRates: 'v2=0.05' })
await mesh.api('PUT', '/v1/services/orders-worker/weights', { weights: { v1: 80, v2: 20 } })
const loads = [
  new LoadGenerator({ url: `${router.proxyUrl}/api/hello`, rps: 150, method: 'GET', headers: {}, maxInFlight: 64 }),
  new LoadGenerator({
    url: `${plane.adminUrl}/v1/topics/orders/messages`,
    rps: 40,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ item: 'book', quantity: 1 }),
    maxInFlight: 32
  })
]
for (const load of loads) void load.run()
t.teardown(() => Promise.all(loads.map((load) => load.stop())))
const browser = await launchBrowser()
t.teardown(() => browser.close())
const shots = await screenshotDir()

void t.test('a rollout started from the console, its steps and verdicts appearing live, paused, resumed, promoted', async (t) => {
  const watched = await openPage(browser)
  const { page } = watched
  t.teardown(() => watched.context.close())
  await signIn(page, mesh.registryUrl, CONSOLE_TOKENS.operator)
  await page.goto(`${mesh.registryUrl}/console/#/services/api`)
  await page.getByRole('heading', { name: 'Start a rollout' }).waitFor()
  // Traffic shows before anything starts: the observed share is v1.3's 100%.
  await page.getByText(/Observed, HTTP \(last 10 s, [1-9]\d* requests\)/).waitFor({ timeout: 20_000 })

  await page.getByLabel('Canary', { exact: true }).selectOption('v1.4')
  await page.getByLabel('Baseline', { exact: true }).selectOption('v1.3')
  await page.getByLabel('Steps (%)').fill('10, 50, 100')
  await page.getByLabel('Interval (s)').fill('1')
  // Wide latency limits, as in test/rollout/: on a loaded machine two identical versions' p99s differ by 1.5x often enough.
  await page.getByLabel('Max p99 (ms)').fill('10000')
  await page.getByLabel('Max p99 / baseline p99').fill('20')
  await page.getByLabel('Min requests per step').fill('20')
  await page.getByRole('button', { name: 'Start rollout' }).click()

  // Record every step the page shows, without reloading it.
  const step = page.getByTestId('rollout-step')
  await step.waitFor()
  const seen = new Set<string>()
  const paused = waitFor(
    async () => {
      const text = (await step.textContent()) ?? ''
      const match = /Step (\d) of 3/.exec(text)
      if (match) seen.add(match[1] as string)
      return seen.has('2') ? true : undefined
    },
    'step 2 on the page',
    60_000
  )
  await paused
  await page.getByRole('button', { name: 'Pause' }).click()
  await page.locator('.rollout .badge.phase-paused').waitFor()
  t.equal((await mesh.api('GET', '/v1/services/api/rollout')).json.phase, 'paused')
  await page.screenshot({ path: join(shots, 'rollout.png'), fullPage: true })
  t.same(await accessibilityViolations(page), [], 'axe: the service page with a rollout and its verdicts')
  await page.getByRole('button', { name: 'Resume' }).click()
  await page.locator('.rollout .badge.phase-progressing').waitFor()
  await waitFor(
    async () => {
      const text = (await step.textContent()) ?? ''
      const match = /Step (\d) of 3/.exec(text)
      if (match) seen.add(match[1] as string)
      // any end shows on the page; the phase is checked below, with the registry's reason
      return (await page.locator('.rollout .badge.phase-promoted, .rollout .badge.phase-rolled-back, .rollout .badge.phase-aborted').count()) > 0 ? true : undefined
    },
    'the rollout to end on the page',
    120_000
  )
  const ended = (await mesh.api('GET', '/v1/services/api/rollout')).json
  t.equal(ended.phase, 'promoted', ended.reason)
  t.same([...seen].sort(), ['1', '2', '3'], 'every step showed as it came')
  const verdicts = page.locator('.rollout table tbody tr')
  t.ok((await verdicts.count()) >= 3, 'a verdict row per judged step')
  t.match(await verdicts.last().textContent(), /passed/)
  t.match(await verdicts.last().textContent(), /all checks passed/)
  await page.locator('section[aria-labelledby=traffic-title] .legend').first().filter({ hasText: 'v1.4 100%' }).waitFor()
  t.same(watched.problems, [])
  await page.getByRole('link', { name: 'Rollouts' }).click()
  const row = page.locator('table tbody tr').filter({ hasText: 'api' })
  await row.waitFor()
  t.match(await row.textContent(), /promoted/)
})

void t.test('queue consumers beside HTTP: messages routed and rejected per version, observed against configured', async (t) => {
  const watched = await openPage(browser)
  const { page } = watched
  t.teardown(() => watched.context.close())
  await signIn(page, mesh.registryUrl, CONSOLE_TOKENS.reader)
  await page.goto(`${mesh.registryUrl}/console/#/services/orders-worker`)
  await page.getByText(/Observed, queue \(last 10 s, [1-9]\d* messages\)/).waitFor({ timeout: 20_000 })
  const v2 = page.locator('table.versions tbody tr').filter({ hasText: 'v2' })
  await waitFor(async () => (/\d+(\.\d+)?%/.test((await v2.locator('td').nth(7).textContent()) ?? '') ? true : undefined), 'an observed queue share for v2')
  await page.getByRole('heading', { name: 'Messages routed per second' }).or(page.getByText('Messages routed per second')).first().waitFor({ timeout: 20_000 })
  await page.screenshot({ path: join(shots, 'queue.png'), fullPage: true })
  t.same(watched.problems, [])
})

void t.test('a running rollout aborted from the console, after a confirmation: the baseline gets everything back', async (t) => {
  const started = await mesh.api('POST', '/v1/services/orders-worker/rollout', { canary: 'v2', baseline: 'v1', steps: [30, 100], intervalSeconds: 600 })
  t.equal(started.status, 201, JSON.stringify(started.json))
  const watched = await openPage(browser)
  const { page } = watched
  t.teardown(() => watched.context.close())
  await signIn(page, mesh.registryUrl, CONSOLE_TOKENS.operator)
  await page.goto(`${mesh.registryUrl}/console/#/services/orders-worker`)
  await page.getByTestId('rollout-step').filter({ hasText: 'Step 1 of 2: v2 at 30%' }).waitFor()
  await page.getByRole('button', { name: 'Abort…' }).click()
  const dialog = page.getByRole('dialog', { name: 'Abort the rollout of orders-worker?' })
  await dialog.getByRole('button', { name: 'Abort' }).click()
  await page.locator('.rollout .badge.phase-aborted').waitFor()
  t.same((await mesh.api('GET', '/v1/services/orders-worker/weights')).json.weights, { v1: 100, v2: 0 })
  t.equal(await page.getByRole('button', { name: 'Abort…' }).count(), 0, 'an ended rollout offers no command')
  await page.getByRole('heading', { name: 'Start a rollout' }).waitFor()
  t.same(watched.problems, [])
})
