import t from 'tap'
import { startTestMesh } from '../helpers/router-harness.js'

void t.test('routes by weight, forces a dark version, answers 404 for no route', async (t) => {
  const mesh = await startTestMesh()
  t.teardown(mesh.close)
  await mesh.addUpstream('api', 'v1.3')
  await mesh.addUpstream('api', 'v1.4')
  const normal = await mesh.get('/api/hello')
  t.equal(normal.status, 200)
  t.equal(normal.json.version, 'v1.3', 'the first version takes all traffic')
  t.equal(normal.headers['x-switchyard-version'], 'v1.3')
  t.match(normal.headers['x-request-id'], /^[0-9a-f-]{36}$/)
  const forced = await mesh.get('/api/hello', { 'x-switchyard-version': 'v1.4' })
  t.equal(forced.json.version, 'v1.4', 'a version at 0% is reachable on purpose')
  const missing = await mesh.get('/nowhere')
  t.equal(missing.status, 404)
  t.equal(missing.json.code, 'ROUTE_NOT_FOUND')
})
