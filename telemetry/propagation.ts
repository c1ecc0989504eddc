import { context, propagation, trace, type Context, type Span } from '@opentelemetry/api'

/**
 * Trace context in and out of request and message headers, through the process's
 * propagator (tracing-sdk.ts installs it; with tracing off nothing is read or written).
 */
type Carrier = Record<string, unknown>

const headerGetter = {
  keys: (carrier: Carrier) => Object.keys(carrier),
  get: (carrier: Carrier, key: string) => {
    const value = carrier[key] ?? carrier[key.toLowerCase()]
    if (Array.isArray(value)) return value.map(String)
    return value === undefined || value === null ? undefined : String(value)
  }
}
const headerSetter = {
  set: (carrier: Carrier, key: string, value: string) => {
    carrier[key] = value
  }
}

/** The trace context that came with a request or message (traceparent, b3...); `headers` has lower-case names. */
export function extractContext(headers: Carrier): Context {
  return propagation.extract(context.active(), headers, headerGetter)
}

/** Writes the context of `span` into outgoing headers (or message headers). */
export function injectContext(span: Span, headers: Carrier): void {
  propagation.inject(trace.setSpan(context.active(), span), headers, headerSetter)
}

/**
 * The headers of every trace format switchyard reads. Where it starts a span of its own,
 * it drops all of them before writing its context: a client's `b3` left beside the
 * router's `x-b3-*` (or a `traceparent` beside `b3`) would attach the upstream to the
 * client's span and hide the router's.
 */
export const TRACE_HEADERS: ReadonlySet<string> = new Set([
  'traceparent',
  'tracestate',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'uber-trace-id'
])

/** Message headers keep the case their producer gave them (AMQP does): read them case-insensitively. */
export function extractMessageContext(headers: Carrier | undefined): Context {
  const lowerCase: Carrier = {}
  for (const name in headers) lowerCase[name.toLowerCase()] = headers[name]
  return extractContext(lowerCase)
}

/** Replaces whatever trace headers a message came with by the context of `span`. */
export function injectMessageContext(span: Span, headers: Carrier): void {
  for (const name of Object.keys(headers)) if (TRACE_HEADERS.has(name.toLowerCase())) delete headers[name]
  injectContext(span, headers)
}
