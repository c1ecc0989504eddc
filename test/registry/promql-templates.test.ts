import t from 'tap'
import { ConfigError } from '../../core/config.js'
import {
  DEFAULT_TEMPLATES,
  escapePromqlString,
  fillTemplate,
  parsePrometheusQueries,
  placeholdersOf,
  promDuration,
  TEMPLATE_PLACEHOLDERS,
  type TemplateName
} from '../../registry/signals/promql-templates.js'

void t.test('promDuration: whole seconds in s, the rest in ms, at least 1ms', (t) => {
  const cases: [number, string][] = [
    [60_000, '60s'],
    [1_000, '1s'],
    [1_500, '1500ms'],
    [999.6, '1s'],
    [42.4, '42ms'],
    [900_000, '900s'],
    [0, '1ms'],
    [-5, '1ms']
  ]
  for (const [ms, expected] of cases) t.equal(promDuration(ms), expected, String(ms))
  t.end()
})

void t.test('escapePromqlString: what a double-quoted PromQL string needs', (t) => {
  const cases: [string, string][] = [
    ['api', 'api'],
    ['a"b', 'a\\"b'],
    ['a\\b', 'a\\\\b'],
    ['a\nb', 'a\\nb'],
    ['"}) or vector(1) #', '\\"}) or vector(1) #']
  ]
  for (const [value, expected] of cases) t.equal(escapePromqlString(value), expected, JSON.stringify(value))
  t.end()
})

void t.test('fillTemplate: placeholders replaced, names escaped, the window as is', (t) => {
  const cases: { template: string; values: Record<string, string>; expected: string }[] = [
    { template: 'x{service="{{service}}"}[{{window}}]', values: { service: 'api', window: '60s' }, expected: 'x{service="api"}[60s]' },
    { template: 'x{service="{{ service }}",version="{{version}}"}', values: { service: 'api', version: 'v1.4' }, expected: 'x{service="api",version="v1.4"}' },
    { template: 'x{topic="{{topic}}"} + x{topic="{{topic}}"}', values: { topic: 'orders' }, expected: 'x{topic="orders"} + x{topic="orders"}' },
    { template: 'x{version="{{version}}"}', values: { version: 'v"1' }, expected: 'x{version="v\\"1"}' },
    { template: 'vector(1)', values: {}, expected: 'vector(1)' }
  ]
  for (const { template, values, expected } of cases) t.equal(fillTemplate(template, values), expected, template)
  t.throws(() => fillTemplate('x{service="{{service}}"}', {}), /no value for \{\{service\}\}/)
  t.end()
})

void t.test('placeholdersOf: each name once, in order of first use', (t) => {
  t.same(placeholdersOf('{{version}} {{ service }} {{version}} {{window}}'), ['version', 'service', 'window'])
  t.same(placeholdersOf('sum(x)'), [])
  t.same(placeholdersOf('{{}}'), [''])
  t.end()
})

void t.test('the default templates, filled', (t) => {
  const values = { service: 'api', version: 'v1', topic: 'orders', window: '60s' }
  const count = (selector: string) => `sum((${selector} - (${selector} offset 60s or ${selector} * 0)) >= 0 or ${selector})`
  const buckets = 'switchyard_request_duration_seconds_bucket{service="api",version="v1"}'
  const expected: Record<TemplateName, string> = {
    versions: 'group by (version) (switchyard_requests_total{service="api"})',
    requests: count('switchyard_requests_total{service="api",version="v1"}'),
    errors: count('switchyard_requests_total{service="api",version="v1",code=~"5.."}'),
    p50Ms: `1000 * histogram_quantile(0.5, sum by (le)((${buckets} - (${buckets} offset 60s or ${buckets} * 0)) >= 0 or ${buckets}))`,
    p99Ms: `1000 * histogram_quantile(0.99, sum by (le)((${buckets} - (${buckets} offset 60s or ${buckets} * 0)) >= 0 or ${buckets}))`,
    messageVersions: 'group by (version) (switchyard_messages_total{topic="orders",outcome="routed"})',
    messagesRouted: count('switchyard_messages_total{topic="orders",version="v1",outcome="routed"}'),
    messagesRejected: count('switchyard_messages_rejected_total{topic="orders",version="v1"}')
  }
  for (const name of Object.keys(TEMPLATE_PLACEHOLDERS) as TemplateName[]) t.equal(fillTemplate(DEFAULT_TEMPLATES[name], values), expected[name], name)
  // The defaults obey the rules a file's templates must.
  for (const name of Object.keys(TEMPLATE_PLACEHOLDERS) as TemplateName[]) {
    const used = placeholdersOf(DEFAULT_TEMPLATES[name])
    const { required, allowed } = TEMPLATE_PLACEHOLDERS[name]
    t.ok(
      required.every((placeholder) => used.includes(placeholder)),
      `${name} has what it needs`
    )
    t.ok(
      used.every((placeholder) => (allowed as readonly string[]).includes(placeholder)),
      `${name} uses only what it may`
    )
  }
  t.end()
})

void t.test('parsePrometheusQueries: a file merged over the defaults, topics inverted per service', (t) => {
  const requests = 'sum(increase(http_requests_total{app="{{service}}",track="{{version}}"}[{{window}}]))'
  const parsed = parsePrometheusQueries({ queries: { requests }, topics: { orders: 'orders-worker', returns: 'orders-worker', emails: 'mailer' } }, 'q.yaml')
  t.same(parsed.templates, { ...DEFAULT_TEMPLATES, requests })
  t.same(parsed.topics, { 'orders-worker': ['orders', 'returns'], mailer: ['emails'] })
  for (const empty of [null, undefined, {}]) t.same(parsePrometheusQueries(empty, 'q.yaml'), { templates: DEFAULT_TEMPLATES, topics: {} }, String(empty))
  t.end()
})

void t.test('parsePrometheusQueries refuses what it cannot use, naming where', (t) => {
  const cases: { name: string; document: unknown; problems: (string | RegExp)[] }[] = [
    { name: 'unknown top-level key', document: { query: {} }, problems: [/^q\.yaml\/query: /] },
    { name: 'unknown template', document: { queries: { latency: 'x' } }, problems: [/^q\.yaml\/queries\/latency: /] },
    { name: 'template not a string', document: { queries: { requests: 5 } }, problems: [/^q\.yaml\/queries\/requests: /] },
    { name: 'empty template', document: { queries: { requests: '' } }, problems: [/^q\.yaml\/queries\/requests: /] },
    { name: 'not a mapping', document: ['requests'], problems: [/^q\.yaml\/: /] },
    { name: 'topic name invalid', document: { topics: { 'bad topic': 'orders-worker' } }, problems: [/^q\.yaml\/topics/] },
    { name: 'service not a string', document: { topics: { orders: ['orders-worker'] } }, problems: [/^q\.yaml\/topics\/orders: /] },
    {
      name: 'missing placeholders',
      document: { queries: { requests: 'sum(x{service="{{service}}"})' } },
      problems: ['q.yaml/queries/requests: must contain {{version}}, {{window}}']
    },
    {
      name: 'a placeholder that cannot be filled there',
      document: { queries: { versions: 'group by (version) (x{service="{{service}}",version="{{version}}"})' } },
      problems: ['q.yaml/queries/versions: {{version}} cannot be filled here (it may use {{service}}, {{window}})']
    },
    {
      name: 'a misspelt placeholder, and another template missing one',
      document: { queries: { errors: 'sum(x{service="{{servce}}",version="{{version}}"}[{{window}}])', messagesRouted: 'sum(x{version="{{version}}"}[{{window}}])' } },
      problems: [
        'q.yaml/queries/errors: must contain {{service}}',
        'q.yaml/queries/errors: {{servce}} cannot be filled here (it may use {{service}}, {{version}}, {{window}})',
        'q.yaml/queries/messagesRouted: must contain {{topic}}'
      ]
    }
  ]
  for (const { name, document, problems } of cases) {
    try {
      parsePrometheusQueries(document, 'q.yaml')
      t.fail(`${name}: accepted`)
    } catch (error) {
      t.type(error, ConfigError, name)
      const found = (error as ConfigError).problems
      t.ok(found.length >= problems.length, `${name}: ${found.join('; ')}`)
      problems.forEach((problem, i) => (typeof problem === 'string' ? t.equal(found[i], problem, name) : t.match(found[i], problem, name)))
    }
  }
  t.end()
})
