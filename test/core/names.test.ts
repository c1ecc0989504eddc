import t from 'tap'
import { assertValidName, compareVersions, isValidInstanceId, isValidName } from '../../core/names.js'

t.test('names follow the documented pattern', async (t) => {
  for (const good of ['api', 'v1.3', 'A', 'orders-worker', 'a_b', 'x'.repeat(64), '1abc']) t.ok(isValidName(good), good)
  for (const bad of ['', '.api', '-api', 'a b', 'x'.repeat(65), 'ä', 'a/b', 'a:b']) t.notOk(isValidName(bad), bad)
  t.ok(isValidInstanceId('10.0.0.1:8080'))
  t.notOk(isValidInstanceId(':8080'))
  t.throws(() => assertValidName('service', 'bad name'), { code: 'INVALID_NAME' })
})

t.test('versions sort the way people read them', async (t) => {
  const sorted = ['v1.10', 'v1.9', 'v2', 'v1.3', 'v1.3.1', 'beta', 'v01.3', 'alpha'].sort(compareVersions)
  t.same(sorted, ['alpha', 'beta', 'v01.3', 'v1.3', 'v1.3.1', 'v1.9', 'v1.10', 'v2'])
  t.equal(compareVersions('a', 'a'), 0)
})
