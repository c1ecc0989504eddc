import t from 'tap'
import { EtcdClient } from '../../registry/store/etcd/etcd-client.js'
import type { EtcdWatchEvent } from '../../registry/store/etcd/etcd-watch.js'
import { ETCD_BINARY, etcdInstalled, startEtcdCluster } from '../helpers/etcd-cluster.js'
import { makeTestCertificates } from '../helpers/test-certificates.js'

// The gateway client against real etcd members with user/password auth and with TLS client certificates.
if (!(await etcdInstalled())) t.fail(`no etcd at ${ETCD_BINARY}: install Debian's etcd-server and etcd-client (.ci/run does it) or set SWITCHYARD_TEST_ETCD`)

const PASSWORD = 'correct-horse-battery'

async function failure(call: () => Promise<unknown>): Promise<Error & { code?: string }> {
  return call().then(
    () => {
      throw new Error('expected a failure')
    },
    (error: unknown) => error as Error & { code?: string }
  )
}

void t.test('user/password: tokens sent, refused credentials and missing ones are ETCD_AUTH_FAILED, a restarted member’s lost token is replaced', async (t) => {
  const cluster = await startEtcdCluster()
  t.teardown(cluster.close)
  // configured before etcd enables auth: it works without a token, then authenticates once etcd asks for one
  const client = new EtcdClient({ endpoints: cluster.endpoints, auth: { user: 'root', password: PASSWORD } })
  t.teardown(() => client.close())
  await client.put('/auth/before', 'open')
  await cluster.enableAuth(PASSWORD)
  await client.put('/auth/k', 'v1')
  t.equal((await client.get('/auth/k'))?.value, 'v1')

  const anonymous = new EtcdClient({ endpoints: cluster.endpoints })
  t.teardown(() => anonymous.close())
  const missing = await failure(() => anonymous.get('/auth/k'))
  t.match(missing, { code: 'ETCD_AUTH_FAILED', message: /requires authentication/ })

  const wrong = new EtcdClient({ endpoints: cluster.endpoints, auth: { user: 'root', password: 'not-the-password' } })
  t.teardown(() => wrong.close())
  const refused = await failure(() => wrong.put('/auth/k', 'x'))
  t.match(refused, { code: 'ETCD_AUTH_FAILED', message: /refused to authenticate user root/ })
  t.notMatch(refused.message, /not-the-password/, 'the password is not in the message')
  t.notMatch(JSON.stringify(refused), /not-the-password/)

  // a watch under auth, across a restart of the member (simple tokens live in its memory)
  const start = (await client.put('/auth/w', '0')).header.revision
  const events: EtcdWatchEvent[] = []
  let connections = 0
  const watch = client.watch({ key: '/auth/w', startRevision: start, resumeTimeoutMs: 20_000, onConnectionChange: (state) => state === 'connected' && connections++ })
  const following = (async () => {
    for await (const batch of watch) events.push(...batch.events)
  })()
  const deadline = Date.now() + 15_000
  while (events.length < 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  const [member] = cluster.members
  if (!member) throw new Error('one member expected')
  await member.stop()
  await member.start()
  await member.waitHealthy()
  // the old token is gone from etcd's memory: the client notices and authenticates again
  await client.put('/auth/w', '1')
  t.equal((await client.get('/auth/w'))?.value, '1')
  while (events.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  watch.close()
  await following
  t.same(
    events.map((event) => event.kv.value),
    ['0', '1'],
    'the watch resumed with a new token and missed nothing'
  )
  t.ok(connections >= 2)
})

void t.test('TLS: the CA and a client certificate; a wrong CA or no client certificate fails over and ends ETCD_UNAVAILABLE naming the cause', async (t) => {
  const certificates = await makeTestCertificates()
  t.teardown(certificates.remove)
  const cluster = await startEtcdCluster({ tls: { caFile: certificates.caFile, certFile: certificates.serverCertFile, keyFile: certificates.serverKeyFile, clientCertAuth: true } })
  t.teardown(cluster.close)

  const client = new EtcdClient({ endpoints: cluster.endpoints, tls: { caFile: certificates.caFile, certFile: certificates.clientCertFile, keyFile: certificates.clientKeyFile } })
  t.teardown(() => client.close())
  const start = (await client.put('/tls/k', 'v')).header.revision
  t.equal((await client.get('/tls/k'))?.value, 'v')
  const txn = await client.txn({ compare: [{ key: '/tls/k', target: 'MOD', result: 'EQUAL', modRevision: start }], success: [{ put: { key: '/tls/k', value: 'w' } }] })
  t.equal(txn.succeeded, true)
  const watch = client.watch({ key: '/tls/k', startRevision: start })
  for await (const batch of watch) {
    t.same(
      batch.events.map((event) => event.kv.value),
      ['v', 'w'],
      'a watch over TLS'
    )
    break
  }

  const otherCa = new EtcdClient({
    endpoints: cluster.endpoints,
    timeoutMs: 1_000,
    tls: { caFile: certificates.otherCaFile, certFile: certificates.clientCertFile, keyFile: certificates.clientKeyFile }
  })
  t.teardown(() => otherCa.close())
  t.match(await failure(() => otherCa.get('/tls/k')), { code: 'ETCD_UNAVAILABLE', message: /certificate|CERT/ })

  const noClientCertificate = new EtcdClient({ endpoints: cluster.endpoints, timeoutMs: 1_000, tls: { caFile: certificates.caFile } })
  t.teardown(() => noClientCertificate.close())
  t.match(await failure(() => noClientCertificate.get('/tls/k')), { code: 'ETCD_UNAVAILABLE' })

  const missingFile = () => new EtcdClient({ endpoints: cluster.endpoints, tls: { caFile: `${certificates.dir}/nope.crt` } })
  t.throws(missingFile, { code: 'ETCD_REQUEST_FAILED', message: /cannot read the etcd TLS CA file .*nope\.crt: ENOENT/ })
})

void t.test('endpoints: credentials in a URL are refused without echoing them; other schemes and non-URLs too', (t) => {
  t.throws(() => new EtcdClient({ endpoints: ['http://root:hunter2@127.0.0.1:2379'] }), { code: 'ETCD_REQUEST_FAILED', message: /#1 carries credentials/ })
  try {
    new EtcdClient({ endpoints: ['http://127.0.0.1:2379', 'http://root:hunter2@127.0.0.1:2379'] })
  } catch (error) {
    t.notMatch((error as Error).message, /hunter2/)
  }
  t.throws(() => new EtcdClient({ endpoints: ['unix:/tmp/etcd.sock'] }), { code: 'ETCD_REQUEST_FAILED', message: /neither http nor https/ })
  t.throws(() => new EtcdClient({ endpoints: ['127.0.0.1:2379:x'] }), { code: 'ETCD_REQUEST_FAILED' })
  t.throws(() => new EtcdClient({ endpoints: [] }), { code: 'ETCD_REQUEST_FAILED', message: /no etcd endpoint/ })
  t.end()
})
