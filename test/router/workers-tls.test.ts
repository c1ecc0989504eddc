import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import t from 'tap'
import { selfSignedCertificate } from '../helpers/h2-harness.js'
import { waitFor } from '../helpers/registry-harness.js'
import { meshOf, startWorkersRouter } from '../helpers/router-workers.js'

/** The common name a new TLS connection is offered (each lands on the worker the primary hands it to). */
function commonNameAt(url: string, ca: Buffer): Promise<string> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: hostname, port: Number(port), ca, servername: 'localhost' }, () => {
      resolve(String(socket.getPeerCertificate().subject.CN))
      socket.end()
    })
    socket.once('error', reject)
  })
}

async function namesOver(url: string, ca: Buffer, connections: number): Promise<string[]> {
  const names: string[] = []
  for (let i = 0; i < connections; i++) names.push(await commonNameAt(url, ca))
  return [...new Set(names)]
}

void t.test('with TLS, SIGHUP to the primary reloads the certificate in every worker and ends nothing', async (t) => {
  const files = await selfSignedCertificate('first')
  t.teardown(files.remove)
  // The router reads the pair through links in a directory of their own: a renewal of the
  // files behind them is invisible to its file watch, so only the signal can reload it.
  const links = await mkdtemp(join(tmpdir(), 'switchyard-tls-links-'))
  t.teardown(() => rm(links, { recursive: true, force: true }))
  await symlink(files.cert, join(links, 'cert.pem'))
  await symlink(files.key, join(links, 'key.pem'))
  const { reg, revision } = await meshOf(t, { v1: 100 })
  const router = await startWorkersRouter(reg.url, {
    workers: 2,
    scheme: 'https',
    config: { drainTimeoutMs: 2_000 },
    env: { SWITCHYARD_TLS_CERT: join(links, 'cert.pem'), SWITCHYARD_TLS_KEY: join(links, 'key.pem') }
  })
  t.teardown(() => router.close())
  await router.waitForRevision(revision)
  const pids = (await router.workers()).map((worker) => worker.pid)
  const first = await readFile(files.cert)
  t.same(await namesOver(router.proxyUrl, first, 6), ['first'], 'both workers speak TLS')

  await files.renew('second')
  const renewed = await readFile(files.cert)
  t.same(await namesOver(router.proxyUrl, first, 4), ['first'], 'the old certificate until the signal')
  const reloads = () => router.process.output().split('TLS certificate reloaded').length - 1
  t.equal(reloads(), 0, 'nothing reloaded before the signal')
  router.process.child.kill('SIGHUP')
  await waitFor(() => (reloads() === 2 ? true : undefined), 'a reload in each worker')
  t.same(await namesOver(router.proxyUrl, renewed, 6), ['second'], 'every worker offers the new certificate')
  t.equal(router.process.child.exitCode, null, 'SIGHUP did not end the router')
  t.same(
    (await router.workers()).map((worker) => worker.pid),
    pids,
    'nor a worker'
  )
  t.equal(await router.process.kill('SIGTERM'), 0)
})
