import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import {
  connect,
  createServer,
  type ClientHttp2Session,
  type Http2Server,
  type IncomingHttpHeaders,
  type SecureClientSessionOptions,
  type ServerHttp2Session,
  type ServerHttp2Stream
} from 'node:http2'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { TestMesh } from './router-harness.js'

const run = promisify(execFile)

/** An HTTP/2 answer as tests read it. */
export interface H2Answer {
  status: number
  headers: IncomingHttpHeaders
  body: string
  trailers: IncomingHttpHeaders | undefined
  /** RST_STREAM code the stream closed with (0: none) */
  rstCode: number
}

export interface H2RequestOptions {
  method?: string
  headers?: Record<string, string>
  body?: string | Buffer
}

/** One request on an open session; resolves when the stream closes, however it closes. */
export function h2Request(session: ClientHttp2Session, path: string, options: H2RequestOptions = {}): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const method = options.method ?? 'GET'
    // CONNECT names an authority, never a path (RFC 9113 8.5).
    const target = method === 'CONNECT' ? {} : { ':path': path }
    const stream = session.request({ ':method': method, ...target, ...options.headers }, { endStream: options.body === undefined })
    let headers: IncomingHttpHeaders = {}
    let trailers: IncomingHttpHeaders | undefined
    const chunks: Buffer[] = []
    stream.on('response', (received) => (headers = received))
    stream.on('trailers', (received) => (trailers = received))
    stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    stream.on('error', () => {})
    stream.on('close', () => {
      if (headers[':status'] === undefined && stream.rstCode === 0) return reject(new Error('stream closed without an answer'))
      resolve({ status: Number(headers[':status'] ?? 0), headers, body: Buffer.concat(chunks).toString('utf8'), trailers, rstCode: stream.rstCode ?? 0 })
    })
    if (options.body !== undefined) stream.end(options.body)
  })
}

/** A session to `url` (h2c prior knowledge for http:, ALPN h2 for https:), closed with the test. */
export async function openSession(url: string, options: SecureClientSessionOptions = {}): Promise<ClientHttp2Session> {
  const session = connect(url, options)
  session.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve())
    session.once('error', reject)
  })
  return session
}

export function closeSession(session: ClientHttp2Session): Promise<void> {
  if (session.destroyed) return Promise.resolve()
  return new Promise((resolve) => {
    session.once('close', () => resolve())
    session.close()
  })
}

export interface H2Upstream {
  server: Http2Server
  port: number
  version: string
  hits: number
  close(): Promise<void>
}

export type H2StreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, upstream: H2Upstream) => void

/**
 * An h2c server on 127.0.0.1: by default it reads the body and answers JSON naming its
 * version, the path, the headers it saw and the body's length, with a trailer.
 */
export async function startH2cUpstream(version: string, handler?: H2StreamHandler): Promise<H2Upstream> {
  const server = createServer()
  const upstream: H2Upstream = { server, port: 0, version, hits: 0, close: async () => {} }
  server.on('stream', (stream, headers) => {
    upstream.hits++
    stream.on('error', () => {})
    if (handler) return handler(stream, headers, upstream)
    let length = 0
    stream.on('data', (chunk: Buffer) => (length += chunk.length))
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/json' }, { waitForTrailers: true })
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': String(length) }))
      stream.end(JSON.stringify({ version, path: headers[':path'], headers, length }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  upstream.port = (server.address() as AddressInfo).port
  const sessions = new Set<ServerHttp2Session>()
  server.on('session', (session) => {
    sessions.add(session)
    session.once('close', () => sessions.delete(session))
  })
  upstream.close = () =>
    new Promise<void>((resolve) => {
      for (const session of sessions) session.destroy()
      server.close(() => resolve())
    })
  return upstream
}

let instanceCounter = 0

/** Registers an instance listening on `port` and waits until the router routes to it; returns its id. */
export async function registerInstance(mesh: TestMesh, service: string, version: string, port: number): Promise<string> {
  const id = `${service}-${version}-h2-${++instanceCounter}`
  const answer = await mesh.reg.call('POST', `/v1/services/${service}/instances`, { token: 'registrar', body: { version, host: '127.0.0.1', port, id } })
  if (answer.status !== 201 && answer.status !== 200) throw new Error(`registration failed: ${answer.text}`)
  await mesh.waitForRevision(mesh.reg.registry.revision)
  return id
}

export async function deregisterInstance(mesh: TestMesh, service: string, id: string): Promise<void> {
  const answer = await mesh.reg.call('DELETE', `/v1/services/${service}/instances/${id}`, { token: 'registrar' })
  if (answer.status !== 200 && answer.status !== 204) throw new Error(`deregistration failed: ${answer.text}`)
  await mesh.waitForRevision(mesh.reg.registry.revision)
}

export interface CertificateFiles {
  dir: string
  cert: string
  key: string
  /** a new self-signed pair with this common name, written over cert and key (a rename, as certificate tools do) */
  renew(commonName: string): Promise<void>
  remove(): Promise<void>
}

/** A self-signed certificate for localhost and 127.0.0.1 from the openssl CLI, in a temporary directory. */
export async function selfSignedCertificate(commonName: string): Promise<CertificateFiles> {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-tls-'))
  const files: CertificateFiles = {
    dir,
    cert: join(dir, 'cert.pem'),
    key: join(dir, 'key.pem'),
    async renew(name) {
      const next = join(dir, `next-${++instanceCounter}`)
      await opensslPair(name, `${next}-cert.pem`, `${next}-key.pem`)
      const { rename } = await import('node:fs/promises')
      await rename(`${next}-key.pem`, files.key)
      await rename(`${next}-cert.pem`, files.cert)
    },
    remove: () => rm(dir, { recursive: true, force: true })
  }
  await opensslPair(commonName, files.cert, files.key)
  return files
}

async function opensslPair(commonName: string, cert: string, key: string): Promise<void> {
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '1',
    '-subj',
    `/CN=${commonName}`,
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1'
  ])
}

/** curl (/usr/bin/curl) with these arguments: its stdout. */
export async function curl(args: string[]): Promise<string> {
  const { stdout } = await run('curl', ['--silent', '--show-error', '--max-time', '10', ...args])
  return stdout
}
