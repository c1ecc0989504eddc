import t from 'tap'
import { errorCode, failureBeforeHead, failureMidAnswer } from '../../router/http/upstream-error.js'

const where = 'api v1.3 at 127.0.0.1:3001'

void t.test('a failure before the response head: the answer and what it allows', (t) => {
  const cases: [errorCode: string, answerCode: string, message: string, connectFailed: boolean, neverSent: boolean, timedOut: boolean][] = [
    ['ECONNREFUSED', 'UPSTREAM_UNREACHABLE', `cannot connect to ${where}`, true, true, false],
    ['EHOSTUNREACH', 'UPSTREAM_UNREACHABLE', `cannot connect to ${where}`, true, true, false],
    ['ENETUNREACH', 'UPSTREAM_UNREACHABLE', `cannot connect to ${where}`, true, true, false],
    ['ENOTFOUND', 'UPSTREAM_UNREACHABLE', `cannot connect to ${where}`, true, true, false],
    ['EAI_AGAIN', 'UPSTREAM_UNREACHABLE', `cannot connect to ${where}`, true, true, false],
    ['EADDRNOTAVAIL', 'UPSTREAM_UNREACHABLE', `cannot connect to ${where}`, true, true, false],
    ['UND_ERR_CONNECT_TIMEOUT', 'UPSTREAM_CONNECT_TIMEOUT', `connecting to ${where} timed out`, true, true, false],
    ['UND_ERR_HEADERS_TIMEOUT', 'UPSTREAM_TIMEOUT', `${where} sent no response headers within 250 ms`, false, false, true],
    ['UND_ERR_CLOSED', 'UPSTREAM_RESET', `the connection to ${where} failed before a response`, false, true, false],
    ['UND_ERR_DESTROYED', 'UPSTREAM_RESET', `the connection to ${where} failed before a response`, false, true, false],
    ['H2_NOT_SENT', 'UPSTREAM_RESET', `the connection to ${where} failed before a response`, false, true, false],
    ['H2_REFUSED_STREAM', 'UPSTREAM_RESET', `the connection to ${where} failed before a response`, false, true, false],
    ['H2_RST_2', 'UPSTREAM_RESET', `the connection to ${where} failed before a response`, false, false, false],
    ['ECONNRESET', 'UPSTREAM_RESET', `the connection to ${where} failed before a response`, false, false, false],
    ['UND_ERR_SOCKET', 'UPSTREAM_RESET', `the connection to ${where} failed before a response`, false, false, false],
    ['', 'UPSTREAM_RESET', `the connection to ${where} failed before a response`, false, false, false]
  ]
  for (const [code, answerCode, message, connectFailed, neverSent, timedOut] of cases) {
    t.same(failureBeforeHead(code, where, 250), { answer: { code: answerCode, message }, connectFailed, neverSent, timedOut }, code || '(no code)')
  }
  t.end()
})

void t.test('an answer that broke after its head, before any of it went out', (t) => {
  const cases: [code: string, message: string, expected: { code: string; message: string }][] = [
    ['UND_ERR_BODY_TIMEOUT', 'Body Timeout Error', { code: 'UPSTREAM_TIMEOUT', message: 'the upstream stopped sending its response body' }],
    ['UND_ERR_SOCKET', 'other side closed', { code: 'UPSTREAM_RESET', message: 'the upstream answer broke before its body (UND_ERR_SOCKET)' }],
    ['HPE_INVALID_CHUNK_SIZE', 'Invalid character in chunk size', { code: 'UPSTREAM_RESET', message: 'the upstream answer broke before its body (HPE_INVALID_CHUNK_SIZE)' }],
    ['', 'socket hang up', { code: 'UPSTREAM_RESET', message: 'the upstream answer broke before its body (socket hang up)' }]
  ]
  for (const [code, message, expected] of cases) t.same(failureMidAnswer(code, message), expected, code || message)
  t.end()
})

void t.test('the code of an error', (t) => {
  const withCode = (code: unknown) => Object.assign(new Error('x'), { code })
  t.equal(errorCode(withCode('ECONNREFUSED')), 'ECONNREFUSED')
  t.equal(errorCode(new Error('no code')), '')
  t.equal(errorCode(withCode(-111)), '', 'a numeric code is no code of ours')
  t.end()
})
