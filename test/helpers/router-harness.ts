import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocketServer, type ServerOptions as WebSocketServerOptions } from 'ws'
import { parseProxyConfig, type RouterSettings } from '../../router/config.js'
import { startRouter, type RunningRouter } from '../../router/server.js'
import { get } from './http.js'
import { startTestRegistry, TOKENS, waitFor, type TestRegistry } from './registry-harness.js'

export interface Upstream {
  server: Server
  port: number
  version: string
  id: string
  /** requests this upstream has seen */
  hits: number
  lastRequest: IncomingMessage | undefined
  close(): Promise<void>
}

export type UpstreamHandler = (request: IncomingMessage, response: ServerResponse, upstream: Upstream) => void

/** A real HTTP server on 127.0.0.1 that answers JSON naming its version and instance. */
export async function startUpstream(version: string, id: string, handler?: UpstreamHandler): Promise<Upstream> {
  const upstream: Upstream = { server: undefined as unknown as Server, port: 0, version, id, hits: 0, lastRequest: undefined, close: async () => {} }
  const server = createServer((req, res) => {
    upstream.hits++
    upstream.lastRequest = req
    if (handler) return handler(req, res, upstream)
    req.resume()
    req.on('end', () => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ version, id, path: req.url, headers: req.headers }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  upstream.server = server
  upstream.port = (server.address() as AddressInfo).port
  upstream.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return upstream
}

export interface TestMesh {
  reg: TestRegistry
  router: RunningRouter
  proxyUrl: string
  adminUrl: string
  upstreams: Upstream[]
  /** starts an upstream and registers it; resolves once the router routes to it */
  addUpstream(service: string, version: string, handler?: UpstreamHandler): Promise<Upstream>
  setWeights(service: string, weights: Record<string, number>): Promise<number>
  /** polls the router's /routes until it reflects `revision` */
  waitForRevision(revision: number): Promise<void>
  routes(): Promise<any>
  get(path: string, headers?: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: any; text: string }>
  close(): Promise<void>
}

let upstreamCounter = 0

/** Registry + router in this process, on ephemeral ports, routes from `config` (and router settings such as TLS from `settings`). */
export async function startTestMesh(config: Record<string, unknown> = {}, settings: Partial<RouterSettings> = {}): Promise<TestMesh> {
  const reg = await startTestRegistry()
  const proxyConfig = parseProxyConfig({ routes: [{ match: { pathPrefix: '/api' }, service: 'api' }], ...config }, 'test')
  const router = await startRouter(
    { host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0, registry: reg.url, token: TOKENS.router, reportIntervalSeconds: 1, logLevel: 'silent', ...settings },
    proxyConfig
  )
  const upstreams: Upstream[] = []
  const mesh: TestMesh = {
    reg,
    router,
    proxyUrl: router.proxyUrl,
    adminUrl: router.adminUrl,
    upstreams,
    async addUpstream(service, version, handler) {
      const id = `${service}-${version}-${++upstreamCounter}`
      const upstream = await startUpstream(version, id, handler)
      upstreams.push(upstream)
      const answer = await reg.call('POST', `/v1/services/${service}/instances`, { token: 'registrar', body: { version, host: '127.0.0.1', port: upstream.port, id } })
      if (answer.status !== 201 && answer.status !== 200) throw new Error(`registration failed: ${answer.text}`)
      await mesh.waitForRevision(reg.registry.revision)
      return upstream
    },
    async setWeights(service, weights) {
      const answer = await reg.call('PUT', `/v1/services/${service}/weights`, { token: 'operator', body: { weights } })
      if (answer.status !== 200) throw new Error(`set weights failed: ${answer.text}`)
      await mesh.waitForRevision(answer.json.revision)
      return answer.json.revision as number
    },
    async waitForRevision(revision) {
      await waitFor(() => (router.source.table.revision >= revision ? true : undefined), `router at revision ${revision}`)
    },
    async routes() {
      return (await get(`${router.adminUrl}/routes`)).json
    },
    get(path, headers = {}) {
      return get(`${router.proxyUrl}${path}`, headers)
    },
    async close() {
      await router.close()
      await Promise.all(upstreams.map((upstream) => upstream.close()))
      await reg.destroy()
    }
  }
  return mesh
}

export interface WebSocketUpstream extends Upstream {
  wss: WebSocketServer
}

/**
 * An upstream that also speaks WebSocket (the `ws` server on the same port), registered
 * like addUpstream. It echoes every message unless `echo` is false.
 */
export async function addWebSocketUpstream(
  mesh: TestMesh,
  service: string,
  version: string,
  { echo = true, ...options }: WebSocketServerOptions & { echo?: boolean } = {}
): Promise<WebSocketUpstream> {
  const upstream = await mesh.addUpstream(service, version)
  const wss = new WebSocketServer({ ...options, server: upstream.server })
  if (echo) wss.on('connection', (socket) => socket.on('message', (data, binary) => socket.send(data, { binary })))
  // Upgraded sockets are not the HTTP server's: they would hold its close() open.
  const closeServer = upstream.close
  upstream.close = async () => {
    for (const socket of wss.clients) socket.terminate()
    wss.close()
    await closeServer()
  }
  return Object.assign(upstream, { wss })
}
