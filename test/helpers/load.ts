import { Agent, request } from 'undici'

export interface LoadResult {
  ok: number
  failed: number
  /** status or error of each failure, for the assertion message */
  failures: string[]
  versions: Record<string, number>
}

export interface Load {
  /** requests answered so far */
  readonly completed: number
  stop(): Promise<LoadResult>
}

/**
 * A bounded load loop on loopback: `concurrency` clients send requests back to back
 * until stopped, `maxRequests` are sent, or `maxMs` passes, whichever comes first.
 */
export function startLoad(options: { url: string; concurrency: number; method?: 'GET' | 'POST'; headers?: Record<string, string>; maxRequests?: number; maxMs?: number }): Load {
  const agent = new Agent({ connections: options.concurrency, keepAliveTimeout: 2_000 })
  const result: LoadResult = { ok: 0, failed: 0, failures: [], versions: {} }
  const maxRequests = options.maxRequests ?? 200_000
  const deadline = Date.now() + (options.maxMs ?? 120_000)
  let sent = 0
  let stopped = false
  const client = async () => {
    while (!stopped && sent < maxRequests && Date.now() < deadline) {
      sent++
      try {
        const response = await request(options.url, { method: options.method ?? 'GET', headers: options.headers ?? {}, dispatcher: agent })
        const text = await response.body.text()
        if (response.statusCode === 200) {
          result.ok++
          const version = response.headers['x-switchyard-version']
          if (typeof version === 'string') result.versions[version] = (result.versions[version] ?? 0) + 1
        } else {
          result.failed++
          if (result.failures.length < 20) result.failures.push(`${response.statusCode} ${text.slice(0, 200)}`)
        }
      } catch (error) {
        result.failed++
        if (result.failures.length < 20) result.failures.push(`error ${(error as Error).message}`)
      }
    }
  }
  const clients = Array.from({ length: options.concurrency }, () => client())
  return {
    get completed() {
      return result.ok + result.failed
    },
    async stop() {
      stopped = true
      await Promise.all(clients)
      await agent.close()
      return result
    }
  }
}
