import type { Context, TextMapGetter, TextMapPropagator, TextMapSetter } from '@opentelemetry/api'

type Env = Readonly<Record<string, string | undefined>>

const PROPAGATORS = ['tracecontext', 'baggage', 'b3', 'b3multi', 'jaeger', 'none']

/**
 * The propagator names in OTEL_PROPAGATORS, read here and not by NodeSDK (which would read
 * process.env, not `env`): tracecontext and baggage when unset, none for `none`.
 */
export function choosePropagators(env: Env): string[] {
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

/**
 * Most requests carry no trace context: a carrier with none of the headers the
 * propagators read starts a new trace without asking each of them.
 */
class ShortcutPropagator implements TextMapPropagator {
  constructor(
    private readonly inner: TextMapPropagator,
    private readonly headersRead: readonly string[]
  ) {}

  inject(context: Context, carrier: unknown, setter: TextMapSetter): void {
    this.inner.inject(context, carrier, setter)
  }

  extract(context: Context, carrier: unknown, getter: TextMapGetter): Context {
    if (!this.headersRead.some((name) => getter.get(carrier, name) !== undefined)) return context
    return this.inner.extract(context, carrier, getter)
  }

  fields(): string[] {
    return this.inner.fields()
  }
}

/**
 * The process's propagator for these names, or null to propagate nothing. b3 extracts both
 * B3 encodings and injects the single header; b3multi injects X-B3-*. The propagator
 * packages are loaded only here, when tracing is on.
 */
export async function createPropagator(names: readonly string[]): Promise<TextMapPropagator | null> {
  if (names.length === 0) return null
  const [{ CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator }, { B3InjectEncoding, B3Propagator }] = await Promise.all([
    import('@opentelemetry/core'),
    import('@opentelemetry/propagator-b3')
  ])
  const propagators: TextMapPropagator[] = []
  for (const name of names) {
    if (name === 'tracecontext') propagators.push(new W3CTraceContextPropagator())
    else if (name === 'baggage') propagators.push(new W3CBaggagePropagator())
    else if (name === 'b3') propagators.push(new B3Propagator())
    else if (name === 'b3multi') propagators.push(new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER }))
    else propagators.push(new (await import('@opentelemetry/propagator-jaeger')).JaegerPropagator())
  }
  const composite = new CompositePropagator({ propagators })
  // Jaeger's baggage hides in any `uberctx-*` header: no fixed list to check first.
  if (names.includes('jaeger')) return composite
  return new ShortcutPropagator(composite, [...new Set(names.flatMap((name) => HEADERS_READ[name] ?? []))])
}
