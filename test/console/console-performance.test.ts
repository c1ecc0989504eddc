/**
 * How the console copes with a big registry: first useful render with 200 services and
 * 5,000 instances (a registry process as `npm start` runs it), and responsiveness while
 * the registry changes 50 times a second. Figures are measured in the browser with the
 * Performance API and reported (t.comment, and SWITCHYARD_CONSOLE_PERF_OUT as JSON);
 * nothing here asserts a timing.
 */
import { writeFile } from 'node:fs/promises'
import t from 'tap'
import { launchBrowser, openPage, signIn } from '../helpers/browser.js'
import { CONSOLE_TOKENS, startConsoleMesh } from '../helpers/console-mesh.js'
import { waitFor } from '../helpers/registry-harness.js'

// Chromium and several processes on a shared 2-core machine: more than tap's default per file.
t.setTimeout(600_000)

const SERVICES = 200
const INSTANCES_PER_SERVICE = 25

// A long lease: the 5,000 instances do not heartbeat, and the test outlives the default 30 s.
const mesh = await startConsoleMesh({ registryArgs: ['--lease-seconds', '3600'] })
t.teardown(() => mesh.close())

const names = Array.from({ length: SERVICES }, (_, i) => `service-${String(i).padStart(3, '0')}`)
const jobs: (() => Promise<unknown>)[] = []
for (const name of names) {
  for (let i = 0; i < INSTANCES_PER_SERVICE; i++) {
    const version = i < 20 ? 'v1' : 'v2'
    jobs.push(() =>
      mesh.api('POST', `/v1/services/${name}/instances`, {
        version,
        host: `10.${Math.floor(i / 250)}.${i % 250}.1`,
        port: 8080 + i,
        id: `${name}-${i}`,
        metadata: { zone: `z${i % 3}` }
      })
    )
  }
}
const populateStart = Date.now()
async function runAll(tasks: (() => Promise<unknown>)[], concurrency: number): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < tasks.length) await (tasks[next++] as () => Promise<unknown>)()
    })
  )
}
await runAll(jobs, 32)
await runAll(
  names.map((name) => () => mesh.api('PUT', `/v1/services/${name}/weights`, { weights: { v1: 90, v2: 10 } })),
  32
)
const populateMs = Date.now() - populateStart
const populated = (await mesh.api('GET', '/v1/services')).json

const browser = await launchBrowser()
t.teardown(() => browser.close())
const figures: Record<string, unknown> = { services: SERVICES, instances: SERVICES * INSTANCES_PER_SERVICE }

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number

void t.test('first useful render with 200 services and 5,000 instances', async (t) => {
  t.equal(populated.services.length, SERVICES)
  t.equal(
    populated.services.reduce((sum: number, service: { instances: unknown[] }) => sum + service.instances.length, 0),
    SERVICES * INSTANCES_PER_SERVICE
  )
  t.comment(`registry populated in ${populateMs} ms (revision ${populated.revision})`)
  const watched = await openPage(browser)
  const { page } = watched
  t.teardown(() => watched.context.close())
  await signIn(page, mesh.registryUrl, CONSOLE_TOKENS.reader)
  const runs: { render: number; complete: number; servicesMs: number; servicesBytes: number; scriptEnd: number; servicesEnd: number; parsed: number; built: number }[] = []
  for (let i = 0; i < 5; i++) {
    await page.reload()
    await page.waitForFunction(() => performance.getEntriesByName('console:services-complete').length > 0, undefined, { timeout: 30_000 })
    runs.push(
      await page.evaluate(() => {
        const mark = performance.getEntriesByName('console:services-rendered')[0] as any
        const resources = performance.getEntriesByType('resource') as any[]
        const services = resources.find((entry) => entry.name.endsWith('/v1/services'))
        const script = resources.find((entry) => entry.name.endsWith('.js'))
        return {
          render: mark.startTime,
          complete: (performance.getEntriesByName('console:services-complete')[0] as any).startTime,
          servicesMs: services.responseEnd - services.startTime,
          servicesBytes: services.encodedBodySize,
          scriptEnd: script.responseEnd,
          servicesEnd: services.responseEnd,
          parsed: (performance.getEntriesByName('console:services-parsed')[0] as any).startTime,
          built: (performance.getEntriesByName('console:view-built')[0] as any).startTime
        }
      })
    )
  }
  t.equal(await page.locator('table.services tbody tr').count(), SERVICES, 'every service has its row')
  const render = median(runs.map((run) => run.render))
  figures.firstRenderMs = Math.round(render)
  figures.firstRenderRunsMs = runs.map((run) => Math.round(run.render))
  figures.allRowsMs = Math.round(median(runs.map((run) => run.complete)))
  figures.servicesFetchMs = Math.round(median(runs.map((run) => run.servicesMs)))
  figures.servicesBytes = runs[0]?.servicesBytes
  figures.scriptLoadedAtMs = Math.round(median(runs.map((run) => run.scriptEnd)))
  figures.servicesAnsweredAtMs = Math.round(median(runs.map((run) => run.servicesEnd)))
  figures.servicesParsedAtMs = Math.round(median(runs.map((run) => run.parsed)))
  figures.viewBuiltAtMs = Math.round(median(runs.map((run) => run.built)))
  t.comment(
    `first useful render: median ${Math.round(render)} ms of ${runs.map((run) => Math.round(run.render)).join(', ')} ms (script loaded at ${figures.scriptLoadedAtMs} ms, GET /v1/services answered at ${figures.servicesAnsweredAtMs} ms after ${figures.servicesFetchMs} ms, parsed at ${figures.servicesParsedAtMs} ms, view built at ${figures.viewBuiltAtMs} ms; all 200 rows at ${figures.allRowsMs} ms; ${figures.servicesBytes} bytes)`
  )
  t.same(watched.problems, [])
})

void t.test('responsive while the registry changes 50 times a second', async (t) => {
  const watched = await openPage(browser)
  const { page } = watched
  t.teardown(() => watched.context.close())
  await signIn(page, mesh.registryUrl, CONSOLE_TOKENS.reader)
  await page
    .locator('table.services tbody tr')
    .nth(SERVICES - 1)
    .waitFor()
  // In the page: long tasks, frame gaps and the time from each keystroke to its paint.
  // (Browser globals through globalThis: the tests are type-checked without the DOM library.)
  await page.evaluate(() => {
    const page = globalThis as any
    const probe = { longTasks: [] as number[], frames: [] as number[], events: [] as number[] }
    page.probe = probe
    const observe = (type: string, into: number[], options: object = {}) =>
      new page.PerformanceObserver((list: any) => list.getEntries().forEach((entry: any) => into.push(entry.duration))).observe({ type, buffered: false, ...options })
    observe('longtask', probe.longTasks)
    observe('event', probe.events, { durationThreshold: 16 })
    let last = performance.now()
    const frame = (now: number) => {
      probe.frames.push(now - last)
      last = now
      page.requestAnimationFrame(frame)
    }
    page.requestAnimationFrame(frame)
  })
  const seconds = 10
  const total = 50 * seconds
  let sent = 0
  let failed = 0
  const started = Date.now()
  const driver = (async () => {
    const pending: Promise<unknown>[] = []
    while (sent < total) {
      const due = started + (sent * 1000) / 50
      const wait = due - Date.now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      const name = names[sent % SERVICES] as string
      const change =
        sent % 2 === 0
          ? mesh.api('PUT', `/v1/services/${name}/weights`, { weights: { v1: 90 - (sent % 50), v2: 10 + (sent % 50) } })
          : mesh.api('PUT', `/v1/services/${name}/instances/${name}-${sent % INSTANCES_PER_SERVICE}/status`, { status: sent % 4 === 1 ? 'draining' : 'up' })
      pending.push(change.then((answer) => answer.status === 200 || failed++))
      sent++
    }
    await Promise.all(pending)
  })()
  // Meanwhile a person types in the filter, then clears it.
  const filter = page.getByLabel('Filter')
  for (let round = 0; round < 4; round++) {
    await filter.pressSequentially('service-1', { delay: 120 })
    await filter.fill('')
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  await driver
  const sentAt = Date.now()
  const registryRevision = (await mesh.api('GET', '/v1/services/service-000/weights')).json.revision as number
  await waitFor(
    async () =>
      (await page.evaluate(() => (globalThis as any).document.querySelector('main .page-head p')?.textContent ?? '')).includes(`revision ${registryRevision}`) ? true : undefined,
    'the page at the registry revision',
    10_000
  )
  const catchUpMs = Date.now() - sentAt
  const probe: { longTasks: number[]; frames: number[]; events: number[] } = await page.evaluate(() => (globalThis as any).probe)
  const frames = [...probe.frames].sort((a, b) => a - b)
  const events = [...probe.events].sort((a, b) => a - b)
  const rate = Math.round((total / (sentAt - started)) * 1000 * 10) / 10
  figures.changes = { sent: total, failed, perSecond: rate }
  figures.longTasks = {
    count: probe.longTasks.length,
    totalMs: Math.round(probe.longTasks.reduce((sum, duration) => sum + duration, 0)),
    maxMs: Math.round(Math.max(0, ...probe.longTasks))
  }
  figures.frames = {
    count: frames.length,
    p50Ms: Math.round(median(frames)),
    p99Ms: Math.round(frames[Math.floor(frames.length * 0.99)] ?? 0),
    maxMs: Math.round(frames.at(-1) ?? 0)
  }
  figures.slowInputEvents = { count: events.length, maxMs: Math.round(events.at(-1) ?? 0) }
  figures.catchUpMs = catchUpMs
  t.equal(failed, 0, 'every change was accepted')
  t.comment(
    `${total} changes at ${rate}/s: long tasks ${JSON.stringify(figures.longTasks)}, frames ${JSON.stringify(figures.frames)}, input events over 16 ms ${JSON.stringify(figures.slowInputEvents)}, page at the registry's revision ${catchUpMs} ms after the last change`
  )
  t.same(watched.problems, [])
})

t.teardown(async () => {
  t.comment(JSON.stringify(figures))
  if (process.env.SWITCHYARD_CONSOLE_PERF_OUT) await writeFile(process.env.SWITCHYARD_CONSOLE_PERF_OUT, JSON.stringify(figures, null, 2) + '\n')
})
