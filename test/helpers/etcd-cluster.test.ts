import { access } from 'node:fs/promises'
import { dirname } from 'node:path'
import t from 'tap'
import { request } from 'undici'
import { ETCD_BINARY, etcdInstalled, startEtcdCluster } from './etcd-cluster.js'
import { makeTestCertificates } from './test-certificates.js'

if (!(await etcdInstalled())) t.fail(`no etcd at ${ETCD_BINARY}: install Debian's etcd-server and etcd-client (.ci/run does it) or set SWITCHYARD_TEST_ETCD`)

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false
  )

/** /health of one member, answered within a second or not at all. */
async function health(metricsUrl: string): Promise<string> {
  try {
    const response = await request(`${metricsUrl}/health`, { headersTimeout: 1_000, bodyTimeout: 1_000 })
    return ((await response.body.json()) as { health: string }).health
  } catch {
    return 'no answer'
  }
}

void t.test('one member: data survives stop/start and kill/start, pause silences it, compaction, close removes everything', async (t) => {
  const cluster = await startEtcdCluster()
  t.teardown(cluster.close)
  const [member] = cluster.members
  if (!member) throw new Error('no member')
  t.equal(cluster.endpoints.length, 1)
  t.match(cluster.endpoints[0], /^http:\/\/127\.0\.0\.1:\d+$/)
  t.equal(member.state, 'running')
  t.equal(await health(member.metricsUrl), 'true')

  const before = await cluster.revision()
  await cluster.etcdctl(['put', 'k', 'v1'])
  t.equal(await cluster.revision(), before + 1, 'one put, one revision')

  await member.stop()
  t.equal(member.state, 'stopped')
  t.equal(await health(member.metricsUrl), 'no answer')
  await member.start()
  await member.waitHealthy()
  t.equal((await cluster.etcdctl(['get', 'k', '--print-value-only'])).trim(), 'v1', 'stop/start keeps the data dir')

  await cluster.etcdctl(['put', 'k', 'v2'])
  await member.kill()
  t.equal(member.state, 'stopped')
  await member.start()
  await member.waitHealthy()
  t.equal((await cluster.etcdctl(['get', 'k', '--print-value-only'])).trim(), 'v2', 'an acknowledged put survives SIGKILL')

  member.pause()
  t.equal(member.state, 'paused')
  t.equal(await health(member.metricsUrl), 'no answer', 'a paused member answers nothing')
  await t.rejects(member.waitHealthy(300), /timed out after 300 ms/)
  member.resume()
  await member.waitHealthy()

  const at = await cluster.revision()
  t.equal(await cluster.compact(), at, 'compacts at the current revision by default')
  await t.rejects(cluster.etcdctl(['get', 'k', `--rev=${at - 1}`]), /required revision has been compacted/)

  const dataDir = member.dataDir
  t.ok(await exists(dataDir))
  await cluster.close()
  t.equal(member.state, 'stopped')
  t.notOk(await exists(dirname(dataDir)), 'the temporary directory is gone')
})

void t.test('three members: a leader, a new one after the leader is killed, quorum lost with two down and back after restart', async (t) => {
  const cluster = await startEtcdCluster({ members: 3 })
  t.teardown(cluster.close)
  t.equal(new Set(cluster.endpoints).size, 3)
  const leader = await cluster.leader()
  await cluster.etcdctl(['put', 'k', 'v1'])

  await leader.kill()
  const next = await cluster.leader()
  t.not(next.name, leader.name, 'another member leads')
  await cluster.etcdctl(['put', 'k', 'v2'])
  await leader.start()
  await cluster.waitHealthy()
  t.equal((await cluster.etcdctl(['get', 'k', '--print-value-only'], { endpoints: [leader.clientUrl] })).trim(), 'v2', 'the restarted member caught up')

  const [a, b, c] = cluster.members
  if (!a || !b || !c) throw new Error('three members expected')
  await Promise.all([a.stop(), b.stop()])
  await t.rejects(c.waitHealthy(2_500), /timed out/, 'one of three is not healthy')
  await Promise.all([a.start(), b.start()])
  await cluster.waitHealthy()
  t.equal((await cluster.etcdctl(['get', 'k', '--print-value-only'])).trim(), 'v2')
})

void t.test('TLS with client certificates: etcdctl authenticates with them, /health stays on the plain metrics port', async (t) => {
  const certificates = await makeTestCertificates()
  t.teardown(certificates.remove)
  const cluster = await startEtcdCluster({
    tls: { caFile: certificates.caFile, certFile: certificates.serverCertFile, keyFile: certificates.serverKeyFile, clientCertAuth: true }
  })
  t.teardown(cluster.close)
  t.match(cluster.endpoints[0], /^https:\/\/127\.0\.0\.1:\d+$/)
  await cluster.etcdctl(['put', 'k', 'v'])
  t.equal((await cluster.etcdctl(['get', 'k', '--print-value-only'])).trim(), 'v')
  const plain = await request(`${cluster.endpoints[0]?.replace('https:', 'http:')}/health`).then(
    async (response) => (await response.body.dump(), response.statusCode),
    () => 'refused'
  )
  t.not(plain, 200, 'plain HTTP is not served on the client port')
})

void t.test('auth: after enableAuth, etcdctl without credentials is refused and the helper keeps working', async (t) => {
  const cluster = await startEtcdCluster()
  t.teardown(cluster.close)
  await cluster.enableAuth('s3cret-pass')
  await cluster.etcdctl(['put', 'k', 'v'])
  await t.rejects(cluster.etcdctl(['get', 'k'], { user: 'root:wrong' }), /authentication failed/)
  t.equal(await cluster.compact(), await cluster.revision())
})
