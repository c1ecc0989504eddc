import { context, ROOT_CONTEXT, trace, type TextMapGetter } from '@opentelemetry/api'
import t from 'tap'
import { choosePropagators, createPropagator } from '../../telemetry/propagators.js'

void t.test('OTEL_PROPAGATORS', (t) => {
  const cases: { given: string | undefined; names: string[] }[] = [
    { given: undefined, names: ['tracecontext', 'baggage'] },
    { given: '', names: ['tracecontext', 'baggage'] },
    { given: 'b3', names: ['b3'] },
    { given: ' B3multi , tracecontext,b3multi', names: ['b3multi', 'tracecontext'] },
    { given: 'none', names: [] },
    { given: 'tracecontext,none', names: [] }
  ]
  for (const { given, names } of cases) t.same(choosePropagators({ OTEL_PROPAGATORS: given }), names, `${given}`)
  t.throws(() => choosePropagators({ OTEL_PROPAGATORS: 'b3,zipkin,xray' }), /zipkin, xray is not supported/)
  t.end()
})

const getter: TextMapGetter<Record<string, string>> = { keys: (carrier) => Object.keys(carrier), get: (carrier, key) => carrier[key] }
const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'

void t.test('a carrier without any header the propagators read is not parsed', async (t) => {
  t.equal(await createPropagator([]), null, 'none: no propagator')
  const cases: { names: string[]; headers: Record<string, string>; traceId: string | undefined }[] = [
    { names: ['tracecontext', 'baggage'], headers: {}, traceId: undefined },
    { names: ['tracecontext', 'baggage'], headers: { 'x-b3-traceid': traceId }, traceId: undefined },
    { names: ['tracecontext', 'baggage'], headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` }, traceId },
    { names: ['b3'], headers: { 'x-b3-traceid': traceId, 'x-b3-spanid': '00f067aa0ba902b7', 'x-b3-sampled': '1' }, traceId },
    { names: ['b3multi'], headers: { b3: `${traceId}-00f067aa0ba902b7-1` }, traceId },
    { names: ['b3'], headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` }, traceId: undefined },
    { names: ['jaeger'], headers: { 'uber-trace-id': `${traceId}:00f067aa0ba902b7:0:1` }, traceId }
  ]
  for (const { names, headers, traceId: expected } of cases) {
    const propagator = await createPropagator(names)
    const extracted = propagator?.extract(ROOT_CONTEXT, headers, getter) ?? ROOT_CONTEXT
    t.equal(trace.getSpanContext(extracted)?.traceId, expected, `${names.join(',')} with ${Object.keys(headers).join(',') || 'no headers'}`)
    if (expected === undefined) t.equal(extracted, ROOT_CONTEXT, 'the very context it was given')
  }
})

void t.test('inject and fields pass through', async (t) => {
  const propagator = await createPropagator(['tracecontext'])
  t.same(propagator?.fields(), ['traceparent', 'tracestate'])
  const span = trace.wrapSpanContext({ traceId, spanId: '00f067aa0ba902b7', traceFlags: 1 })
  const carrier: Record<string, string> = {}
  propagator?.inject(trace.setSpan(context.active(), span), carrier, { set: (c, key, value) => (c[key] = value) })
  t.same(carrier, { traceparent: `00-${traceId}-00f067aa0ba902b7-01` })
})
