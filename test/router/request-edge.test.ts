import net from 'node:net'
import t, { type Test } from 'tap'
import { startTestMesh, type TestMesh } from '../helpers/router-harness.js'

/**
 * What the router's edge does with a request before choosing anything, checked with raw
 * bytes on a socket (clients would tidy most of these up before sending): request targets
 * made canonical or refused (router/http/request-target.ts), Host lines, and the shapes
 * of request smuggling.
 */

/** Writes raw bytes to the proxy port and reads one response (until content-length is complete or the socket closes). */
function rawExchange(url: string, bytes: string): Promise<{ status: number; headers: Record<string, string>; body: string; raw: string }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) })
    let data = Buffer.alloc(0)
    let done = false
    const finish = () => {
      if (done) return
      const text = data.toString('latin1')
      const end = text.indexOf('\r\n\r\n')
      if (end < 0) {
        done = true
        socket.destroy()
        reject(new Error(`no complete response: ${JSON.stringify(text)}`))
        return
      }
      const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n')
      const headers: Record<string, string> = {}
      for (const line of lines) {
        const colon = line.indexOf(':')
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
      }
      done = true
      socket.destroy()
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: text.slice(end + 4), raw: text })
    }
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk])
      const text = data.toString('latin1')
      const end = text.indexOf('\r\n\r\n')
      if (end < 0) return
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, end + 2))
      if (length && data.length - (end + 4) >= Number(length[1])) finish()
    })
    socket.on('error', () => finish())
    socket.on('close', () => finish())
    socket.write(bytes)
  })
}

/** The JSON body of an answer; undefined when it is not JSON. */
function jsonOf(text: string): any {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** A GET with this request target (and these header lines) on a raw socket. */
function rawGet(mesh: TestMesh, target: string, headerLines = 'Host: x\r\n') {
  return rawExchange(mesh.proxyUrl, `GET ${target} HTTP/1.1\r\n${headerLines}Connection: close\r\n\r\n`)
}

/** api under /api, admin under /admin and for the host admin.example (tried first). */
async function twoServiceMesh(t: Test, paths?: Record<string, unknown>): Promise<TestMesh> {
  const mesh = await startTestMesh({
    routes: [
      { match: { host: 'admin.example' }, service: 'admin' },
      { match: { pathPrefix: '/api' }, service: 'api' },
      { match: { pathPrefix: '/admin' }, service: 'admin' }
    ],
    ...(paths ? { paths } : {})
  })
  t.teardown(mesh.close)
  await mesh.addUpstream('api', 'v1')
  await mesh.addUpstream('admin', 'v1')
  return mesh
}

const hitsOf = (mesh: TestMesh) => mesh.upstreams.reduce((sum, upstream) => sum + upstream.hits, 0)

void t.test('paths are made canonical before a rule matches them, and forwarded so', async (t) => {
  const mesh = await twoServiceMesh(t)
  const cases: [target: string, service: string, path: string][] = [
    ['/api/../admin', 'admin', '/admin'],
    ['/api/%2e%2e/admin', 'admin', '/admin'],
    ['/api/%2E%2E/admin', 'admin', '/admin'],
    ['/api/.%2e/admin/x', 'admin', '/admin/x'],
    ['/api\\..\\admin', 'admin', '/admin'],
    ['//api//x', 'api', '/api/x'],
    ['/../api/x', 'api', '/api/x'],
    ['/api/./x/../y?q=/../z&r=%2e', 'api', '/api/y?q=/../z&r=%2e'],
    ['/%61pi/x', 'api', '/api/x'],
    ['/api/..%2Fadmin', 'api', '/api/..%2Fadmin'],
    ['/api/caf%C3%A9', 'api', '/api/caf%C3%A9']
  ]
  for (const [target, service, path] of cases) {
    const answer = await rawGet(mesh, target)
    const body = jsonOf(answer.body)
    t.equal(answer.status, 200, `${target}: 200`)
    t.ok(String(body?.id).startsWith(`${service}-`), `${target}: routed to ${service}`)
    t.equal(body?.path, path, `${target}: the upstream sees ${path}`)
  }
})

void t.test('absolute-form becomes origin-form, its authority the host (RFC 9112 3.2.2)', async (t) => {
  const mesh = await twoServiceMesh(t)
  const viaApi = await rawGet(mesh, 'http://evil.example/api/abs?q=1', 'Host: x\r\n')
  const api = jsonOf(viaApi.body)
  t.equal(viaApi.status, 200)
  t.ok(String(api?.id).startsWith('api-'), 'matched by path')
  t.equal(api?.path, '/api/abs?q=1', 'the upstream sees an origin-form path')
  t.equal(api?.headers.host, 'evil.example', "the target's authority replaces the Host header")
  t.equal(api?.headers['x-forwarded-host'], 'evil.example')

  const viaHost = await rawGet(mesh, 'HTTP://admin.example:8080/../x', 'Host: api.example\r\n')
  const admin = jsonOf(viaHost.body)
  t.equal(viaHost.status, 200)
  t.ok(String(admin?.id).startsWith('admin-'), "the host rule matches the target's authority, not the Host header")
  t.equal(admin?.path, '/x', 'and the path is normalised too')
  t.equal(admin?.headers.host, 'admin.example:8080')

  const noHostHeader = await rawExchange(mesh.proxyUrl, 'GET http://h.example/api/old HTTP/1.0\r\n\r\n')
  t.equal(noHostHeader.status, 200, 'HTTP/1.0 without Host: the authority is the host')
  t.equal(jsonOf(noHostHeader.body)?.headers.host, 'h.example')

  const before = hitsOf(mesh)
  const nowhere = await rawGet(mesh, 'http://evil.example/abs')
  t.equal(nowhere.status, 404, 'a path no rule matches')
  t.equal(jsonOf(nowhere.body)?.code, 'ROUTE_NOT_FOUND')
  t.equal(hitsOf(mesh), before, 'and nothing forwarded')
})

void t.test('targets that cannot be made canonical: 400 INVALID_PATH, nothing forwarded', async (t) => {
  const mesh = await twoServiceMesh(t)
  const cases: [target: string, message: string][] = [
    ['/api/a%zz', 'the path has a "%" that is not followed by two hex digits'],
    ['/api/a%', 'the path has a "%" that is not followed by two hex digits'],
    ['/api/%00', 'the path has an encoded NUL (%00)'],
    ['/api/x#frag', 'a request target cannot carry a fragment (#)'],
    ['*', 'asterisk-form (OPTIONS *) is not routed'],
    ['http://user@admin.example/api', 'an absolute-form target cannot carry userinfo (user@host)'],
    ['ftp://h/api', 'the request target is neither a path nor an http(s) URI'],
    ['http:///api', 'an absolute-form target must name a valid host']
  ]
  for (const [target, message] of cases) {
    const answer = await rawGet(mesh, target)
    t.equal(answer.status, 400, `${target}: 400`)
    t.same(jsonOf(answer.body), { code: 'INVALID_PATH', message }, `${target}: INVALID_PATH`)
    t.match(answer.headers['x-request-id'], /^[0-9a-f-]{36}$/, `${target}: with a request id`)
  }
  const twoHosts = await rawGet(mesh, '/api/x', 'Host: api.example\r\nHost: admin.example\r\n')
  t.equal(twoHosts.status, 400, 'two Host lines: 400')
  t.same(jsonOf(twoHosts.body), { code: 'MALFORMED_REQUEST', message: 'more than one Host header' })
  t.equal(hitsOf(mesh), 0, 'the upstreams saw none of them')
})

void t.test('the path options', (t) => {
  void t.test('normalize and mergeSlashes off: the path as sent', async (t) => {
    const mesh = await twoServiceMesh(t, { normalize: false, mergeSlashes: false })
    for (const target of ['/api/../admin', '/api//x', '/api/%2e%2e/a%zz']) {
      const answer = await rawGet(mesh, target)
      t.equal(answer.status, 200, `${target}: 200`)
      t.equal(jsonOf(answer.body)?.path, target, `${target}: forwarded untouched`)
    }
  })

  void t.test('escapedSlashes reject', async (t) => {
    const mesh = await twoServiceMesh(t, { escapedSlashes: 'reject' })
    const answer = await rawGet(mesh, '/api/..%2Fadmin')
    t.equal(answer.status, 400)
    t.same(jsonOf(answer.body), { code: 'INVALID_PATH', message: 'the path has an encoded slash (%2F or %5C)' })
    t.equal(hitsOf(mesh), 0)
  })

  void t.test('escapedSlashes unescape', async (t) => {
    const mesh = await twoServiceMesh(t, { escapedSlashes: 'unescape' })
    const answer = await rawGet(mesh, '/api/..%2Fadmin%5cx')
    t.equal(answer.status, 200)
    t.ok(String(jsonOf(answer.body)?.id).startsWith('admin-'), 'the decoded separators count')
    t.equal(jsonOf(answer.body)?.path, '/admin/x')
  })
  t.end()
})

void t.test('request smuggling is refused at the edge', async (t) => {
  const mesh = await startTestMesh()
  t.teardown(mesh.close)
  const upstream = await mesh.addUpstream('api', 'v1.3')
  const cases: [name: string, bytes: string, code: string][] = [
    ['Content-Length with Transfer-Encoding', 'POST /api/s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 'REQUEST_SMUGGLING'],
    ['Transfer-Encoding: gzip, chunked', 'POST /api/s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', 'REQUEST_SMUGGLING'],
    ['two different Content-Length headers', 'POST /api/s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!', 'REQUEST_SMUGGLING'],
    ['the same Content-Length twice', 'POST /api/s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello', 'REQUEST_SMUGGLING'],
    ['obfuscated "Transfer-Encoding : chunked"', 'POST /api/s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\nabc', 'MALFORMED_REQUEST'],
    ['Transfer-Encoding twice', 'POST /api/s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n', 'REQUEST_SMUGGLING'],
    ['obs-fold (a header line continued on the next)', 'POST /api/s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nX-Folded: a\r\n b\r\n\r\nhello', 'MALFORMED_REQUEST'],
    ['obs-fold of Transfer-Encoding', 'POST /api/s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n ,chunked\r\n\r\n0\r\n\r\n', 'MALFORMED_REQUEST']
  ]
  for (const [name, bytes, code] of cases) {
    const answer = await rawExchange(mesh.proxyUrl, bytes)
    t.equal(answer.status, 400, `${name}: 400`)
    t.equal(jsonOf(answer.body)?.code, code, `${name}: ${code}`)
    t.equal(answer.headers.connection, 'close', `${name}: the connection is closed (its remaining bytes cannot be trusted)`)
  }
  t.equal(upstream.hits, 0, 'the upstream saw none of them')
  const fine = await rawExchange(mesh.proxyUrl, 'POST /api/s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello')
  t.equal(fine.status, 200, 'a well-formed request on a raw socket goes through')
  t.equal(upstream.hits, 1)
})
