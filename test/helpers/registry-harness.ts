import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import type { Dispatcher } from 'undici'
import { buildRegistryApp, redactedPaths } from '../../registry/app.js'
import { TokenSet, type Role } from '../../registry/access/tokens.js'
import { Registry, type RegistryOptions } from '../../registry/registry.js'
import { FileStore } from '../../registry/store/file-store.js'
import { FakeClock } from './fake-clock.js'
import { call } from './http.js'

/** Tokens of every role, as a test registry accepts them. */
export const TOKENS: Record<Role | 'apiOperator' | 'apiRegistrar', string> = {
  reader: 'reader-token-0123456789abcdef',
  registrar: 'registrar-token-0123456789abcdef',
  operator: 'operator-token-0123456789abcdef',
  router: 'router-token-0123456789abcdef',
  admin: 'admin-token-0123456789abcdef',
  apiOperator: 'api-operator-token-0123456789abcdef',
  apiRegistrar: 'api-registrar-token-0123456789abcdef'
}

export function testTokenSet(): TokenSet {
  const tokens = new TokenSet()
  tokens.add({ name: 'reader', role: 'reader', token: TOKENS.reader })
  tokens.add({ name: 'registrar', role: 'registrar', token: TOKENS.registrar })
  tokens.add({ name: 'operator', role: 'operator', token: TOKENS.operator })
  tokens.add({ name: 'router', role: 'router', token: TOKENS.router })
  tokens.add({ name: 'admin', role: 'admin', token: TOKENS.admin })
  tokens.add({ name: 'api-operator', role: 'operator', token: TOKENS.apiOperator, services: ['api'] })
  tokens.add({ name: 'api-registrar', role: 'registrar', token: TOKENS.apiRegistrar, services: ['api'] })
  return tokens
}

export interface TestRegistry {
  app: FastifyInstance
  registry: Registry
  clock: FakeClock
  url: string
  dataDir: string
  /** every log line the app wrote */
  logs: string[]
  /** an HTTP call to the listening registry; `token` is a role name from TOKENS or a raw value */
  call(
    method: string,
    path: string,
    options?: { token?: keyof typeof TOKENS | null; body?: unknown; rawBody?: string; headers?: Record<string, string> }
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; json: any; text: string }>
  /** closes the app and store (the data dir stays until `destroy`) */
  close(): Promise<void>
  destroy(): Promise<void>
}

/**
 * A real registry on 127.0.0.1 with a port of its own, a file store in a fresh
 * temporary directory and a fake clock. Use `t.teardown(reg.destroy)`.
 */
export async function startTestRegistry(
  options: Partial<Omit<RegistryOptions, 'store' | 'clock'>> & {
    dataDir?: string
    clock?: FakeClock
    heartbeatMs?: number
    port?: number
    /** rollouts advance only when a test calls app.rollouts.tick(), unless this is set */
    rolloutTickMs?: number
  } = {}
): Promise<TestRegistry> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'switchyard-registry-')))
  const clock = options.clock ?? new FakeClock()
  const logs: string[] = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk))
      done()
    }
  })
  const registry = await Registry.open({ ...options, store: new FileStore({ dataDir }), clock: clock.now })
  const app = buildRegistryApp({
    registry,
    tokens: testTokenSet(),
    logger: { level: 'trace', stream, redact: { paths: redactedPaths, censor: '[redacted]' } },
    watch: { heartbeatMs: options.heartbeatMs ?? 60_000 },
    rollouts: { tickMs: options.rolloutTickMs ?? 0 }
  })
  await app.listen({ host: '127.0.0.1', port: options.port ?? 0 })
  const address = app.server.address()
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await app.close()
    await registry.close()
  }
  return {
    app,
    registry,
    clock,
    url,
    dataDir,
    logs,
    call(method, path, { token = 'admin', ...rest } = {}) {
      return call(method as Dispatcher.HttpMethod, `${url}${path}`, { ...rest, ...(token === null ? {} : { token: TOKENS[token] }) })
    },
    close,
    async destroy() {
      await close()
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true })
    }
  }
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 10_000, intervalMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
