import t from 'tap'
import {
  encodeGrpcMessage,
  GRPC_STATUS_NAMES,
  grpcStatusName,
  grpcStatusOfError,
  grpcStatusOfHttp,
  httpEquivalentOfGrpc,
  isGrpcServerFailure,
  isGrpcContentType,
  parseGrpcStatus,
  parseGrpcTimeout
} from '../../core/grpc.js'

void t.test('status names and their HTTP equivalents (grpc-gateway), codes beyond the spec', (t) => {
  t.equal(GRPC_STATUS_NAMES.length, 17)
  const cases: [number, string, number, boolean][] = [
    [0, 'OK', 200, false],
    [1, 'CANCELLED', 499, false],
    [2, 'UNKNOWN', 500, true],
    [3, 'INVALID_ARGUMENT', 400, false],
    [4, 'DEADLINE_EXCEEDED', 504, true],
    [5, 'NOT_FOUND', 404, false],
    [6, 'ALREADY_EXISTS', 409, false],
    [7, 'PERMISSION_DENIED', 403, false],
    [8, 'RESOURCE_EXHAUSTED', 429, false],
    [9, 'FAILED_PRECONDITION', 400, false],
    [10, 'ABORTED', 409, false],
    [11, 'OUT_OF_RANGE', 400, false],
    [12, 'UNIMPLEMENTED', 501, false],
    [13, 'INTERNAL', 500, true],
    [14, 'UNAVAILABLE', 503, true],
    [15, 'DATA_LOSS', 500, true],
    [16, 'UNAUTHENTICATED', 401, false],
    [17, '17', 500, true],
    [99, '99', 500, true]
  ]
  for (const [code, name, http, serverFailure] of cases) {
    t.equal(grpcStatusName(code), name, `name of ${code}`)
    t.equal(httpEquivalentOfGrpc(code), http, `HTTP equivalent of ${code}`)
    t.equal(isGrpcServerFailure(code), serverFailure, `${code} counts against the instance`)
  }
  t.end()
})

void t.test('parseGrpcStatus: numbers pass, anything else is UNKNOWN, absent is undefined', (t) => {
  const cases: [string | string[] | undefined, number | undefined][] = [
    ['0', 0],
    ['14', 14],
    ['99', 99],
    ['100', 2],
    ['', 2],
    ['x', 2],
    [' 1', 2],
    [['0', '1'], 2],
    [undefined, undefined]
  ]
  for (const [value, expected] of cases) t.equal(parseGrpcStatus(value), expected, JSON.stringify(value))
  t.end()
})

void t.test('grpcStatusOfHttp: the spec table, UNKNOWN otherwise', (t) => {
  const cases: [number, number][] = [
    [400, 13],
    [401, 16],
    [403, 7],
    [404, 12],
    [429, 14],
    [502, 14],
    [503, 14],
    [504, 14],
    [200, 2],
    [500, 2],
    [415, 2]
  ]
  for (const [http, expected] of cases) t.equal(grpcStatusOfHttp(http), expected, String(http))
  t.end()
})

void t.test('grpcStatusOfError: router codes, then 5xx as UNAVAILABLE, then the HTTP table', (t) => {
  const cases: [Parameters<typeof grpcStatusOfError>[0], number, number][] = [
    ['REQUEST_SMUGGLING', 400, 3],
    ['MALFORMED_REQUEST', 400, 3],
    ['INVALID_PATH', 400, 3],
    ['ROUTE_NOT_FOUND', 404, 12],
    ['INTERNAL', 500, 13],
    ['ROUTE_TIMEOUT', 504, 4],
    ['UPSTREAM_TIMEOUT', 504, 4],
    ['NO_HEALTHY_INSTANCE', 503, 14],
    ['UNKNOWN_SERVICE', 503, 14],
    ['UNKNOWN_VERSION', 503, 14],
    ['NO_ROUTE_TABLE', 503, 14],
    ['UPSTREAM_UNREACHABLE', 502, 14],
    ['UPSTREAM_RESET', 502, 14],
    ['UPSTREAM_CONNECT_TIMEOUT', 504, 14],
    ['NOT_READY', 503, 14],
    ['FORBIDDEN', 403, 7],
    ['UNAUTHENTICATED', 401, 16],
    ['BODY_TOO_LARGE', 413, 2]
  ]
  for (const [code, http, expected] of cases) t.equal(grpcStatusOfError(code, http), expected, code)
  t.end()
})

void t.test('parseGrpcTimeout: every unit, rounding up, malformed values ignored', (t) => {
  const cases: [string | string[] | undefined, number | undefined][] = [
    ['1H', 3_600_000],
    ['2M', 120_000],
    ['3S', 3000],
    ['250m', 250],
    ['1500u', 2],
    ['1000u', 1],
    ['1n', 1],
    ['0m', 0],
    ['99999999S', 99_999_999_000],
    ['123456789S', undefined],
    ['1s', undefined],
    ['1', undefined],
    ['S', undefined],
    ['-1S', undefined],
    ['1.5S', undefined],
    [['1S'], undefined],
    [undefined, undefined]
  ]
  for (const [value, expected] of cases) t.equal(parseGrpcTimeout(value), expected, JSON.stringify(value))
  t.end()
})

void t.test('encodeGrpcMessage: printable ASCII as is, "%" and the rest percent-encoded as UTF-8', (t) => {
  const cases: [string, string][] = [
    ['no healthy instance', 'no healthy instance'],
    ['100% done', '100%25 done'],
    ['line\nbreak', 'line%0Abreak'],
    ['café', 'caf%C3%A9'],
    ['~', '~'],
    ['\x7f', '%7F'],
    ['', '']
  ]
  for (const [message, encoded] of cases) t.equal(encodeGrpcMessage(message), encoded, JSON.stringify(message))
  t.end()
})

void t.test('isGrpcContentType: application/grpc with a +format or parameters; not grpc-web', (t) => {
  const cases: [string | undefined, boolean][] = [
    ['application/grpc', true],
    ['application/grpc+proto', true],
    ['application/grpc+json', true],
    ['application/grpc;charset=utf-8', true],
    ['application/grpc-web', false],
    ['application/grpc-web+proto', false],
    ['application/json', false],
    ['application/grp', false],
    [undefined, false]
  ]
  for (const [value, expected] of cases) t.equal(isGrpcContentType(value), expected, String(value))
  t.end()
})
