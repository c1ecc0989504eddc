import { mkdir, mkdtemp, readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { projectRoot } from './processes.js'

/** Debian's chromium package: the tests never download a browser (.ci/run installs the package when missing). */
export const CHROMIUM = '/usr/bin/chromium'

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
]

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true })
}

/**
 * A page that records what must never happen: a Content-Security-Policy violation, an
 * uncaught error, a request leaving 127.0.0.1, a token in a URL.
 */
export interface WatchedPage {
  page: Page
  context: BrowserContext
  problems: string[]
  /** every URL the page requested */
  urls: string[]
}

export async function openPage(browser: Browser, options: { width?: number; height?: number } = {}): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: { width: options.width ?? 1280, height: options.height ?? 800 } })
  const page = await context.newPage()
  const problems: string[] = []
  const urls: string[] = []
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) problems.push(`CSP: ${message.text()}`)
  })
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
  page.on('request', (request) => {
    urls.push(request.url())
    const url = new URL(request.url())
    if (url.protocol.startsWith('http') && url.hostname !== '127.0.0.1') problems.push(`request off this machine: ${request.url()}`)
  })
  return { page, context, problems, urls }
}

/** Signs in through the form, as a person would, and waits for the signed-in shell. */
export async function signIn(page: Page, registryUrl: string, token: string): Promise<void> {
  await page.goto(`${registryUrl}/console/`)
  await page.getByLabel('Token').fill(token)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('button', { name: 'Sign out' }).waitFor()
}

const require = createRequire(import.meta.url)
let axeSource: string | undefined

/**
 * axe-core's serious and critical violations on the page as it is now. The script is
 * evaluated through the DevTools protocol: the console's CSP (rightly) refuses an injected
 * script tag.
 */
export async function accessibilityViolations(page: Page): Promise<{ id: string; impact: string; help: string; targets: string[] }[]> {
  axeSource ??= await readFile(require.resolve('axe-core/axe.min.js'), 'utf8')
  await page.evaluate(axeSource)
  // (Browser globals through globalThis: the tests are type-checked without the DOM library.)
  return page.evaluate(async () => {
    const page = globalThis as any
    const result: { violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] } = await page.axe.run(page.document, { resultTypes: ['violations'] })
    return result.violations
      .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
      .map((violation) => ({ id: violation.id, impact: violation.impact, help: violation.help, targets: violation.nodes.slice(0, 5).map((node) => node.target.join(' ')) }))
  })
}

/**
 * Where screenshots go: a temporary directory, or with SWITCHYARD_CONSOLE_SCREENSHOTS set
 * (npm run docs:console), that directory (docs/console for the README).
 */
export async function screenshotDir(): Promise<string> {
  const wanted = process.env.SWITCHYARD_CONSOLE_SCREENSHOTS
  if (!wanted) return mkdtemp(join(tmpdir(), 'switchyard-console-shots-'))
  const dir = resolve(projectRoot, wanted)
  await mkdir(dir, { recursive: true })
  return dir
}
