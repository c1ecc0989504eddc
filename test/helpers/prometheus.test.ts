import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import t from 'tap'
import { metric, samples } from './prometheus.js'

// What prom-client writes (the format the components serve), read back.
const registry = new Registry()
const requests = new Counter({ name: 'requests_total', help: 'requests', labelNames: ['service', 'version', 'code'], registers: [registry] })
const duration = new Histogram({ name: 'duration_seconds', help: 'duration', labelNames: ['version'], buckets: [0.1, 1], registers: [registry] })
const odd = new Gauge({ name: 'odd', help: 'label values that need escaping', labelNames: ['path'], registers: [registry] })
requests.inc({ service: 'api', version: 'v1', code: '200' }, 3)
requests.inc({ service: 'api', version: 'v2', code: '200' }, 4)
requests.inc({ service: 'api', version: 'v2', code: '500' })
duration.observe({ version: 'v1' }, 0.05)
duration.observe({ version: 'v1' }, 0.5)
odd.set({ path: 'C:\\dir "x"\nnext' }, 7)
const text = await registry.metrics()

void t.test('metric: the sum of the samples whose labels include the given ones', (t) => {
  const cases: { name: string; labels?: Record<string, string>; value: number }[] = [
    { name: 'requests_total', labels: { service: 'api', version: 'v1', code: '200' }, value: 3 },
    { name: 'requests_total', labels: { version: 'v2' }, value: 5 },
    { name: 'requests_total', value: 8 },
    { name: 'requests_total', labels: { version: 'v3' }, value: 0 },
    { name: 'missing_total', value: 0 },
    { name: 'duration_seconds_count', labels: { version: 'v1' }, value: 2 },
    { name: 'duration_seconds_sum', labels: { version: 'v1' }, value: 0.55 },
    { name: 'duration_seconds_bucket', labels: { version: 'v1', le: '0.1' }, value: 1 },
    { name: 'duration_seconds_bucket', labels: { version: 'v1', le: '+Inf' }, value: 2 },
    { name: 'odd', labels: { path: 'C:\\dir "x"\nnext' }, value: 7 }
  ]
  for (const { name, labels, value } of cases) t.equal(metric(text, name, labels), value, `${name} ${JSON.stringify(labels ?? {})}`)
  t.end()
})

void t.test('samples: one per sample line, with its series key', (t) => {
  t.same(samples('# HELP x help\n# TYPE x counter\nx{a="1"} 2\ny 3 1395066363000\nz +Inf\n\n'), [
    { name: 'x', labels: { a: '1' }, value: 2, series: 'x{a="1"}' },
    { name: 'y', labels: {}, value: 3, series: 'y{}' },
    { name: 'z', labels: {}, value: Infinity, series: 'z{}' }
  ])
  t.equal(samples(text).filter((sample) => sample.name === 'duration_seconds_bucket').length, 3)
  t.end()
})
