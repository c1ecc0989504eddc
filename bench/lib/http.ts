import { request, type Dispatcher } from 'undici'

/** Small HTTP helpers for the benchmark's control calls (never for load), and the tests' (test/helpers/http.ts). */
export interface JsonAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  json: unknown
  text: string
}

export interface CallOptions {
  /** sent as `Authorization: Bearer <token>` */
  token?: string
  /** sent as JSON (content-type application/json unless `headers` names one) */
  body?: unknown
  /** sent as it is, instead of `body` */
  rawBody?: string
  headers?: Record<string, string>
  timeoutMs?: number
}

export async function callJson(method: Dispatcher.HttpMethod, url: string, options: CallOptions = {}): Promise<JsonAnswer> {
  const headers: Record<string, string> = { ...options.headers }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  let body: string | null = null
  if (options.rawBody !== undefined) body = options.rawBody
  else if (options.body !== undefined) {
    body = JSON.stringify(options.body)
    headers['content-type'] ??= 'application/json'
  }
  const timeoutMs = options.timeoutMs ?? 10_000
  const response = await request(url, { method, headers, body, headersTimeout: timeoutMs, bodyTimeout: timeoutMs })
  return readAnswer(response)
}

/** Status, headers, text and (when the text is JSON) the parsed body of an answer. */
export async function readAnswer(response: Dispatcher.ResponseData): Promise<JsonAnswer> {
  const text = await response.body.text()
  let json: unknown
  try {
    json = text === '' ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: response.statusCode, headers: response.headers, json, text }
}

/** Status of a GET, or 0 when nothing answers (yet). */
export async function statusOf(url: string, timeoutMs = 2_000): Promise<number> {
  try {
    const response = await request(url, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs })
    await response.body.dump()
    return response.statusCode
  } catch {
    return 0
  }
}

/** Polls `check` every `intervalMs` until it returns a value, or throws after `timeoutMs`. */
export async function waitUntil<T>(check: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 20_000, intervalMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** Waits until GET `url` answers 200; `child` dying first is reported with its output. */
// 60 s: on a saturated 2-core machine (load average 20) a Node process has taken 13 s to listen.
export async function waitForHttp(url: string, what: string, child?: { exited: Promise<number>; output(): string }, timeoutMs = 60_000): Promise<void> {
  let exitCode: number | undefined
  void child?.exited.then((code) => (exitCode = code))
  await waitUntil(
    async () => {
      if (exitCode !== undefined) throw new Error(`${what} exited (${exitCode}) before answering ${url}:\n${child?.output().slice(-2000) ?? ''}`)
      return (await statusOf(url)) === 200 ? true : undefined
    },
    `${what} at ${url}`,
    timeoutMs
  )
}
