import type { IncomingMessage, ServerResponse } from 'node:http'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import t, { type Test } from 'tap'
import { ConfigError } from '../../core/config.js'
import { SwitchyardError } from '../../core/errors.js'
import { PrometheusClient, prometheusEndpoint } from '../../registry/signals/prometheus-client.js'
import { loadPrometheusQueries, PrometheusSignals } from '../../registry/signals/prometheus-source.js'
import { DEFAULT_TEMPLATES } from '../../registry/signals/promql-templates.js'
import { startUpstream } from '../helpers/router-harness.js'

void t.test('prometheusEndpoint: credentials become a basic auth header, never part of the URL', (t) => {
  const cases: { url: string; queryUrl: string; safeUrl: string; authorization: string | undefined }[] = [
    { url: 'http://127.0.0.1:9090', queryUrl: 'http://127.0.0.1:9090/api/v1/query', safeUrl: 'http://127.0.0.1:9090', authorization: undefined },
    { url: 'http://127.0.0.1:9090/', queryUrl: 'http://127.0.0.1:9090/api/v1/query', safeUrl: 'http://127.0.0.1:9090', authorization: undefined },
    { url: 'https://prom.example/prometheus/', queryUrl: 'https://prom.example/prometheus/api/v1/query', safeUrl: 'https://prom.example/prometheus', authorization: undefined },
    {
      url: 'http://user:secret@prom:9090',
      queryUrl: 'http://prom:9090/api/v1/query',
      safeUrl: 'http://prom:9090',
      authorization: `Basic ${Buffer.from('user:secret').toString('base64')}`
    },
    {
      url: 'http://us%3Aer:p%40ss%2Fw@prom:9090',
      queryUrl: 'http://prom:9090/api/v1/query',
      safeUrl: 'http://prom:9090',
      authorization: `Basic ${Buffer.from('us:er:p@ss/w').toString('base64')}`
    },
    { url: 'http://user@prom:9090', queryUrl: 'http://prom:9090/api/v1/query', safeUrl: 'http://prom:9090', authorization: `Basic ${Buffer.from('user:').toString('base64')}` },
    { url: 'http://a%zz:b@prom', queryUrl: 'http://prom/api/v1/query', safeUrl: 'http://prom', authorization: `Basic ${Buffer.from('a%zz:b').toString('base64')}` }
  ]
  for (const { url, ...expected } of cases) t.same(prometheusEndpoint(url), expected, url)
  const refused: [string, string][] = [
    ['not a url', '--prometheus-url is not a URL'],
    ['ftp://prom:21', '--prometheus-url must be http or https, not ftp:'],
    ['http://prom:9090/?token=x', '--prometheus-url takes no query string or fragment: give the base URL of Prometheus (with a path prefix if it has one)'],
    ['http://prom:9090/#x', '--prometheus-url takes no query string or fragment: give the base URL of Prometheus (with a path prefix if it has one)']
  ]
  for (const [url, problem] of refused) t.throws(() => prometheusEndpoint(url), new ConfigError([problem]), url)
  t.notMatch(
    inspect(new PrometheusSignals({ url: 'http://user:secret@prom:9090', queries: { templates: DEFAULT_TEMPLATES, topics: {} } }), { depth: 10 }),
    /secret/,
    'not in util.inspect'
  )
  t.notMatch(JSON.stringify(new PrometheusClient({ url: 'http://user:secret@prom:9090' })), /secret/, 'not in JSON')
  t.end()
})

void t.test('loadPrometheusQueries: defaults without a file; an unreadable or invalid file is a ConfigError', async (t) => {
  t.same(await loadPrometheusQueries(undefined), { templates: DEFAULT_TEMPLATES, topics: {} })
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-queries-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const write = async (name: string, text: string) => {
    await writeFile(join(dir, name), text)
    return join(dir, name)
  }
  const good = await write('good.yaml', 'topics:\n  orders: orders-worker\nqueries:\n  versions: group by (version) (up{job="{{service}}"})\n')
  t.same(await loadPrometheusQueries(good), {
    templates: { ...DEFAULT_TEMPLATES, versions: 'group by (version) (up{job="{{service}}"})' },
    topics: { 'orders-worker': ['orders'] }
  })
  t.same(await loadPrometheusQueries(await write('empty.yaml', '')), { templates: DEFAULT_TEMPLATES, topics: {} })
  await t.rejects(loadPrometheusQueries(join(dir, 'missing.yaml')), { name: 'ConfigError', message: /cannot read --prometheus-queries .*missing\.yaml: ENOENT/ })
  await t.rejects(loadPrometheusQueries(await write('broken.yaml', 'queries: [\n')), { name: 'ConfigError', message: /cannot read --prometheus-queries .*broken\.yaml: / })
  const invalid = await write('invalid.yaml', 'queries:\n  requests: sum(x)\n')
  await t.rejects(loadPrometheusQueries(invalid), new ConfigError([`${invalid}/queries/requests: must contain {{service}}, {{version}}, {{window}}`]))
})

/** An HTTP server on 127.0.0.1 that answers as `handler` says: not Prometheus, a misbehaving peer. */
async function peer(t: Test, handler: (request: IncomingMessage, body: string, response: ServerResponse) => void): Promise<string> {
  const server = await startUpstream('peer', 'peer', (request, response) => {
    let body = ''
    request.on('data', (chunk: Buffer) => (body += chunk.toString()))
    request.on('end', () => handler(request, body, response))
  })
  t.teardown(() => server.close())
  return `http://127.0.0.1:${server.port}`
}

void t.test('PrometheusClient: what it sends', async (t) => {
  const seen: { method?: string; url?: string; headers?: IncomingMessage['headers']; body?: string } = {}
  const base = await peer(t, (request, body, response) => {
    Object.assign(seen, { method: request.method, url: request.url, headers: request.headers, body })
    response.setHeader('content-type', 'application/json')
    response.end(JSON.stringify({ status: 'success', data: { resultType: 'scalar', result: [1, '7'] } }))
  })
  const client = new PrometheusClient({ url: base.replace('http://', 'http://reader:pa%20ss@') + '/prefix' })
  t.equal(client.url, `${base}/prefix`)
  t.same(await client.query('sum(x{a="b"})', 1_796_014_686_223, 'requests'), { resultType: 'scalar', result: [1, '7'] })
  t.equal(seen.method, 'POST')
  t.equal(seen.url, '/prefix/api/v1/query')
  t.equal(seen.headers?.authorization, `Basic ${Buffer.from('reader:pa ss').toString('base64')}`)
  t.equal(seen.headers?.['content-type'], 'application/x-www-form-urlencoded')
  t.same(Object.fromEntries(new URLSearchParams(seen.body)), { query: 'sum(x{a="b"})', time: '1796014686.223' })
})

void t.test('PrometheusClient: every failure is SIGNALS_UNAVAILABLE naming the query and the URL without credentials', async (t) => {
  const answers: Record<string, (response: ServerResponse) => void> = {
    '/html': (response) => response.end('<html>a login page</html>'),
    '/refused': (response) => {
      response.statusCode = 422
      response.end(JSON.stringify({ status: 'error', errorType: 'execution', error: 'many-to-many matching not allowed' }))
    },
    '/proxy-error': (response) => {
      response.statusCode = 502
      response.end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [] } }))
    },
    '/huge': (response) => {
      const chunk = Buffer.alloc(1024 * 1024, 'x')
      for (let i = 0; i < 5; i++) response.write(chunk)
      response.end()
    },
    '/slow': () => {
      // never answers: the client's timeout must
    }
  }
  const base = await peer(t, (request, _body, response) => answers[(request.url ?? '').replace('/api/v1/query', '')]?.(response))
  const withCredentials = base.replace('http://', 'http://reader:hunter2@')
  const cases: [string, string][] = [
    ['/html', `Prometheus at ${base}/html answered the errors query with 200 and no JSON`],
    ['/refused', 'Prometheus refused the errors query: execution: many-to-many matching not allowed'],
    ['/proxy-error', `Prometheus at ${base}/proxy-error answered the errors query with 502`],
    ['/huge', 'Prometheus answered a query with more than 4194304 bytes'],
    ['/slow', `Prometheus at ${base}/slow is unreachable (errors query): UND_ERR_HEADERS_TIMEOUT`]
  ]
  for (const [path, message] of cases) {
    const client = new PrometheusClient({ url: `${withCredentials}${path}`, timeoutMs: 300 })
    const error = await client.query('sum(x)', Date.now(), 'errors').then(
      () => undefined,
      (error: unknown) => error
    )
    t.type(error, SwitchyardError, path)
    t.match(error, { code: 'SIGNALS_UNAVAILABLE', statusCode: 503, message }, path)
    t.notMatch((error as Error).message, /hunter2/, `${path}: no password`)
  }
})
