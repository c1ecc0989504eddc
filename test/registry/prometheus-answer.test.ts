import t from 'tap'
import { SwitchyardError } from '../../core/errors.js'
import { emptyCounters } from '../../core/signals/counters.js'
import { figuresOf } from '../../core/signals/figures.js'
import { labelValues, queryData, singleValue, type QueryData } from '../../registry/signals/prometheus-answer.js'
import { prometheusFigures } from '../../registry/signals/prometheus-figures.js'

const vector = (...elements: [Record<string, string>, string][]): QueryData => ({
  resultType: 'vector',
  result: elements.map(([metric, value]) => ({ metric, value: [1796014686.223, value] }))
})

void t.test('queryData: the data of a success, SIGNALS_UNAVAILABLE for anything else', (t) => {
  const data = vector([{}, '4'])
  t.same(queryData({ status: 'success', data }, 'requests'), data)
  t.same(queryData({ status: 'success', data: { resultType: 'scalar', result: [1, '2'] }, warnings: ['w'] }, 'requests'), { resultType: 'scalar', result: [1, '2'] })
  const refused: { answer: unknown; message: string }[] = [
    {
      answer: { status: 'error', errorType: 'bad_data', error: '1:5: parse error: unexpected end of input' },
      message: 'Prometheus refused the requests query: bad_data: 1:5: parse error: unexpected end of input'
    },
    { answer: { status: 'error' }, message: 'Prometheus refused the requests query: error: no message' },
    { answer: { status: 'error', errorType: 'timeout', error: 'x'.repeat(600) }, message: `Prometheus refused the requests query: timeout: ${'x'.repeat(500)}` },
    { answer: 'Service Unavailable', message: 'Prometheus answered the requests query with something that is not a query result' },
    { answer: { status: 'success' }, message: 'Prometheus answered the requests query with something that is not a query result' },
    {
      answer: { status: 'success', data: { resultType: 'vector', result: [{ metric: {}, value: [1, 4] }] } },
      message: 'Prometheus answered the requests query with something that is not a query result'
    }
  ]
  for (const { answer, message } of refused) {
    t.throws(() => queryData(answer, 'requests'), new SwitchyardError('SIGNALS_UNAVAILABLE', message), message.slice(0, 60))
  }
  t.end()
})

void t.test('singleValue: one number, or undefined when there is none', (t) => {
  const cases: { data: QueryData; expected: number | undefined }[] = [
    { data: { resultType: 'scalar', result: [1, '2.5'] }, expected: 2.5 },
    { data: vector([{}, '40']), expected: 40 },
    { data: vector([{ version: 'v1' }, '0']), expected: 0 },
    { data: vector(), expected: undefined },
    { data: vector([{}, 'NaN']), expected: undefined },
    { data: vector([{}, '+Inf']), expected: undefined },
    { data: { resultType: 'scalar', result: [1, '-Inf'] }, expected: undefined },
    { data: vector([{}, '1e3']), expected: 1000 }
  ]
  for (const { data, expected } of cases) t.equal(singleValue(data, 'p99Ms'), expected, JSON.stringify(data.result))
  t.throws(() => singleValue(vector([{ code: '200' }, '1'], [{ code: '500' }, '2']), 'requests'), {
    code: 'SIGNALS_UNAVAILABLE',
    message: 'the requests query returned 2 series, not one value: aggregate it (sum(...))'
  })
  t.throws(() => singleValue({ resultType: 'matrix', result: [] }, 'requests'), { message: 'the requests query returned a matrix, not one value: make it an instant vector' })
  t.end()
})

void t.test('labelValues: distinct, non-empty, in version order', (t) => {
  const data = vector(
    [{ version: 'v1.10' }, '1'],
    [{ version: 'v1.9' }, '1'],
    [{ version: '' }, '1'],
    [{}, '1'],
    [{ version: 'v1.9', instance: 'b' }, '1'],
    [{ version: 'v2' }, '1']
  )
  t.same(labelValues(data, 'version', 'versions'), ['v1.9', 'v1.10', 'v2'])
  t.same(labelValues(vector(), 'version', 'versions'), [])
  t.throws(() => labelValues({ resultType: 'scalar', result: [1, '1'] }, 'version', 'versions'), {
    code: 'SIGNALS_UNAVAILABLE',
    message: 'the versions query returned a scalar, not a vector with a "version" label'
  })
  t.end()
})

void t.test('prometheusFigures: the figures of the routers source, from single values', (t) => {
  t.same(prometheusFigures({ requests: 40, errors: 20, p50Ms: 1.2345678, p99Ms: 19, messagesRouted: 10, messagesRejected: 3 }, 120_000), {
    requests: 40,
    rps: 0.333,
    errors: 20,
    errorRatePercent: 50,
    p50Ms: 1.235,
    p99Ms: 19,
    statusClasses: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 20 },
    messagesRouted: 10,
    mps: 0.083,
    messagesRejected: 3,
    rejectRatePercent: 30,
    latency: []
  })
  // Nothing known: the same figures as the routers' source gives a version without traffic (no histogram).
  t.same(prometheusFigures({}, 60_000), { ...figuresOf(emptyCounters(), 60_000), latency: [] })
  const cases: { name: string; values: Parameters<typeof prometheusFigures>[0]; windowMs: number; expect: Partial<ReturnType<typeof prometheusFigures>> }[] = [
    { name: 'a quantile without requests is no figure', values: { requests: 0, p99Ms: 5 }, windowMs: 1000, expect: { p99Ms: undefined } },
    {
      name: 'custom templates may extrapolate: kept to 3 digits',
      values: { requests: 101.66666, errors: 1.01666 },
      windowMs: 60_000,
      expect: { requests: 101.667, errors: 1.017, errorRatePercent: 1.0003 }
    },
    {
      name: 'rates capped at 100%',
      values: { requests: 2, errors: 3, messagesRouted: 1, messagesRejected: 2 },
      windowMs: 1000,
      expect: { errorRatePercent: 100, rejectRatePercent: 100 }
    },
    { name: 'negative counts read as 0', values: { requests: -4, messagesRouted: -1 }, windowMs: 1000, expect: { requests: 0, rps: 0, messagesRouted: 0 } },
    { name: 'a window of 0 ms reads as 1 ms', values: { requests: 1 }, windowMs: 0, expect: { rps: 1000 } }
  ]
  for (const { name, values, windowMs, expect } of cases) t.match(prometheusFigures(values, windowMs), expect, name)
  t.end()
})
