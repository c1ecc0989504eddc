import t from 'tap'
import { decodeText, encodeBytes, parseHeader, parseId, parseInt64, parseKeyValue, prefixRangeEnd } from '../../registry/store/etcd/etcd-codec.js'
import { EtcdError, verdictOfAnswer, verdictOfTransportError } from '../../registry/store/etcd/etcd-errors.js'
import { JsonObjectSplitter } from '../../registry/store/etcd/etcd-json-stream.js'

void t.test('prefixRangeEnd: the last byte below 0xff incremented, what follows dropped; all 0xff or empty: NUL (no end)', (t) => {
  const cases: [string, string | Uint8Array, number[]][] = [
    ['ascii', '/switchyard/', [...Buffer.from('/switchyard0')]],
    ['one byte', 'a', [0x62]],
    ['trailing 0xff', Uint8Array.from([0x61, 0xff, 0xff]), [0x62]],
    ['utf-8 text', 'é', [0xc3, 0xaa]],
    ['only 0xff', Uint8Array.from([0xff, 0xff]), [0]],
    ['empty', '', [0]]
  ]
  for (const [name, prefix, expected] of cases) t.same([...prefixRangeEnd(prefix)], expected, name)
  t.end()
})

void t.test('int64 fields: strings or numbers to safe integers, absent is 0, anything else refused; ids stay strings', (t) => {
  t.equal(parseInt64('42', 'x'), 42)
  t.equal(parseInt64(7, 'x'), 7)
  t.equal(parseInt64(undefined, 'x'), 0)
  t.equal(parseInt64('-1', 'TTL'), -1)
  t.throws(() => parseInt64('9007199254740993', 'header.revision'), /header\.revision = 9007199254740993, not a safe integer/)
  t.throws(() => parseInt64('abc', 'x'), TypeError)
  t.equal(parseId('4111120341497612812'), '4111120341497612812', 'a lease id above 2^53 is kept exact')
  t.equal(parseId(undefined), '0')
  t.end()
})

void t.test('keys and values: base64 both ways, UTF-8 text, defaults for fields etcd leaves out', (t) => {
  t.equal(encodeBytes('foo'), 'Zm9v')
  t.equal(encodeBytes(Uint8Array.from([0, 255])), 'AP8=')
  t.equal(decodeText('w6k='), 'é')
  t.equal(decodeText(undefined), '')
  t.same(parseKeyValue({ key: 'Zm9v', mod_revision: '4' }), { key: 'foo', value: '', createRevision: 0, modRevision: 4, version: 0, lease: '0' })
  t.same(parseHeader({ cluster_id: '1', member_id: '2', revision: '3', raft_term: '4' }), { clusterId: '1', memberId: '2', revision: 3, raftTerm: 4 })
  t.same(parseHeader(undefined), { clusterId: '0', memberId: '0', revision: 0, raftTerm: 0 })
  t.end()
})

void t.test('the stream splitter finds every object whatever the cuts: between, inside strings, escapes and multi-byte characters', (t) => {
  const objects = [{ result: { created: true } }, { result: { events: [{ kv: { key: 'a}{"\\', value: 'é ✓' } }] } }, { error: { message: 'x' } }]
  const text = objects.map((object) => JSON.stringify(object)).join('\n') + '\n'
  const bytes = Buffer.from(text, 'utf8')
  for (let cut = 0; cut <= bytes.length; cut++) {
    const splitter = new JsonObjectSplitter()
    const found = [...splitter.push(bytes.subarray(0, cut)), ...splitter.push(bytes.subarray(cut))]
    if (JSON.stringify(found) !== JSON.stringify(objects)) {
      t.fail(`cut at byte ${cut}`)
      break
    }
    t.equal(splitter.pending, false)
  }
  // one byte at a time, and objects with no delimiter between them
  const splitter = new JsonObjectSplitter()
  const found: unknown[] = []
  for (const byte of Buffer.from(objects.map((object) => JSON.stringify(object)).join(''))) found.push(...splitter.push(Uint8Array.of(byte)))
  t.same(found, objects)
  const cut = new JsonObjectSplitter()
  t.same(cut.push('{"a":'), [])
  t.equal(cut.pending, true, 'a stream that ends here was cut')
  t.throws(() => new JsonObjectSplitter().push('x{}'), /unexpected "x"/)
  t.throws(() => new JsonObjectSplitter().push('}'), /unbalanced/)
  t.end()
})

void t.test('verdicts: which failures another member may serve, which may have been applied, which are final', (t) => {
  const answer = (code: number, message: string) => ({ code, message, error: message })
  const cases: [string, number, { code?: number; message?: string } | undefined, string, string?][] = [
    // [what, HTTP status, body, action, code when it fails]
    ['compacted', 400, answer(11, 'etcdserver: mvcc: required revision has been compacted'), 'fail', 'ETCD_COMPACTED'],
    ['no leader (hasleader)', 503, answer(14, 'etcdserver: no leader'), 'retry'],
    ['not leader', 400, answer(9, 'etcdserver: not leader'), 'retry'],
    ['too many requests', 429, answer(8, 'etcdserver: too many requests'), 'retry'],
    ['proposal dropped', 500, answer(2, 'raft proposal dropped'), 'retry'],
    ['request timed out', 503, answer(14, 'etcdserver: request timed out'), 'unknown'],
    ['leader changed (reads only: a write may have been proposed)', 503, answer(14, 'etcdserver: leader changed'), 'unknown'],
    ['deadline', 500, answer(2, 'context deadline exceeded'), 'unknown'],
    ['server stopped', 503, answer(14, 'etcdserver: server stopped'), 'unknown'],
    ['a proxy 502 without a body', 502, undefined, 'unknown'],
    ['invalid token', 401, answer(16, 'etcdserver: invalid auth token'), 'reauthenticate'],
    ['no token while auth is on', 400, answer(3, 'etcdserver: user name is empty'), 'reauthenticate'],
    ['auth store moved on', 400, answer(3, 'etcdserver: revision of auth store is old'), 'reauthenticate'],
    ['wrong password', 400, answer(3, 'etcdserver: authentication failed, invalid user ID or password'), 'fail', 'ETCD_AUTH_FAILED'],
    ['permission denied', 403, answer(7, 'etcdserver: permission denied'), 'fail', 'ETCD_AUTH_FAILED'],
    ['duplicate key', 400, answer(3, 'etcdserver: duplicate key given in txn request'), 'fail', 'ETCD_REQUEST_FAILED'],
    ['future revision', 400, answer(11, 'etcdserver: mvcc: required revision is a future revision'), 'fail', 'ETCD_REQUEST_FAILED'],
    ['lease not found', 404, answer(5, 'etcdserver: requested lease not found'), 'fail', 'ETCD_REQUEST_FAILED'],
    ['bad JSON', 400, answer(3, 'unexpected EOF'), 'fail', 'ETCD_REQUEST_FAILED']
  ]
  for (const [what, status, body, action, code] of cases) {
    const verdict = verdictOfAnswer(status, body)
    t.equal(verdict.action, action, what)
    if (code) t.equal('code' in verdict ? verdict.code : undefined, code, `${what}: ${code}`)
  }
  const transport: [string, unknown, string][] = [
    ['refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'retry'],
    ['connect timeout', Object.assign(new Error('Connect Timeout Error'), { code: 'UND_ERR_CONNECT_TIMEOUT' }), 'retry'],
    ['untrusted certificate', Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }), 'retry'],
    ['refused, as a cause', Object.assign(new Error('fetch failed'), { cause: { code: 'ECONNREFUSED' } }), 'retry'],
    ['reset mid-request', Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }), 'unknown'],
    ['aborted at the attempt deadline', new Error('no answer within 1000 ms'), 'unknown'],
    ['not even an Error', 'boom', 'unknown']
  ]
  for (const [what, error, action] of transport) t.equal(verdictOfTransportError(error).action, action, what)
  t.end()
})

void t.test('EtcdError: a SwitchyardError with the code’s status and its details', (t) => {
  const error = new EtcdError('ETCD_COMPACTED', 'compacted', { compactRevision: 9, resumeRevision: 4, grpcCode: 11 })
  t.equal(error.statusCode, 500)
  t.equal(error.compactRevision, 9)
  t.equal(error.resumeRevision, 4)
  t.equal(error.grpcCode, 11)
  t.equal(error.outcomeUnknown, false)
  t.same(error.toJSON(), { code: 'ETCD_COMPACTED', message: 'compacted' })
  t.equal(new EtcdError('ETCD_UNAVAILABLE', 'down', { outcomeUnknown: true }).statusCode, 503)
  t.end()
})
