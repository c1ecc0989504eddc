import t from 'tap'
import { failoverVerdict, outcomeOfError, type FailoverVerdict, type TryOutcome } from '../../core/registry-failover.js'

void t.test('failoverVerdict: answers are final below 500; writes move on only when they certainly did not arrive', (t) => {
  const cases: [TryOutcome, idempotent: boolean, FailoverVerdict][] = [
    [{ kind: 'answered', status: 200 }, true, 'done'],
    [{ kind: 'answered', status: 200 }, false, 'done'],
    [{ kind: 'answered', status: 204 }, false, 'done'],
    [{ kind: 'answered', status: 400 }, true, 'done'],
    [{ kind: 'answered', status: 401 }, true, 'done'],
    [{ kind: 'answered', status: 404 }, true, 'done'],
    [{ kind: 'answered', status: 412 }, false, 'done'],
    [{ kind: 'answered', status: 499 }, true, 'done'],
    [{ kind: 'answered', status: 500 }, true, 'next'],
    [{ kind: 'answered', status: 503 }, true, 'next'],
    [{ kind: 'answered', status: 500 }, false, 'fail'],
    [{ kind: 'answered', status: 503 }, false, 'fail'],
    [{ kind: 'not-sent' }, true, 'next'],
    [{ kind: 'not-sent' }, false, 'next'],
    [{ kind: 'lost' }, true, 'next'],
    [{ kind: 'lost' }, false, 'fail']
  ]
  for (const [outcome, idempotent, verdict] of cases) t.equal(failoverVerdict(outcome, idempotent), verdict, `${JSON.stringify(outcome)} idempotent=${idempotent}`)
  t.end()
})

void t.test('outcomeOfError: only errors before the connection existed mean not sent', (t) => {
  const cases: [code: string | undefined, kind: TryOutcome['kind']][] = [
    ['ECONNREFUSED', 'not-sent'],
    ['ENOTFOUND', 'not-sent'],
    ['EAI_AGAIN', 'not-sent'],
    ['EHOSTUNREACH', 'not-sent'],
    ['ENETUNREACH', 'not-sent'],
    ['EADDRNOTAVAIL', 'not-sent'],
    ['UND_ERR_CONNECT_TIMEOUT', 'not-sent'],
    ['ECONNRESET', 'lost'],
    ['EPIPE', 'lost'],
    ['UND_ERR_SOCKET', 'lost'],
    ['UND_ERR_HEADERS_TIMEOUT', 'lost'],
    ['UND_ERR_BODY_TIMEOUT', 'lost'],
    ['UND_ERR_ABORTED', 'lost'],
    [undefined, 'lost']
  ]
  for (const [code, kind] of cases) t.same(outcomeOfError(code), { kind }, String(code))
  t.end()
})
