import t from 'tap'
import type { InstanceRecord } from '../../core/registry-events.js'
import { RegistryModel, knownVersions } from '../../core/registry-model.js'

const instance = (id: string, version: string): InstanceRecord => ({ id, service: 'api', version, host: '127.0.0.1', port: 9000, metadata: {}, status: 'up', registeredAt: 0 })

t.test('applies changes in order and round-trips through a snapshot', async (t) => {
  const model = new RegistryModel()
  model.apply({ type: 'weights-changed', revision: 1, at: 0, service: 'api', weights: { 'v1.3': 100 }, previous: {}, actor: 'test' })
  model.apply({ type: 'instance-registered', revision: 2, at: 0, instance: instance('a', 'v1.3') })
  model.apply({ type: 'instance-registered', revision: 3, at: 0, instance: instance('b', 'v1.4') })
  model.apply({ type: 'instance-status-changed', revision: 4, at: 0, service: 'api', id: 'a', status: 'draining' })
  t.throws(() => model.apply({ type: 'instance-removed', revision: 6, at: 0, service: 'api', id: 'a', reason: 'evicted' }), /does not follow/)
  const api = model.services.get('api')
  t.ok(api)
  if (!api) return
  t.same(knownVersions(api), ['v1.3', 'v1.4'], 'a version with instances is known at 0%')
  t.equal(api.instances.get('a')?.status, 'draining')
  const copy = RegistryModel.fromSnapshot(model.snapshot())
  t.same(copy.snapshot(), model.snapshot())
  t.same(model.snapshot().services[0]?.weights, { 'v1.3': 100, 'v1.4': 0 })
  model.apply({ type: 'instance-removed', revision: 5, at: 0, service: 'api', id: 'b', reason: 'deregistered' })
  t.same(knownVersions(api), ['v1.3'], 'a version at 0% without instances is forgotten')
})
