import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Span } from '@opentelemetry/api'
import { request } from 'undici'
import { traceRequests } from '../../telemetry/fastify-tracing.js'
import { injectContext } from '../../telemetry/propagation.js'
import { currentTracing } from '../../telemetry/tracing-sdk.js'

export interface WebfrontSettings {
  version: string
  instance: string
  /** the router, through which webfront reaches api */
  routerUrl: string
  /** the message router's publish endpoint base */
  messageRouterUrl: string
}

/** The demo front end ("atseashop/webfront"): a page that calls api through the router, and an order form. */
export function buildWebfrontApp(settings: WebfrontSettings): FastifyInstance {
  const app = Fastify({ logger: false, forceCloseConnections: 'idle' })
  traceRequests(app, currentTracing())
  app.get('/healthz', (_request, reply) => reply.send({ status: 'ok' }))

  const callApi = async (requestId: string, span: Span | null) => {
    const headers: Record<string, string> = { 'x-request-id': requestId }
    // The call to api continues this request's trace: webfront -> router -> api.
    if (span) injectContext(span, headers)
    const response = await request(`${settings.routerUrl}/api/catalog`, { headers })
    return { status: response.statusCode, version: response.headers['x-switchyard-version'], body: (await response.body.json()) as unknown }
  }

  app.get('/', async (req, reply) => {
    const requestId = typeof req.headers['x-request-id'] === 'string' ? req.headers['x-request-id'] : randomUUID()
    const api = await callApi(requestId, req.span).catch((error: Error) => ({ status: 502, version: undefined, body: { error: error.message } }))
    reply.header('content-type', 'text/html; charset=utf-8')
    return `<!doctype html><html><head><title>atsea shop</title></head><body>
<h1>atsea shop (webfront ${settings.version})</h1>
<p>api answered ${api.status} from version <b>${String(api.version ?? 'none')}</b></p>
<pre>${JSON.stringify(api.body, null, 2).replace(/</g, '&lt;')}</pre>
<form method="post" action="/orders"><button>Place an order</button></form>
</body></html>`
  })

  app.get('/api-call', async (req) => {
    const requestId = typeof req.headers['x-request-id'] === 'string' ? req.headers['x-request-id'] : randomUUID()
    return { webfront: settings.version, api: await callApi(requestId, req.span) }
  })

  app.post('/orders', async (req, reply) => {
    const order = { id: randomUUID(), placedAt: new Date().toISOString(), by: settings.instance }
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-switchyard-key': order.id }
    if (typeof req.headers['x-request-id'] === 'string') headers['x-request-id'] = req.headers['x-request-id']
    if (req.span) injectContext(req.span, headers)
    const response = await request(`${settings.messageRouterUrl}/v1/topics/orders/messages`, { method: 'POST', headers, body: JSON.stringify(order) })
    const answer = (await response.body.json()) as unknown
    return reply.code(response.statusCode === 202 ? 202 : 502).send({ order, published: answer })
  })
  return app
}
