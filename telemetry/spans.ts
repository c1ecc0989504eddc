import { context, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api'

/** The context whose parent is `span`: switchyard passes contexts explicitly (no async context manager). */
export function childContext(span: Span): Context {
  return trace.setSpan(context.active(), span)
}

/** Marks a span failed (5xx, timeout, lost connection) and ends it. */
export function endSpan(span: Span, error?: string): void {
  if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error })
  span.end()
}

export { SpanKind }
