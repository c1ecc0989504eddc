import { request } from 'undici'

/** Small HTTP helpers for the benchmark's control calls (never for load). */
export interface JsonAnswer {
  status: number
  json: unknown
  text: string
}

export async function callJson(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, options: { token?: string; body?: unknown; timeoutMs?: number } = {}): Promise<JsonAnswer> {
  const headers: Record<string, string> = {}
  if (options.token) headers.authorization = `Bearer ${options.token}`
  let body: string | null = null
  if (options.body !== undefined) {
    body = JSON.stringify(options.body)
    headers['content-type'] = 'application/json'
  }
  const timeoutMs = options.timeoutMs ?? 10_000
  const response = await request(url, { method, headers, body, headersTimeout: timeoutMs, bodyTimeout: timeoutMs })
  const text = await response.body.text()
  let json: unknown
  try {
    json = text === '' ? undefined : JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: response.statusCode, json, text }
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
export async function waitForHttp(url: string, what: string, child?: { exited: Promise<number>; output(): string }, timeoutMs = 20_000): Promise<void> {
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
