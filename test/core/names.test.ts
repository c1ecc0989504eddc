import t from 'tap'
import { assertValidName, compareVersions, isValidInstanceId, isValidName } from '../../core/names.js'

void t.test('names follow the documented pattern', (t) => {
  for (const good of ['api', 'v1.3', 'A', 'orders-worker', 'a_b', 'x'.repeat(64), '1abc']) t.ok(isValidName(good), good)
  for (const bad of ['', '.api', '-api', 'a b', 'x'.repeat(65), 'ä', 'a/b', 'a:b']) t.notOk(isValidName(bad), bad)
  t.ok(isValidInstanceId('10.0.0.1:8080'))
  t.notOk(isValidInstanceId(':8080'))
  t.throws(() => assertValidName('service', 'bad name'), { code: 'INVALID_NAME' })
  t.end()
})

void t.test('versions sort the way people read them', (t) => {
  const sorted = ['v1.10', 'v1.9', 'v2', 'v1.3', 'v1.3.1', 'beta', 'v01.3', 'alpha'].sort(compareVersions)
  t.same(sorted, ['alpha', 'beta', 'v01.3', 'v1.3', 'v1.3.1', 'v1.9', 'v1.10', 'v2'])
  t.equal(compareVersions('a', 'a'), 0)
  t.end()
})

void t.test('compareVersions: digits compare as numbers, everything else by code unit', (t) => {
  const cases: [string, string, number][] = [
    ['v1.9', 'v1.10', -1], // 9 < 10 as numbers
    ['v1.10', 'v1.9', 1],
    ['v2', 'v10', -1], // fewer digits, smaller number
    ['v01', 'v1', -1], // the same number: the spelling decides, so the order is total
    ['v1', 'v01', 1],
    ['v007', 'v8', -1], // leading zeros do not count as digits
    ['v1', 'v1.0', -1], // a prefix first
    ['v1.0', 'v1', 1],
    ['v1-3', 'v1.3', -1], // '-' (45) before '.' (46)
    ['v1.3', 'v1-3', 1],
    ['v1', 'vx', -1], // a digit before a letter
    ['1', 'a', -1],
    ['a', '1', 1],
    ['', 'a', -1],
    ['', '', 0],
    ['v1.3', 'v1.3', 0]
  ]
  for (const [a, b, expected] of cases) t.equal(Math.sign(compareVersions(a, b)), expected, `${JSON.stringify(a)} vs ${JSON.stringify(b)}`)
  t.end()
})
