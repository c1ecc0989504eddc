/**
 * The former single tracing module, now a re-export of the modules it was split into:
 * tracing-sdk.ts (start-up, the process's Tracing), propagation.ts (trace context in and
 * out of headers) and spans.ts. Kept for callers that have not moved yet (router/http/*,
 * router/messages/topic-relay.ts, router/server.ts, router/messages/server.ts, sample-services/orders-worker/*);
 * new code imports the split modules.
 */
export { currentTracing, startTracing, type Tracing } from './tracing-sdk.js'
export { extractContext, extractMessageContext, injectContext, injectMessageContext, TRACE_HEADERS } from './propagation.js'
export { childContext, endSpan, SpanKind } from './spans.js'
