import type { Span } from '@opentelemetry/api'
import { ATTR_CLIENT_ADDRESS, ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE, ATTR_URL_PATH } from '@opentelemetry/semantic-conventions'
import type { FastifyInstance } from 'fastify'
import { extractContext } from './propagation.js'
import { endSpan, SpanKind } from './spans.js'
import type { Tracing } from './tracing-sdk.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** the request's server span when tracing is on */
    span: Span | null
  }
}

/**
 * A server span per request for the registry and the sample services (the router makes
 * its own on the hot path). The span continues the caller's trace, and the request's
 * logger carries trace_id and span_id so log lines lead to their trace.
 */
export function traceRequests(app: FastifyInstance, tracing: Tracing): void {
  app.decorateRequest('span', null)
  if (!tracing.enabled) return
  app.addHook('onRequest', (request, _reply, done) => {
    const span = tracing.tracer.startSpan(
      request.method,
      { kind: SpanKind.SERVER, attributes: { [ATTR_HTTP_REQUEST_METHOD]: request.method, [ATTR_URL_PATH]: request.url.split('?')[0], [ATTR_CLIENT_ADDRESS]: request.ip } },
      extractContext(request.headers as Record<string, unknown>)
    )
    request.span = span
    const { traceId, spanId } = span.spanContext()
    request.log = request.log.child({ trace_id: traceId, span_id: spanId })
    done()
  })
  app.addHook('onResponse', async (request, reply) => {
    const span = request.span
    if (!span) return
    if (request.routeOptions.url) {
      span.updateName(`${request.method} ${request.routeOptions.url}`)
      span.setAttribute(ATTR_HTTP_ROUTE, request.routeOptions.url)
    }
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, reply.statusCode)
    endSpan(span, reply.statusCode >= 500 ? `HTTP ${reply.statusCode}` : undefined)
  })
}
