import type { Span, Tracer } from '@opentelemetry/api'
import { extractContext, SpanKind } from '../../telemetry/tracing.js'
import type { RoutableRequest, RoutedRequest } from './request-routing.js'

/**
 * The router's server span for one request (or upgrade), continuing the client's trace.
 * Sampled, it records the request; not sampled (say 99 of 100 at 1%), only its context
 * travels on: check `isRecording()`.
 */
export function startServerSpan(tracer: Tracer, request: RoutableRequest, method: string, requestId: string): Span {
  const span = tracer.startSpan(method, { kind: SpanKind.SERVER }, extractContext(request.headers))
  if (span.isRecording()) {
    span.setAttributes({
      'http.request.method': method,
      'url.path': (request.url ?? '/').split('?')[0],
      'client.address': request.socket.remoteAddress ?? '',
      'switchyard.request_id': requestId
    })
  }
  return span
}

/** Names a sampled server span after the route and records the choice made. */
export function describeRoute(span: Span, method: string, routed: RoutedRequest, revision: number): void {
  const { rule, route, version } = routed
  span.updateName(`${method} ${rule.name}`)
  span.setAttributes({
    'http.route': rule.pathPrefix ?? '/',
    'switchyard.route': rule.name,
    'switchyard.service': route.name,
    'switchyard.version': version.name,
    'switchyard.version.weight': version.weight / 100,
    'switchyard.registry.revision': revision,
    'switchyard.choice': routed.reason
  })
}
