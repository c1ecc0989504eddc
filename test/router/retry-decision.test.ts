import t from 'tap'
import { retryAfterFailure, retryAfterStatus, type RetryFacts } from '../../router/http/retry-decision.js'
import { failureBeforeHead } from '../../router/http/upstream-error.js'

const facts = (overrides: Partial<RetryFacts> = {}): RetryFacts => ({ method: 'GET', bodyReplayable: true, retries: 0, maxRetries: 2, ...overrides })

void t.test('a 5xx answer', (t) => {
  const cases: [name: string, status: number, facts: RetryFacts, endpoints: number, expected: boolean][] = [
    ['503 GET, two instances', 503, facts(), 2, true],
    ['502 GET', 502, facts(), 2, true],
    ['500 GET: the instance took it and failed', 500, facts(), 2, false],
    ['504 GET', 504, facts(), 2, false],
    ['503 with one instance: nowhere else to go', 503, facts(), 1, false],
    ['503 HEAD', 503, facts({ method: 'HEAD' }), 3, true],
    ['503 OPTIONS', 503, facts({ method: 'OPTIONS' }), 3, true],
    ['503 PUT', 503, facts({ method: 'PUT' }), 3, true],
    ['503 DELETE', 503, facts({ method: 'DELETE' }), 3, true],
    ['503 TRACE', 503, facts({ method: 'TRACE' }), 3, true],
    ['503 POST', 503, facts({ method: 'POST' }), 3, false],
    ['503 PATCH', 503, facts({ method: 'PATCH' }), 3, false],
    ['503 PUT whose body was read', 503, facts({ method: 'PUT', bodyReplayable: false }), 3, false],
    ['503 after the last allowed retry', 503, facts({ retries: 2 }), 3, false],
    ['503 with one retry left', 503, facts({ retries: 1 }), 3, true],
    ['503 on a route without retries', 503, facts({ maxRetries: 0 }), 3, false]
  ]
  for (const [name, status, given, endpoints, expected] of cases) t.equal(retryAfterStatus(status, given, endpoints), expected, name)
  t.end()
})

void t.test('a failure before any answer', (t) => {
  const failure = (code: string) => failureBeforeHead(code, 'api v1 at 127.0.0.1:1', 1000)
  const cases: [name: string, code: string, facts: RetryFacts, expected: boolean][] = [
    ['refused GET', 'ECONNREFUSED', facts(), true],
    ['refused POST: never sent', 'ECONNREFUSED', facts({ method: 'POST' }), true],
    ['connect timeout POST: never sent', 'UND_ERR_CONNECT_TIMEOUT', facts({ method: 'POST' }), true],
    ['closed pool POST: never sent', 'UND_ERR_CLOSED', facts({ method: 'POST' }), true],
    ['destroyed pool PATCH: never sent', 'UND_ERR_DESTROYED', facts({ method: 'PATCH' }), true],
    ['reset GET: idempotent', 'ECONNRESET', facts(), true],
    ['reset PUT: idempotent', 'ECONNRESET', facts({ method: 'PUT' }), true],
    ['reset POST: it may have been acted on', 'ECONNRESET', facts({ method: 'POST' }), false],
    ['first-byte timeout GET: the instance may still be working on it', 'UND_ERR_HEADERS_TIMEOUT', facts(), false],
    ['refused POST whose body was read', 'ECONNREFUSED', facts({ method: 'POST', bodyReplayable: false }), false],
    ['reset GET whose body was read', 'ECONNRESET', facts({ bodyReplayable: false }), false],
    ['refused GET after the last allowed retry', 'ECONNREFUSED', facts({ retries: 2 }), false],
    ['refused GET on a route without retries', 'ECONNREFUSED', facts({ maxRetries: 0 }), false]
  ]
  for (const [name, code, given, expected] of cases) t.equal(retryAfterFailure(failure(code), given), expected, name)
  t.end()
})
