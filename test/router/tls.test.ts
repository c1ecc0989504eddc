import { readFile, writeFile } from 'node:fs/promises'
import { connect as tlsConnect, type PeerCertificate } from 'node:tls'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { parseProxyConfig, parseRouterSettings, tlsFilesOf } from '../../router/config.js'
import { CertificateWatch, loadKeyPair } from '../../router/http/tls-certificates.js'
import { startRouter } from '../../router/server.js'
import { ConfigError } from '../../core/config.js'
import { closeSession, curl, h2Request, openSession, selfSignedCertificate, type CertificateFiles } from '../helpers/h2-harness.js'
import { freePort, routerArgs, spawnNode } from '../helpers/processes.js'
import { startTestRegistry, TOKENS, waitFor } from '../helpers/registry-harness.js'
import { addWebSocketUpstream, startTestMesh, type TestMesh } from '../helpers/router-harness.js'

async function certificate(t: Test, commonName: string): Promise<CertificateFiles> {
  const files = await selfSignedCertificate(commonName)
  t.teardown(files.remove)
  return files
}

async function tlsMesh(t: Test, files: CertificateFiles): Promise<TestMesh> {
  const mesh = await startTestMesh({ drainTimeoutMs: 2_000 }, { tlsCert: files.cert, tlsKey: files.key })
  t.teardown(mesh.close)
  await mesh.addUpstream('api', 'v1')
  return mesh
}

/** What a new TLS connection to the router is offered: the certificate's common name and the protocol ALPN chose. */
function handshake(url: string, ca: Buffer, alpn: string[]): Promise<{ commonName: string; protocol: string | false }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: hostname, port: Number(port), ca, ALPNProtocols: alpn, servername: 'localhost' }, () => {
      const peer: PeerCertificate = socket.getPeerCertificate()
      resolve({ commonName: String(peer.subject.CN), protocol: socket.alpnProtocol ?? false })
      socket.end()
    })
    socket.once('error', reject)
  })
}

void t.test('TLS on the proxy port: ALPN h2 and http/1.1, with curl and with Node', async (t) => {
  const files = await certificate(t, 'first')
  const mesh = await tlsMesh(t, files)
  t.match(mesh.proxyUrl, /^https:\/\/127\.0\.0\.1:\d+$/)
  const ca = await readFile(files.cert)
  t.same(await handshake(mesh.proxyUrl, ca, ['h2', 'http/1.1']), { commonName: 'first', protocol: 'h2' }, 'h2 when the client offers it')
  t.same(await handshake(mesh.proxyUrl, ca, ['http/1.1']), { commonName: 'first', protocol: 'http/1.1' })
  t.same(await handshake(mesh.proxyUrl, ca, []), { commonName: 'first', protocol: false }, 'no ALPN: HTTP/1.1')

  const h2 = await curl(['--http2', '--cacert', files.cert, '--include', `${mesh.proxyUrl}/api/secure`])
  t.match(h2, /^HTTP\/2 200/)
  t.match(h2, /"x-forwarded-proto":"https"/, 'the upstream learns the client came over TLS')
  const h1 = await curl(['--http1.1', '--cacert', files.cert, '--include', `${mesh.proxyUrl}/api/secure`])
  t.match(h1, /^HTTP\/1\.1 200/)
  t.match(h1, /"x-forwarded-proto":"https"/)

  const client = await openSession(mesh.proxyUrl, { ca })
  t.teardown(() => closeSession(client))
  const answer = await h2Request(client, '/api/node')
  t.equal(answer.status, 200)
  t.equal(answer.headers['x-switchyard-version'], 'v1')
})

void t.test('WebSocket over TLS (wss://)', async (t) => {
  const files = await certificate(t, 'first')
  const mesh = await startTestMesh({ drainTimeoutMs: 2_000 }, { tlsCert: files.cert, tlsKey: files.key })
  t.teardown(mesh.close)
  await addWebSocketUpstream(mesh, 'api', 'v1')
  const socket = new WebSocket(`${mesh.proxyUrl.replace(/^https/, 'wss')}/api/socket`, { ca: await readFile(files.cert) })
  let version: string | undefined
  socket.once('upgrade', (response) => (version = String(response.headers['x-switchyard-version'])))
  await new Promise((resolve, reject) => {
    socket.once('open', resolve)
    socket.once('error', reject)
  })
  const echoed = new Promise<string>((resolve) => socket.once('message', (data: Buffer) => resolve(data.toString())))
  socket.send('over tls')
  t.equal(await echoed, 'over tls')
  t.equal(version, 'v1')
  socket.close()
  await new Promise((resolve) => socket.once('close', resolve))
})

void t.test('a new certificate on file change and on SIGHUP, without dropping an open HTTP/2 connection', async (t) => {
  const files = await certificate(t, 'first')
  const mesh = await tlsMesh(t, files)
  const firstCa = await readFile(files.cert)
  const client = await openSession(mesh.proxyUrl, { ca: firstCa })
  t.teardown(() => closeSession(client))
  t.equal((await h2Request(client, '/api/before')).status, 200)

  // A renewal as certificate tools do it: new files renamed over the old ones; the watch sees it.
  await files.renew('second')
  const secondCa = await readFile(files.cert)
  await waitFor(async () => ((await handshake(mesh.proxyUrl, secondCa, ['h2']).catch(() => undefined))?.commonName === 'second' ? true : undefined), 'the renewed certificate')
  t.equal((await h2Request(client, '/api/after')).status, 200, 'the connection opened before the renewal still works')
  t.equal(client.destroyed, false)

  // SIGHUP, with the watch stopped so that only the signal can have done it.
  mesh.router.certificates?.stop()
  await files.renew('third')
  const thirdCa = await readFile(files.cert)
  t.equal((await handshake(mesh.proxyUrl, secondCa, ['h2'])).commonName, 'second', 'nothing changes before the signal')
  process.kill(process.pid, 'SIGHUP')
  await waitFor(async () => ((await handshake(mesh.proxyUrl, thirdCa, ['h2']).catch(() => undefined))?.commonName === 'third' ? true : undefined), 'the certificate after SIGHUP')
  t.equal((await h2Request(client, '/api/still')).status, 200, 'and it still works after SIGHUP')
})

void t.test('the router process: SIGHUP reloads the certificate and does not close it; SIGTERM does', async (t) => {
  const files = await certificate(t, 'first')
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  const [port, adminPort] = [await freePort(), await freePort()]
  const router = spawnNode(routerArgs(port, adminPort, ['--registry', reg.url, '--routes', '/api=api']), {
    SWITCHYARD_TOKEN: TOKENS.router,
    SWITCHYARD_TLS_CERT: files.cert,
    SWITCHYARD_TLS_KEY: files.key,
    OTEL_SDK_DISABLED: 'true'
  })
  t.teardown(() => router.kill('SIGKILL'))
  await router.waitForOutput(`router listening on https://127.0.0.1:${port}`)
  const url = `https://127.0.0.1:${port}`
  t.equal((await handshake(url, await readFile(files.cert), ['h2'])).commonName, 'first')
  await files.renew('second')
  router.child.kill('SIGHUP')
  await router.waitForOutput('TLS certificate reloaded')
  t.equal((await handshake(url, await readFile(files.cert), ['h2'])).commonName, 'second')
  t.equal(router.child.exitCode, null, 'SIGHUP did not end the router')
  t.equal(await router.kill('SIGTERM'), 0)
})

void t.test('a broken renewal keeps the certificate in force', async (t) => {
  const files = await certificate(t, 'first')
  const mesh = await tlsMesh(t, files)
  const ca = await readFile(files.cert)
  const other = await certificate(t, 'other')
  // A key that does not belong to the certificate: no context can be made of it.
  await writeFile(files.key, await readFile(other.key))
  t.equal(await mesh.router.certificates?.reload(), false)
  t.equal((await handshake(mesh.proxyUrl, ca, ['h2'])).commonName, 'first')
})

void t.test('where fs.watch is not available, the files are polled', async (t) => {
  const files = await certificate(t, 'first')
  const applied: string[] = []
  const log = { info: () => {}, warn: () => {} }
  const watch = new CertificateWatch({ files, apply: (pair) => applied.push(pair.cert.toString()), log, poll: true, pollIntervalMs: 50, settleMs: 10 }, loadKeyPair(files))
  watch.start()
  t.teardown(() => watch.stop())
  await files.renew('second')
  const renewed = (await readFile(files.cert)).toString()
  await waitFor(() => (applied.includes(renewed) ? true : undefined), 'the polled renewal')
  t.equal(applied.length, 1)
})

void t.test('TLS settings: flags and env, or the config file relative to itself; both or neither', (t) => {
  const fromFlags = parseRouterSettings({ tlsCert: '/etc/tls/cert.pem', tlsKey: '/etc/tls/key.pem' }, {})
  t.same(tlsFilesOf(fromFlags, { tls: { cert: 'a.pem', key: 'b.pem' } }), { cert: '/etc/tls/cert.pem', key: '/etc/tls/key.pem' }, 'flags win over the file')
  const fromEnv = parseRouterSettings({}, { SWITCHYARD_TLS_CERT: '/c.pem', SWITCHYARD_TLS_KEY: '/k.pem' })
  t.same(tlsFilesOf(fromEnv, {}), { cert: '/c.pem', key: '/k.pem' })
  const config = parseProxyConfig({ tls: { cert: 'tls/cert.pem', key: '/abs/key.pem' } }, 'test')
  t.same(tlsFilesOf({ config: '/etc/switchyard/router.yaml' }, config), { cert: '/etc/switchyard/tls/cert.pem', key: '/abs/key.pem' })
  t.equal(tlsFilesOf({}, parseProxyConfig({}, 'test')), undefined, 'no TLS without either')
  t.throws(() => tlsFilesOf({ tlsCert: '/c.pem' }, {}), ConfigError)
  t.end()
})

void t.test('a certificate that does not load stops the router from starting', async (t) => {
  const files = await certificate(t, 'first')
  await writeFile(files.key, 'not a key')
  const settings = parseRouterSettings({ host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0, tlsCert: files.cert, tlsKey: files.key, logLevel: 'silent' }, {})
  await t.rejects(startRouter(settings, parseProxyConfig({}, 'test')), 'the key pair is read before anything listens')
})
