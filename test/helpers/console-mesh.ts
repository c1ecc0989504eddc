import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { call } from './http.js'
import { MESH_TOKEN, startProcessMesh, type ProcessMesh } from './mesh-processes.js'
import { startUpstream, type Upstream } from './router-harness.js'

/** Tokens of a console test registry: the mesh's admin, and one token per role the console must honour. */
export const CONSOLE_TOKENS = {
  admin: MESH_TOKEN,
  operator: 'console-operator-token-0123456789abcdef',
  reader: 'console-reader-token-0123456789abcdef',
  /** an operator that may change only the service api */
  apiOperator: 'console-api-operator-token-0123456789abcdef'
}

export interface ConsoleMesh extends ProcessMesh {
  upstreams: Upstream[]
  /** starts an HTTP server answering with its version and registers it; resolves once registered */
  addUpstream(service: string, version: string, metadata?: Record<string, string>): Promise<Upstream>
  /** an API call with one of CONSOLE_TOKENS (admin by default) */
  api(
    method: 'GET' | 'PUT' | 'POST' | 'DELETE',
    path: string,
    body?: unknown,
    options?: { token?: keyof typeof CONSOLE_TOKENS; headers?: Record<string, string> }
  ): Promise<{ status: number; json: any }>
}

/**
 * The registry (and routers, on demand) as real processes, as `npm start` runs them, with a
 * tokens file holding a reader, an operator and an operator of `api` only.
 */
export async function startConsoleMesh(options: { registryArgs?: string[] } = {}): Promise<ConsoleMesh> {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-console-tokens-'))
  const tokensFile = join(dir, 'tokens.yaml')
  await writeFile(
    tokensFile,
    JSON.stringify({
      tokens: [
        { name: 'operator', role: 'operator', token: CONSOLE_TOKENS.operator },
        { name: 'reader', role: 'reader', token: CONSOLE_TOKENS.reader },
        { name: 'api-operator', role: 'operator', token: CONSOLE_TOKENS.apiOperator, services: ['api'] }
      ]
    })
  )
  const mesh = await startProcessMesh({ registryArgs: ['--tokens-file', tokensFile, ...(options.registryArgs ?? [])] })
  const upstreams: Upstream[] = []
  let counter = 0
  const api: ConsoleMesh['api'] = async (method, path, body, options = {}) => {
    const answer = await call(method, `${mesh.registryUrl}${path}`, {
      token: CONSOLE_TOKENS[options.token ?? 'admin'],
      ...(body === undefined ? {} : { body }),
      headers: options.headers ?? {}
    })
    return { status: answer.status, json: answer.json }
  }
  // The upstreams heartbeat like real instances (every 5 s of a 30 s lease): lease ages show, nothing expires.
  const beats: { service: string; id: string }[] = []
  const heartbeat = setInterval(() => {
    for (const beat of beats) void api('PUT', `/v1/services/${beat.service}/instances/${beat.id}/heartbeat`).catch(() => {})
  }, 5_000)
  const close = mesh.close
  return Object.assign(mesh, {
    upstreams,
    api,
    async addUpstream(service: string, version: string, metadata: Record<string, string> = {}) {
      const upstream = await startUpstream(version, `${service}-${version}-${++counter}`)
      upstreams.push(upstream)
      const answer = await api('POST', `/v1/services/${service}/instances`, { version, host: '127.0.0.1', port: upstream.port, id: upstream.id, metadata })
      if (answer.status !== 201 && answer.status !== 200) throw new Error(`registration failed: ${JSON.stringify(answer.json)}`)
      beats.push({ service, id: upstream.id })
      return upstream
    },
    async close() {
      clearInterval(heartbeat)
      await close()
      await Promise.all(upstreams.map((upstream) => upstream.close()))
      await rm(dir, { recursive: true, force: true })
    }
  })
}
