import { request } from 'undici'
import { ConfigError } from '../../core/config.js'
import { SwitchyardError } from '../../core/errors.js'
import { queryData, type QueryData } from './prometheus-answer.js'

/** Where to send queries, split from any credentials in the configured URL. */
export interface PrometheusEndpoint {
  /** the query API, without credentials */
  queryUrl: string
  /** what messages may name: the URL without credentials */
  safeUrl: string
  /** basic auth from the URL's user:password, when it has one */
  authorization: string | undefined
}

/**
 * Splits `http://user:password@host:9090/prefix` into a credential-free URL and a basic
 * auth header, so the password never reaches a request line, a log or an error message.
 */
export function prometheusEndpoint(url: string): PrometheusEndpoint {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new ConfigError(['--prometheus-url is not a URL'])
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new ConfigError([`--prometheus-url must be http or https, not ${parsed.protocol}`])
  if (parsed.search !== '' || parsed.hash !== '')
    throw new ConfigError(['--prometheus-url takes no query string or fragment: give the base URL of Prometheus (with a path prefix if it has one)'])
  const authorization =
    parsed.username === '' && parsed.password === '' ? undefined : `Basic ${Buffer.from(`${decoded(parsed.username)}:${decoded(parsed.password)}`).toString('base64')}`
  parsed.username = ''
  parsed.password = ''
  const safeUrl = parsed.href.replace(/\/+$/, '')
  return { queryUrl: `${safeUrl}/api/v1/query`, safeUrl, authorization }
}

/** A URL's user or password as typed: percent escapes undone where they are valid. */
function decoded(part: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    return part
  }
}

export interface PrometheusClientOptions {
  url: string
  /** per query, for the answer's headers and body each (default 5 s) */
  timeoutMs?: number
}

/** Answers bigger than this are not signal answers (a version query over a runaway label). */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024

/** Instant queries against Prometheus' HTTP API; every failure is SIGNALS_UNAVAILABLE. */
export class PrometheusClient {
  // Private so that neither a logger nor util.inspect can print the credentials.
  readonly #endpoint: PrometheusEndpoint
  readonly #timeoutMs: number

  constructor(options: PrometheusClientOptions) {
    this.#endpoint = prometheusEndpoint(options.url)
    this.#timeoutMs = options.timeoutMs ?? 5_000
  }

  get url(): string {
    return this.#endpoint.safeUrl
  }

  /** Evaluates `promql` at `atMs` (ms since the epoch). `what` names the query in errors. */
  async query(promql: string, atMs: number, what: string): Promise<QueryData> {
    const endpoint = this.#endpoint
    // POST keeps long queries out of request lines and proxies' access logs.
    const form = new URLSearchParams({ query: promql, time: (atMs / 1000).toFixed(3) })
    let statusCode: number
    let text: string
    try {
      const response = await request(endpoint.queryUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          'user-agent': 'switchyard-registry',
          ...(endpoint.authorization ? { authorization: endpoint.authorization } : {})
        },
        body: form.toString(),
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs
      })
      statusCode = response.statusCode
      text = await readBounded(response.body)
    } catch (error) {
      if (error instanceof SwitchyardError) throw error
      const reason = (error as { code?: string }).code ?? (error as Error).message
      throw new SwitchyardError('SIGNALS_UNAVAILABLE', `Prometheus at ${endpoint.safeUrl} is unreachable (${what} query): ${reason}`, { cause: error })
    }
    let answer: unknown
    try {
      answer = JSON.parse(text)
    } catch {
      throw new SwitchyardError('SIGNALS_UNAVAILABLE', `Prometheus at ${endpoint.safeUrl} answered the ${what} query with ${statusCode} and no JSON`)
    }
    // Prometheus answers a bad query 400 or 422 with {status: "error"}: queryData names it.
    const data = queryData(answer, what)
    if (statusCode >= 300) throw new SwitchyardError('SIGNALS_UNAVAILABLE', `Prometheus at ${endpoint.safeUrl} answered the ${what} query with ${statusCode}`)
    return data
  }
}

async function readBounded(body: AsyncIterable<Buffer> & { destroy(): unknown }): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += chunk.length
    if (size > MAX_ANSWER_BYTES) {
      body.destroy()
      throw new SwitchyardError('SIGNALS_UNAVAILABLE', `Prometheus answered a query with more than ${MAX_ANSWER_BYTES} bytes`)
    }
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}
