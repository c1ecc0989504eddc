import t from 'tap'
import { toErrorResponse } from '../../core/error-response.js'
import { ErrorCodes, isSwitchyardError, SwitchyardError } from '../../core/errors.js'

void t.test('a SwitchyardError carries its code, the status of that code, and a message', (t) => {
  const cause = new Error('disk full')
  const error = new SwitchyardError('INSTANCE_CONFLICT', 'instance a is registered with another version', { cause })
  t.equal(error.name, 'SwitchyardError')
  t.equal(error.code, 'INSTANCE_CONFLICT')
  t.equal(error.statusCode, 409)
  t.equal(error.cause, cause)
  t.same(error.toJSON(), { code: 'INSTANCE_CONFLICT', message: 'instance a is registered with another version' })
  t.equal(JSON.stringify(error), '{"code":"INSTANCE_CONFLICT","message":"instance a is registered with another version"}')
  t.ok(isSwitchyardError(error))
  for (const other of [new Error('x'), { code: 'INSTANCE_CONFLICT', statusCode: 409 }, undefined, 'INSTANCE_CONFLICT']) t.notOk(isSwitchyardError(other), String(other))
  t.end()
})

void t.test('every code has an HTTP error status', (t) => {
  for (const [code, status] of Object.entries(ErrorCodes)) {
    t.ok(Number.isInteger(status) && status >= 400 && status <= 599, `${code}: ${status}`)
    t.match(code, /^[A-Z][A-Z0-9_]*$/, `${code} is upper snake case`)
  }
  t.end()
})

void t.test('anything thrown while serving a request becomes a status and a {code, message} body', (t) => {
  const validation = { validation: [{ message: 'must be integer' }] }
  const cases: [string, unknown, number, string, string][] = [
    // [what, thrown, status, code, message]
    ['a SwitchyardError', new SwitchyardError('WEIGHTS_EMPTY', 'weights must name at least one version'), 400, 'WEIGHTS_EMPTY', 'weights must name at least one version'],
    ['media type', { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', message: 'Unsupported Media Type: text/plain' }, 415, 'UNSUPPORTED_MEDIA_TYPE', 'Unsupported Media Type: text/plain'],
    ['body too large', { code: 'FST_ERR_CTP_BODY_TOO_LARGE', message: 'Request body is too large' }, 413, 'BODY_TOO_LARGE', 'Request body is too large'],
    ['invalid JSON', { code: 'FST_ERR_CTP_INVALID_JSON_BODY', message: 'Body is not valid JSON' }, 400, 'MALFORMED_JSON', 'Body is not valid JSON'],
    ['empty JSON', { code: 'FST_ERR_CTP_EMPTY_JSON_BODY', message: 'Body cannot be empty' }, 400, 'MALFORMED_JSON', 'Body cannot be empty'],
    ['bad content-length', { code: 'FST_ERR_CTP_INVALID_CONTENT_LENGTH', message: 'bad length' }, 400, 'VALIDATION_FAILED', 'bad length'],
    ['a framework code without a message', { code: 'FST_ERR_NOT_FOUND' }, 404, 'ROUTE_NOT_FOUND', 'ROUTE_NOT_FOUND'],
    [
      'a validation error with its details',
      { code: 'FST_ERR_VALIDATION', message: 'body/port must be integer', ...validation },
      400,
      'VALIDATION_FAILED',
      'invalid request body/port must be integer'
    ],
    [
      'a validation code without details',
      { code: 'FST_ERR_VALIDATION', message: 'querystring/since must match pattern' },
      400,
      'VALIDATION_FAILED',
      'querystring/since must match pattern'
    ],
    ['validation details without a code', { message: 'params/name must match pattern', ...validation }, 400, 'VALIDATION_FAILED', 'invalid request params/name must match pattern'],
    ['an unknown framework code', { code: 'FST_ERR_SOMETHING_ELSE', statusCode: 503, message: 'secret detail' }, 500, 'INTERNAL', 'internal error'],
    ['a code that is not a string', { code: 42, statusCode: 400, message: 'Unexpected token' }, 400, 'MALFORMED_JSON', 'request body is not valid JSON: Unexpected token'],
    ['a SyntaxError', new SyntaxError('Unexpected end of JSON input'), 400, 'MALFORMED_JSON', 'request body is not valid JSON: Unexpected end of JSON input'],
    ['status 413 without a code', { statusCode: 413 }, 413, 'BODY_TOO_LARGE', 'request body is too large'],
    ['status 415 without a code', { statusCode: 415 }, 415, 'UNSUPPORTED_MEDIA_TYPE', 'send the request body as application/json'],
    ['another status', { statusCode: 404, message: '/internal/path' }, 500, 'INTERNAL', 'internal error'],
    ['a status that is not a number', { statusCode: '413' }, 500, 'INTERNAL', 'internal error'],
    ['a plain Error: its message stays inside', new Error('ECONNREFUSED 10.0.0.7:5432'), 500, 'INTERNAL', 'internal error'],
    ['a string', 'oops', 500, 'INTERNAL', 'internal error'],
    ['null', null, 500, 'INTERNAL', 'internal error'],
    ['undefined', undefined, 500, 'INTERNAL', 'internal error']
  ]
  for (const [what, thrown, statusCode, code, message] of cases) t.same(toErrorResponse(thrown), { statusCode, body: { code, message } }, what)
  t.end()
})
