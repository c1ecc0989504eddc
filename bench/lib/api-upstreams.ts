import { fileURLToPath } from 'node:url'
import { spawnChild, type Child } from './children.js'
import { waitForHttp } from './http.js'
import { freePorts } from './ports.js'

const upstreamScript = fileURLToPath(new URL('../servers/upstream-server.js', import.meta.url))

export interface ApiUpstream {
  id: string
  version: 'v1' | 'v2'
  port: number
  child: Child
}

/**
 * The service `api` as the scenarios that route to it start it: instance api-v1-a (v1)
 * and api-v2-b (v2), each its own upstream-server process. Each is pushed onto `started`
 * as soon as it runs, so the caller stops it even when the next one fails to start.
 */
export async function startApiUpstreams(cpus: string | undefined, started: Child[]): Promise<[ApiUpstream, ApiUpstream]> {
  const [portA, portB] = (await freePorts(2)) as [number, number]
  const upstreams: ApiUpstream[] = []
  for (const [port, version, id] of [
    [portA, 'v1', 'api-v1-a'],
    [portB, 'v2', 'api-v2-b']
  ] as const) {
    const child = spawnChild(`upstream ${id}`, process.execPath, [upstreamScript, String(port), version, id], { cpus })
    started.push(child)
    await waitForHttp(`http://127.0.0.1:${port}/__hits`, `upstream ${id}`, child)
    upstreams.push({ id, version, port, child })
  }
  return upstreams as [ApiUpstream, ApiUpstream]
}
