import { context, propagation, ROOT_CONTEXT, trace, type ContextManager, SpanKind, SpanStatusCode, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api'
import type { TextMapPropagator } from '@opentelemetry/api'
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base'

/**
 * One tracing set-up for every switchyard process, configured by the standard OTEL_*
 * variables: OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_EXPORTER (otlp,
 * jaeger, console, none), OTEL_EXPORTER_OTLP_ENDPOINT / _TRACES_ENDPOINT,
 * OTEL_EXPORTER_JAEGER_ENDPOINT, OTEL_TRACES_SAMPLER / _ARG, OTEL_PROPAGATORS (W3C
 * tracecontext and baggage by default; b3, b3multi, jaeger on request).
 *
 * With nothing set tracing stays off and costs nothing: the SDK is not even loaded,
 * `enabled` is false and callers skip span work entirely.
 */
export interface Tracing {
  readonly enabled: boolean
  readonly tracer: Tracer
  /** one line for start-up output: what is exported where, or how to turn it on */
  readonly description: string
  shutdown(): Promise<void>
}

type Env = Readonly<Record<string, string | undefined>>

function chooseExporter(env: Env): 'otlp' | 'jaeger' | 'console' | 'none' {
  const configured = env.OTEL_TRACES_EXPORTER?.split(',')[0]?.trim().toLowerCase()
  if (configured === 'otlp' || configured === 'jaeger' || configured === 'console' || configured === 'none') return configured
  if (configured) throw new Error(`OTEL_TRACES_EXPORTER=${configured} is not supported: use otlp, jaeger, console or none`)
  return env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? 'otlp' : 'none'
}

const PROPAGATORS = ['tracecontext', 'baggage', 'b3', 'b3multi', 'jaeger', 'none']

/**
 * The propagator names in OTEL_PROPAGATORS, read here and not by NodeSDK (which would read
 * process.env, not `env`): tracecontext and baggage when unset, none for `none`.
 */
function choosePropagators(env: Env): string[] {
  const names = [
    ...new Set(
      (env.OTEL_PROPAGATORS ?? '')
        .split(',')
        .map((name) => name.trim().toLowerCase())
        .filter((name) => name !== '')
    )
  ]
  const unknown = names.filter((name) => !PROPAGATORS.includes(name))
  if (unknown.length > 0)
    throw new Error(`OTEL_PROPAGATORS=${env.OTEL_PROPAGATORS}: ${unknown.join(', ')} is not supported: use tracecontext, baggage, b3, b3multi, jaeger or none`)
  if (names.length === 0) return ['tracecontext', 'baggage']
  return names.includes('none') ? [] : names
}

/** The request headers each propagator reads (B3 reads both of its encodings, whichever it injects). */
const B3_HEADERS = ['b3', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-sampled', 'x-b3-flags']
const HEADERS_READ: Readonly<Record<string, readonly string[]>> = {
  tracecontext: ['traceparent', 'tracestate'],
  baggage: ['baggage'],
  b3: B3_HEADERS,
  b3multi: B3_HEADERS
}

let active: Tracing | undefined
/**
 * Every header the configured propagators could read, when that list is known (Jaeger's
 * baggage hides in any `uberctx-*` header): a request with none of them starts a new
 * trace without asking each propagator.
 */
let headersRead: readonly string[] | undefined = []

/**
 * Starts tracing for this process (once; later calls return the same set-up).
 * `spanProcessors` replaces the exporter choice (tests pass an in-memory exporter).
 */
export async function startTracing(defaultServiceName: string, options: { env?: Env; spanProcessors?: SpanProcessor[]; serviceVersion?: string } = {}): Promise<Tracing> {
  if (active) return active
  const env = options.env ?? process.env
  const serviceName = env.OTEL_SERVICE_NAME || defaultServiceName
  const exporter = options.spanProcessors ? 'custom' : chooseExporter(env)
  if (exporter === 'none' || env.OTEL_SDK_DISABLED === 'true') {
    active = {
      enabled: false,
      tracer: trace.getTracer('switchyard'),
      description: 'tracing off (set OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 to send traces to Jaeger)',
      shutdown: async () => {}
    }
    return active
  }
  const propagatorNames = choosePropagators(env)
  headersRead = propagatorNames.includes('jaeger') ? undefined : [...new Set(propagatorNames.flatMap((name) => HEADERS_READ[name] ?? []))]
  // Loaded only when tracing is on: the SDK and its exporters take a while to import.
  const [
    { NodeSDK },
    { resourceFromAttributes },
    { BatchSpanProcessor, ConsoleSpanExporter },
    { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator },
    { B3InjectEncoding, B3Propagator }
  ] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/core'),
    import('@opentelemetry/propagator-b3')
  ])
  const propagators: TextMapPropagator[] = []
  for (const name of propagatorNames) {
    if (name === 'tracecontext') propagators.push(new W3CTraceContextPropagator())
    else if (name === 'baggage') propagators.push(new W3CBaggagePropagator())
    else if (name === 'b3') propagators.push(new B3Propagator())
    else if (name === 'b3multi') propagators.push(new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER }))
    else propagators.push(new (await import('@opentelemetry/propagator-jaeger')).JaegerPropagator())
  }
  let spanProcessors = options.spanProcessors
  if (!spanProcessors) {
    const exporterInstance =
      exporter === 'jaeger'
        ? new (await import('@opentelemetry/exporter-jaeger')).JaegerExporter()
        : exporter === 'console'
          ? new ConsoleSpanExporter()
          : new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter()
    // Small batches, sent often: traces show up in Jaeger while a canary is being watched.
    spanProcessors = [new BatchSpanProcessor(exporterInstance, { scheduledDelayMillis: 1_000, maxExportBatchSize: 512, maxQueueSize: 8_192 })]
  }
  if (active) return active
  const sdk = new NodeSDK({
    serviceName,
    spanProcessors,
    instrumentations: [],
    // No async context manager: switchyard passes every span's context explicitly, and an
    // AsyncLocalStorage manager would tax every promise in the process (measured: ~25% of
    // the router's throughput at 1% sampling).
    contextManager: null as unknown as ContextManager,
    // b3 extracts both b3 encodings and injects the single header; null propagates nothing.
    textMapPropagator: propagators.length > 0 ? new CompositePropagator({ propagators }) : null,
    // Metrics are Prometheus's job here; OTel metrics and logs pipelines (the SDK's OTLP
    // defaults) only run when asked for by name.
    ...(env.OTEL_METRICS_EXPORTER ? {} : { metricReaders: [] }),
    ...(env.OTEL_LOGS_EXPORTER ? {} : { logRecordProcessors: [] }),
    ...(options.serviceVersion ? { resource: resourceFromAttributes({ 'service.version': options.serviceVersion }) } : {})
  })
  sdk.start()
  const target =
    exporter === 'otlp'
      ? `OTLP to ${env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT}`
      : exporter === 'jaeger'
        ? `Jaeger Thrift to ${env.OTEL_EXPORTER_JAEGER_ENDPOINT ?? 'the agent (UDP)'}`
        : exporter
  active = {
    enabled: true,
    tracer: trace.getTracer('switchyard'),
    description: `tracing on as ${serviceName}: ${target}, sampler ${env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on'}${env.OTEL_TRACES_SAMPLER_ARG ? ` ${env.OTEL_TRACES_SAMPLER_ARG}` : ''}, propagators ${propagatorNames.join(',') || 'none'}`,
    shutdown: () => sdk.shutdown()
  }
  return active
}

/** The process's tracing, or a disabled one if nobody started it. */
export function currentTracing(): Tracing {
  return active ?? { enabled: false, tracer: trace.getTracer('switchyard'), description: 'tracing off', shutdown: async () => {} }
}

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
  if (headersRead !== undefined && !headersRead.some((name) => headers[name] !== undefined)) return ROOT_CONTEXT
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

export function startSpan(tracer: Tracer, name: string, kind: SpanKind, parent: Context, attributes: Attributes): Span {
  return tracer.startSpan(name, { kind, attributes }, parent)
}

export function childContext(span: Span): Context {
  return trace.setSpan(context.active(), span)
}

/** Marks a span failed (5xx, timeout, lost connection) and ends it. */
export function endSpan(span: Span, error?: string): void {
  if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error })
  span.end()
}

/** For pino's `mixin`: the active trace and span ids, so log lines join their traces. */
export function traceLogFields(): Record<string, string> {
  const span = trace.getSpan(context.active())
  if (!span) return {}
  const { traceId, spanId } = span.spanContext()
  return { trace_id: traceId, span_id: spanId }
}

export { SpanKind }
