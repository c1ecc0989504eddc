import t from 'tap'
import { startTestRegistry } from '../helpers/registry-harness.js'

void t.test('register, set weights, read them back', async (t) => {
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  const created = await reg.call('POST', '/v1/services/api/instances', { token: 'registrar', body: { version: 'v1.3', host: '127.0.0.1', port: 9001 } })
  t.equal(created.status, 201)
  t.match(created.json, { id: String, leaseSeconds: 30, renewSeconds: 10 })
  // a split may only name versions that have an instance
  t.equal((await reg.call('POST', '/v1/services/api/instances', { token: 'registrar', body: { version: 'v1.4', host: '127.0.0.1', port: 9002 } })).status, 201)
  const set = await reg.call('PUT', '/v1/services/api/weights', { token: 'operator', body: { weights: { 'v1.3': 90, 'v1.4': 10 } } })
  t.equal(set.status, 200)
  t.same(set.json.weights, { 'v1.3': 90, 'v1.4': 10 })
  const got = await reg.call('GET', '/v1/services/api/weights', { token: 'reader' })
  t.same(got.json, { weights: { 'v1.3': 90, 'v1.4': 10 }, revision: set.json.revision })
})
