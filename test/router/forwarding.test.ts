import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import { Readable } from 'node:stream'
import t from 'tap'
import { Client, request } from 'undici'
import { metric, scrape } from '../helpers/prometheus.js'
import { waitFor } from '../helpers/registry-harness.js'
import { startTestMesh, type TestMesh } from '../helpers/router-harness.js'

const MB = 1024 * 1024

type Answer = { status: number; headers: http.IncomingHttpHeaders; json: any; text: string }

/** A request through node:http, which (unlike undici) lets a client send hop-by-hop headers. */
function nodeRequest(url: string, options: { method?: string; headers?: http.OutgoingHttpHeaders } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (text += chunk))
      res.on('error', reject)
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: parseJson(text), text }))
    })
    req.on('error', reject)
    req.end()
  })
}

function parseJson(text: string): any {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

let rawCounter = 0
/** Registers an instance at a port the test controls (nothing listening, or a listener that never accepts). */
async function registerPort(mesh: TestMesh, service: string, version: string, port: number): Promise<string> {
  const id = `${service}-${version}-raw-${++rawCounter}`
  const answer = await mesh.reg.call('POST', `/v1/services/${service}/instances`, { token: 'registrar', body: { version, host: '127.0.0.1', port, id } })
  if (answer.status !== 201) throw new Error(`registration failed: ${answer.text}`)
  await mesh.waitForRevision(mesh.reg.registry.revision)
  return id
}

const answer503 = (req: http.IncomingMessage, res: http.ServerResponse) => {
  req.resume()
  res.statusCode = 503
  res.end('busy')
}

const answer500 = (req: http.IncomingMessage, res: http.ServerResponse) => {
  req.resume()
  res.statusCode = 500
  res.end('broken')
}

void t.test('headers the upstream sees', (t) => {
  void t.test('from an untrusted client', async (t) => {
    const mesh = await startTestMesh()
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3')
    const answer = await nodeRequest(`${mesh.proxyUrl}/api/headers`, {
      headers: {
        connection: 'close, x-hop-me',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        upgrade: 'websocket',
        'proxy-authorization': 'Basic c2VjcmV0',
        'x-hop-me': 'connection-only',
        'x-end-to-end': 'kept',
        'x-forwarded-for': '203.0.113.9',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'evil.example',
        'x-switchyard-service': 'evil',
        'x-switchyard-route': 'evil',
        forwarded: 'for=198.51.100.7'
      }
    })
    t.equal(answer.status, 200)
    const seen = answer.json.headers
    for (const name of ['keep-alive', 'te', 'upgrade', 'proxy-authorization', 'x-hop-me', 'x-switchyard-route', 'forwarded']) {
      t.notOk(name in seen, `${name} is not forwarded`)
    }
    t.notMatch(String(seen.connection ?? ''), /x-hop-me|close/, "the client's Connection header is not forwarded")
    t.equal(seen['x-end-to-end'], 'kept', 'end-to-end headers are')
    t.equal(seen['x-forwarded-for'], '127.0.0.1', "an untrusted client's x-forwarded-for is replaced")
    t.equal(seen['x-forwarded-proto'], 'http')
    t.equal(seen['x-forwarded-host'], new URL(mesh.proxyUrl).host, 'x-forwarded-host is the Host the client sent')
    t.equal(seen['x-switchyard-service'], 'api', "the router's own service header, not the client's")
    t.equal(seen['x-switchyard-version'], 'v1.3')
  })

  void t.test('from a trusted proxy', async (t) => {
    const mesh = await startTestMesh({ trustForwardedFrom: ['127.0.0.1/32'] })
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3')
    const answer = await nodeRequest(`${mesh.proxyUrl}/api/headers`, {
      headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'www.example.com', 'x-switchyard-service': 'evil', forwarded: 'for=1.2.3.4' }
    })
    const seen = answer.json.headers
    t.equal(seen['x-forwarded-for'], '203.0.113.9, 127.0.0.1', 'the chain is kept and the client appended')
    t.equal(seen['x-forwarded-proto'], 'https')
    t.equal(seen['x-forwarded-host'], 'www.example.com')
    t.equal(seen['x-switchyard-service'], 'api', 'internal headers are dropped even from trusted clients')
    t.notOk('forwarded' in seen)
    const plain = await nodeRequest(`${mesh.proxyUrl}/api/headers`)
    t.equal(plain.json.headers['x-forwarded-for'], '127.0.0.1', 'no chain: just the client')
  })

  void t.test('x-request-id', async (t) => {
    const mesh = await startTestMesh()
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3')
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

    const generated = await mesh.get('/api/id')
    t.match(generated.json.headers['x-request-id'], uuid, 'generated when missing')
    t.equal(generated.headers['x-request-id'], generated.json.headers['x-request-id'], 'the client gets the same id')
    t.equal(generated.headers['x-switchyard-version'], 'v1.3', 'the response names the version')
    const other = await mesh.get('/api/id')
    t.not(other.headers['x-request-id'], generated.headers['x-request-id'], 'a new id per request')

    const sane = await mesh.get('/api/id', { 'x-request-id': 'req-42_abc.DEF:1' })
    t.equal(sane.json.headers['x-request-id'], 'req-42_abc.DEF:1', 'a sane id is passed through')
    t.equal(sane.headers['x-request-id'], 'req-42_abc.DEF:1')

    for (const insane of ['x'.repeat(500), 'has space', '']) {
      const replaced = await mesh.get('/api/id', { 'x-request-id': insane })
      t.match(replaced.json.headers['x-request-id'], uuid, `an insane id (${insane.length} chars) is replaced`)
      t.equal(replaced.headers['x-request-id'], replaced.json.headers['x-request-id'])
    }
  })

  void t.test('hop-by-hop headers of the response are not passed to the client', async (t) => {
    const mesh = await startTestMesh()
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3', (req, res) => {
      req.resume()
      res.setHeader('connection', 'keep-alive, x-resp-hop')
      res.setHeader('keep-alive', 'timeout=99')
      res.setHeader('x-resp-hop', 'connection-only')
      res.setHeader('proxy-authenticate', 'Basic realm="x"')
      res.setHeader('upgrade', 'h2c')
      res.setHeader('x-end-to-end', 'yes')
      res.setHeader('x-switchyard-version', 'forged')
      res.end('ok')
    })
    const answer = await nodeRequest(`${mesh.proxyUrl}/api/resp`)
    t.equal(answer.status, 200)
    t.equal(answer.text, 'ok')
    t.notOk('x-resp-hop' in answer.headers, 'a header named in Connection is dropped')
    t.notOk('proxy-authenticate' in answer.headers)
    t.notOk('upgrade' in answer.headers)
    t.not(answer.headers['keep-alive'], 'timeout=99', "the upstream's Keep-Alive is not the client's")
    t.notMatch(String(answer.headers.connection ?? ''), /x-resp-hop/)
    t.equal(answer.headers['x-end-to-end'], 'yes')
    t.equal(answer.headers['x-switchyard-version'], 'v1.3', 'the router names the version that answered')
    t.match(answer.headers['x-request-id'], /^[0-9a-f-]{36}$/)
  })
  t.end()
})

void t.test('route rules', (t) => {
  void t.test('prefix strip and whole-segment prefixes', async (t) => {
    const mesh = await startTestMesh({ routes: [{ match: { pathPrefix: '/api' }, service: 'api', stripPrefix: true }] })
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3')
    for (const [path, expected] of [
      ['/api/x?q=1', '/x?q=1'],
      ['/api', '/'],
      ['/api/', '/'],
      ['/api?q=1', '/?q=1'],
      ['/api/a/b/c', '/a/b/c']
    ] as const) {
      const answer = await mesh.get(path)
      t.equal(answer.json.path, expected, `${path} reaches the upstream as ${expected}`)
    }
    for (const path of ['/apix', '/apix/y', '/ap', '/']) {
      const answer = await mesh.get(path)
      t.equal(answer.status, 404, `${path} matches no rule`)
      t.equal(answer.json.code, 'ROUTE_NOT_FOUND')
    }
  })

  void t.test('without stripPrefix the path is kept', async (t) => {
    const mesh = await startTestMesh()
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3')
    t.equal((await mesh.get('/api/x?q=1')).json.path, '/api/x?q=1')
  })

  void t.test('host matching', async (t) => {
    const mesh = await startTestMesh({
      routes: [
        { match: { host: 'api.example.com' }, service: 'api' },
        { match: { host: '*.example.com' }, service: 'web' }
      ]
    })
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3')
    await mesh.addUpstream('web', 'v2')
    for (const [host, service] of [
      ['api.example.com', 'api'],
      ['API.Example.COM:8080', 'api'],
      ['www.example.com', 'web'],
      ['a.b.example.com:443', 'web'],
      ['example.com', undefined],
      ['evilexample.com', undefined],
      ['api.example.com.evil.org', undefined]
    ] as const) {
      const answer = await mesh.get('/anything', { host })
      if (service === undefined) {
        t.equal(answer.status, 404, `${host} matches no rule`)
        t.equal(answer.json.code, 'ROUTE_NOT_FOUND')
      } else {
        t.equal(answer.status, 200, `${host} is routed`)
        t.ok(String(answer.json.id).startsWith(`${service}-`), `${host} goes to ${service}`)
      }
    }
  })
  t.end()
})

void t.test('timeouts', (t) => {
  void t.test('no response headers within firstByteMs', async (t) => {
    const mesh = await startTestMesh({ timeouts: { firstByteMs: 200 } })
    t.teardown(mesh.close)
    const silent = await mesh.addUpstream('api', 'v1.3', (req) => req.resume())
    const answer = await mesh.get('/api/silent')
    t.equal(answer.status, 504)
    t.equal(answer.json.code, 'UPSTREAM_TIMEOUT')
    t.equal(silent.hits, 1, 'a timed-out request is not retried')
  })

  void t.test('a route timeout', async (t) => {
    const mesh = await startTestMesh({
      routes: [
        { match: { pathPrefix: '/slow' }, service: 'api', timeoutMs: 300 },
        { match: { pathPrefix: '/api' }, service: 'api' }
      ]
    })
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3', (req, res) => {
      req.resume()
      if (req.url?.endsWith('/never')) return
      if (req.url?.endsWith('/headers-only')) {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip', 'x-upstream-only': 'yes' })
        res.flushHeaders()
        return
      }
      if (req.url?.endsWith('/reset')) {
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.flushHeaders()
        setTimeout(() => res.socket?.destroy(), 20)
        return
      }
      if (req.url?.endsWith('/partial')) {
        res.writeHead(200, { 'content-type': 'text/plain' })
        res.write('first part;')
        return
      }
      res.end('fast')
    })
    const fast = await mesh.get('/slow/fast')
    t.equal(fast.status, 200)

    const never = await mesh.get('/slow/never')
    t.equal(never.status, 504, 'no answer at all')
    t.equal(never.json.code, 'ROUTE_TIMEOUT')

    const headersOnly = await mesh.get('/slow/headers-only')
    t.equal(headersOnly.status, 504, 'headers but no body byte: nothing reached the client yet, so a clean 504')
    t.equal(headersOnly.json?.code, 'ROUTE_TIMEOUT')
    t.match(headersOnly.headers['content-type'], /^application\/json/, "the router's answer, with none of the upstream's headers")
    t.notOk('content-encoding' in headersOnly.headers)
    t.notOk('x-upstream-only' in headersOnly.headers)
    t.match(headersOnly.headers['x-request-id'], /^[0-9a-f-]{36}$/)

    const reset = await mesh.get('/api/reset')
    t.equal(reset.status, 502, 'an upstream that drops the connection after its headers: 502')
    t.equal(reset.json?.code, 'UPSTREAM_RESET')

    // Once bytes of the body went out the status cannot change: the client sees a cut-off body.
    const partial = await request(`${mesh.proxyUrl}/slow/partial`)
    t.equal(partial.statusCode, 200)
    let received = ''
    const failure = await (async () => {
      try {
        for await (const chunk of partial.body) received += String(chunk)
        return undefined
      } catch (error) {
        return error as Error
      }
    })()
    t.ok(failure, 'reading the body fails instead of ending normally')
    t.equal(received, 'first part;', 'what was sent before the timeout arrived')
  })

  void t.test('connect timeout against a listener that never accepts', async (t) => {
    // A child process listens with a tiny backlog and then blocks its event loop for good, so
    // nothing ever accepts: once the kernel's accept queue is full, new connects hang.
    const child: ChildProcess = spawn(
      process.execPath,
      [
        '-e',
        `const net = require('node:net'); const fs = require('node:fs');
         const server = net.createServer({ pauseOnConnect: true }, () => {});
         server.listen({ host: '127.0.0.1', port: 0, backlog: 1 }, () => {
           fs.writeSync(1, server.address().port + '\\n');
           Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
         });`
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] }
    )
    t.teardown(() => {
      child.kill('SIGKILL')
    })
    const port = await new Promise<number>((resolve, reject) => {
      let out = ''
      child.stdout?.on('data', (chunk: Buffer) => {
        out += String(chunk)
        if (out.includes('\n')) resolve(Number(out.trim()))
      })
      child.once('exit', (code) => reject(new Error(`listener exited with ${code}`)))
    })
    const fillers: net.Socket[] = []
    t.teardown(() => {
      for (const socket of fillers) socket.destroy()
    })
    let hung = false
    for (let i = 0; i < 32 && !hung; i++) {
      const socket = net.connect({ host: '127.0.0.1', port })
      socket.on('error', () => {})
      fillers.push(socket)
      // the only wait with a fixed bound: deciding that a connect hangs
      hung = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(true), 1000)
        socket.once('connect', () => {
          clearTimeout(timer)
          resolve(false)
        })
      })
    }
    t.ok(hung, `a connect hangs once ${fillers.length - 1} connections fill the accept queue`)
    // A few more, unawaited: should that wait have been a stall of this process rather than a
    // full queue, these fill it before the router connects (loopback handshakes are immediate).
    for (let i = 0; i < 4; i++) fillers.push(net.connect({ host: '127.0.0.1', port }).on('error', () => {}))

    const mesh = await startTestMesh({ timeouts: { connectMs: 200, firstByteMs: 5_000 } })
    t.teardown(mesh.close)
    await registerPort(mesh, 'api', 'v1.3', port)
    const answer = await mesh.get('/api/x')
    t.equal(answer.status, 504)
    t.equal(answer.json.code, 'UPSTREAM_CONNECT_TIMEOUT')
    t.ok(metric(await scrape(mesh.adminUrl), 'switchyard_upstream_connect_errors_total', { service: 'api', version: 'v1.3' }) >= 1, 'counted as a connect error')
  })
  t.end()
})

void t.test('retries', (t) => {
  void t.test('a 503 from one instance is retried on the other for GET', async (t) => {
    const mesh = await startTestMesh()
    t.teardown(mesh.close)
    const good = await mesh.addUpstream('api', 'v1.3')
    const bad = await mesh.addUpstream('api', 'v1.3', answer503)
    for (let i = 0; i < 20; i++) {
      const answer = await mesh.get('/api/r')
      t.equal(answer.status, 200, `GET ${i} succeeds`)
    }
    t.ok(bad.hits > 0, `the 503 instance was tried (${bad.hits} times)`)
    t.equal(good.hits, 20)
    t.equal(metric(await scrape(mesh.adminUrl), 'switchyard_retries_total', { service: 'api', version: 'v1.3' }), bad.hits, 'one retry per 503')
  })

  void t.test('a POST is not retried on 503', async (t) => {
    const mesh = await startTestMesh()
    t.teardown(mesh.close)
    const first = await mesh.addUpstream('api', 'v1.3', answer503)
    const second = await mesh.addUpstream('api', 'v1.3', answer503)
    for (let i = 0; i < 3; i++) {
      const response = await request(`${mesh.proxyUrl}/api/p`, { method: 'POST' })
      t.equal(response.statusCode, 503, 'the client sees the 503')
      t.equal(await response.body.text(), 'busy', "it is the upstream's answer")
    }
    t.equal(first.hits + second.hits, 3, 'one attempt per POST')
    t.equal(metric(await scrape(mesh.adminUrl), 'switchyard_retries_total'), 0)
    const get = await mesh.get('/api/g')
    t.equal(get.status, 503, 'a GET failing everywhere still ends in 503')
    t.ok(first.hits + second.hits >= 5, 'but the GET was retried')
    t.ok(metric(await scrape(mesh.adminUrl), 'switchyard_retries_total') >= 1)
  })

  void t.test('connection refused is retried for GET and for POST without a body', async (t) => {
    const mesh = await startTestMesh()
    t.teardown(mesh.close)
    const good = await mesh.addUpstream('api', 'v1.3')
    await registerPort(mesh, 'api', 'v1.3', await freePort())
    for (let i = 0; i < 10; i++) {
      const get = await mesh.get('/api/g')
      t.equal(get.status, 200, `GET ${i}`)
      const post = await request(`${mesh.proxyUrl}/api/p`, { method: 'POST' })
      await post.body.dump()
      t.equal(post.statusCode, 200, `POST ${i}`)
    }
    t.equal(good.hits, 20)
    const text = await scrape(mesh.adminUrl)
    t.ok(metric(text, 'switchyard_upstream_connect_errors_total', { service: 'api', version: 'v1.3' }) > 0, 'connect errors are counted')
    t.equal(metric(text, 'switchyard_retries_total'), metric(text, 'switchyard_upstream_connect_errors_total'), 'each refused connect was retried')
  })

  void t.test('a POST with a body meeting a refused connection', (t) => {
    void t.test('is sent whole to the other instance: a body not yet read is replayable', async (t) => {
      // The router hands undici a lazy view of the body: a refused connection never read a
      // byte of it, so the retry sends it whole to the healthy instance.
      const mesh = await startTestMesh()
      t.teardown(mesh.close)
      const good = await mesh.addUpstream('api', 'v1.3', (req, res) => {
        let bytes = 0
        req.on('data', (chunk: Buffer) => (bytes += chunk.length))
        req.on('end', () => res.end(JSON.stringify({ bytes })))
      })
      await registerPort(mesh, 'api', 'v1.3', await freePort())
      for (let i = 0; i < 20; i++) {
        const response = await request(`${mesh.proxyUrl}/api/p`, { method: 'POST', body: 'x'.repeat(1000) })
        t.equal(response.statusCode, 200)
        t.same(await response.body.json(), { bytes: 1000 }, 'the whole body reached the good instance')
      }
      t.equal(good.hits, 20, 'the good instance answered every request')
      const text = await scrape(mesh.adminUrl)
      const refused = metric(text, 'switchyard_upstream_connect_errors_total')
      t.ok(refused > 0, `the dead instance was tried (${refused} refused connections)`)
      t.equal(metric(text, 'switchyard_retries_total'), refused, 'each refused attempt was retried elsewhere')
    })

    void t.test('does not leave the keep-alive connection stuck behind the unread body', async (t) => {
      const mesh = await startTestMesh({
        routes: [
          { match: { pathPrefix: '/dead' }, service: 'dead' },
          { match: { pathPrefix: '/api' }, service: 'api' }
        ]
      })
      t.teardown(mesh.close)
      await mesh.addUpstream('api', 'v1.3')
      await registerPort(mesh, 'dead', 'v1', await freePort())
      for (const size of [1000, 200_000, 2_000_000]) {
        // one connection, so the GET follows the POST on the same socket when it stays open
        const client = new Client(mesh.proxyUrl, { headersTimeout: 10_000 })
        t.teardown(() => client.destroy())
        const post = await client.request({ path: '/dead/upload', method: 'POST', body: 'x'.repeat(size) })
        t.equal(post.statusCode, 502, `a ${size} byte POST: 502`)
        t.equal(((await post.body.json()) as any).code, 'UPSTREAM_UNREACHABLE')
        // without the fix this GET waited forever behind the rest of the POST body
        const get = await client.request({ path: '/api/next', method: 'GET' })
        await get.body.dump()
        t.equal(get.statusCode, 200, `the next request on that client is answered (${size} bytes before)`)
        await client.close()
      }
    })
    t.end()
  })

  void t.test('retry budget', (t) => {
    const noEjection = { consecutiveFailures: 100_000 }

    void t.test('a zero budget allows no retry: connect failures reach the client', async (t) => {
      const mesh = await startTestMesh({ retries: { budgetRatio: 0, minPerSecond: 0 }, outlierDetection: noEjection })
      t.teardown(mesh.close)
      await mesh.addUpstream('api', 'v1.3')
      await registerPort(mesh, 'api', 'v1.3', await freePort())
      let failed = 0
      for (let i = 0; i < 20; i++) {
        const answer = await mesh.get('/api/b')
        if (answer.status === 502) {
          failed++
          t.equal(answer.json.code, 'UPSTREAM_UNREACHABLE')
        } else t.equal(answer.status, 200)
      }
      t.ok(failed > 0, `${failed} of 20 requests failed`)
      const text = await scrape(mesh.adminUrl)
      t.equal(metric(text, 'switchyard_retries_total'), 0)
      t.equal(metric(text, 'switchyard_retry_budget_exhausted_total', { service: 'api' }), failed, 'every refused retry is counted')
    })

    void t.test('a zero budget allows no retry: 503 answers reach the client', async (t) => {
      const mesh = await startTestMesh({ retries: { budgetRatio: 0, minPerSecond: 0 }, outlierDetection: noEjection })
      t.teardown(mesh.close)
      await mesh.addUpstream('api', 'v1.3')
      const bad = await mesh.addUpstream('api', 'v1.3', answer503)
      let failed = 0
      for (let i = 0; i < 20; i++) {
        const answer = await mesh.get('/api/b')
        if (answer.status === 503) failed++
      }
      t.ok(failed > 0, `${failed} of 20 requests failed`)
      t.equal(failed, bad.hits)
      const text = await scrape(mesh.adminUrl)
      t.equal(metric(text, 'switchyard_retries_total'), 0)
      t.equal(metric(text, 'switchyard_retry_budget_exhausted_total', { service: 'api' }), failed, 'every refused retry is counted')
    })

    void t.test('a budget of one retry per window: after the first retry no more', async (t) => {
      // minPerSecond 0.1 over the 10 s window is exactly one retry
      const mesh = await startTestMesh({ retries: { budgetRatio: 0, minPerSecond: 0.1 }, outlierDetection: noEjection })
      t.teardown(mesh.close)
      await mesh.addUpstream('api', 'v1.3')
      await registerPort(mesh, 'api', 'v1.3', await freePort())
      let failed = 0
      for (let i = 0; i < 20; i++) {
        const answer = await mesh.get('/api/b')
        if (answer.status === 502) failed++
      }
      const text = await scrape(mesh.adminUrl)
      const refused = metric(text, 'switchyard_upstream_connect_errors_total')
      t.ok(refused >= 2, `the dead instance was tried ${refused} times`)
      t.equal(metric(text, 'switchyard_retries_total'), 1, 'exactly one retry')
      t.equal(failed, refused - 1, 'every other refused connect reached the client')
      t.equal(metric(text, 'switchyard_retry_budget_exhausted_total', { service: 'api' }), failed)
    })
    t.end()
  })
  t.end()
})

void t.test('outlier detection', (t) => {
  void t.test('five failures in a row eject an instance', async (t) => {
    const mesh = await startTestMesh()
    t.teardown(mesh.close)
    const good = await mesh.addUpstream('api', 'v1.3')
    const bad = await mesh.addUpstream('api', 'v1.3', answer500)
    for (let i = 0; i < 500 && bad.hits < 5; i++) await mesh.get('/api/o')
    t.equal(bad.hits, 5)
    const routes = await mesh.routes()
    const instances = routes.services.find((s: any) => s.name === 'api').versions.find((v: any) => v.name === 'v1.3').instances
    t.equal(instances.find((i: any) => i.id === bad.id).ejected, true, '/routes shows the ejection')
    t.equal(instances.find((i: any) => i.id === good.id).ejected, false)
    t.equal(metric(await scrape(mesh.adminUrl), 'switchyard_ejections_total', { service: 'api', version: 'v1.3' }), 1)
    const goodBefore = good.hits
    for (let i = 0; i < 40; i++) t.equal((await mesh.get('/api/o')).status, 200)
    t.equal(bad.hits, 5, 'no traffic while ejected')
    t.equal(good.hits, goodBefore + 40)
  })

  void t.test('at most half of the instances are ejected', async (t) => {
    const mesh = await startTestMesh()
    t.teardown(mesh.close)
    const a = await mesh.addUpstream('api', 'v1.3', answer500)
    const b = await mesh.addUpstream('api', 'v1.3', answer500)
    for (let i = 0; i < 40; i++) t.equal((await mesh.get('/api/o')).status, 500)
    t.equal(a.hits + b.hits, 40, '500 is not retried')
    const routes = await mesh.routes()
    const instances = routes.services.find((s: any) => s.name === 'api').versions.find((v: any) => v.name === 'v1.3').instances
    t.equal(instances.filter((i: any) => i.ejected).length, 1, 'one of two ejected (50% cap)')
    t.equal(metric(await scrape(mesh.adminUrl), 'switchyard_ejections_total'), 1)
  })
  t.end()
})

void t.test('streaming', (t) => {
  function memorySampler() {
    const baseline = process.memoryUsage().rss
    let peak = baseline
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss)
    }, 50)
    return {
      stop() {
        clearInterval(timer)
        peak = Math.max(peak, process.memoryUsage().rss)
        return { baseline, peak, growth: peak - baseline }
      }
    }
  }

  /** 100 MB in 64 KB chunks whose bytes depend on the chunk number, generated on demand. */
  function* pattern(total: number): Generator<Buffer> {
    const size = 64 * 1024
    for (let sent = 0, n = 0; sent < total; sent += size, n++) yield Buffer.alloc(Math.min(size, total - sent), n % 251)
  }

  function expectedDigest(total: number): string {
    const hash = createHash('sha256')
    for (const chunk of pattern(total)) hash.update(chunk)
    return hash.digest('hex')
  }

  const total = 100 * MB
  const digest = expectedDigest(total)

  void t.test('a 100 MB upload arrives complete without being buffered', async (t) => {
    const mesh = await startTestMesh()
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3', (req, res) => {
      let bytes = 0
      const hash = createHash('sha256')
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length
        hash.update(chunk)
      })
      req.on('end', () => res.end(JSON.stringify({ bytes, digest: hash.digest('hex'), te: req.headers['transfer-encoding'] ?? null, cl: req.headers['content-length'] ?? null })))
    })
    for (const withLength of [true, false]) {
      const memory = memorySampler()
      const response = await request(`${mesh.proxyUrl}/api/upload`, {
        method: 'POST',
        headers: withLength ? { 'content-length': String(total) } : {},
        body: Readable.from(pattern(total), { objectMode: false })
      })
      const body = await response.body.json()
      const { growth } = memory.stop()
      t.equal(response.statusCode, 200)
      t.same(
        body,
        { bytes: total, digest, te: withLength ? null : 'chunked', cl: withLength ? String(total) : null },
        `every byte arrived (${withLength ? 'content-length' : 'chunked'})`
      )
      t.ok(growth < 64 * MB, `rss grew ${(growth / MB).toFixed(1)} MB (< 64 MB)`)
    }
  })

  void t.test('a 100 MB download arrives complete without being buffered', async (t) => {
    const mesh = await startTestMesh()
    t.teardown(mesh.close)
    await mesh.addUpstream('api', 'v1.3', (req, res) => {
      req.resume()
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      Readable.from(pattern(total), { objectMode: false }).pipe(res)
    })
    const memory = memorySampler()
    const response = await request(`${mesh.proxyUrl}/api/download`)
    const hash = createHash('sha256')
    let bytes = 0
    for await (const chunk of response.body) {
      bytes += (chunk as Buffer).length
      hash.update(chunk as Buffer)
    }
    const { growth } = memory.stop()
    t.equal(response.statusCode, 200)
    t.equal(bytes, total, 'every byte arrived')
    t.equal(hash.digest('hex'), digest, 'in order')
    t.ok(growth < 64 * MB, `rss grew ${(growth / MB).toFixed(1)} MB (< 64 MB)`)
  })

  void t.test('a slow download arrives chunk by chunk', async (t) => {
    const mesh = await startTestMesh()
    t.teardown(mesh.close)
    let written = 0
    let clientSawFirst = false
    await mesh.addUpstream('api', 'v1.3', (req, res) => {
      req.resume()
      res.writeHead(200, { 'content-type': 'text/plain' })
      const timer = setInterval(() => {
        // The last chunk waits until the client has the first one: a buffering router would stall here.
        if (written === 9 && !clientSawFirst) return
        res.write(`chunk-${written};`)
        written++
        if (written === 10) {
          clearInterval(timer)
          res.end()
        }
      }, 20)
      res.on('close', () => clearInterval(timer))
    })
    const response = await request(`${mesh.proxyUrl}/api/slow`)
    let writtenAtFirst = -1
    let text = ''
    const reading = (async () => {
      for await (const chunk of response.body) {
        if (writtenAtFirst < 0) {
          writtenAtFirst = written
          clientSawFirst = true
        }
        text += String(chunk)
      }
    })()
    await waitFor(() => (clientSawFirst ? true : undefined), 'the first chunk at the client')
    await reading
    t.ok(writtenAtFirst >= 1 && writtenAtFirst < 10, `the client saw data when the upstream had written ${writtenAtFirst} of 10 chunks`)
    t.equal(text, Array.from({ length: 10 }, (_, i) => `chunk-${i};`).join(''), 'all chunks, in order')
  })
  t.end()
})
