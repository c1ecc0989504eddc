import { trace, type ContextManager, type Tracer } from '@opentelemetry/api'
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base'
import { ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions'
import { choosePropagators, createPropagator } from './propagators.js'

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

function disabled(description: string): Tracing {
  return { enabled: false, tracer: trace.getTracer('switchyard'), description, shutdown: async () => {} }
}

/** The process's tracing: like OTel's own global provider, one per process. */
let active: Tracing | undefined

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
    active = disabled('tracing off (set OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 to send traces to Jaeger)')
    return active
  }
  const propagatorNames = choosePropagators(env)
  // Loaded only when tracing is on: the SDK and its exporters take a while to import.
  const [{ NodeSDK }, { resourceFromAttributes }, { BatchSpanProcessor, ConsoleSpanExporter }, textMapPropagator] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace-base'),
    createPropagator(propagatorNames)
  ])
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
    // null propagates nothing (OTEL_PROPAGATORS=none).
    textMapPropagator,
    // Metrics are Prometheus's job here; OTel metrics and logs pipelines (the SDK's OTLP
    // defaults) only run when asked for by name.
    ...(env.OTEL_METRICS_EXPORTER ? {} : { metricReaders: [] }),
    ...(env.OTEL_LOGS_EXPORTER ? {} : { logRecordProcessors: [] }),
    ...(options.serviceVersion ? { resource: resourceFromAttributes({ [ATTR_SERVICE_VERSION]: options.serviceVersion }) } : {})
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
  return active ?? disabled('tracing off')
}
