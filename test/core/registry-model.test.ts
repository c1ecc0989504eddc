import t from 'tap'
import type { InstanceRecord } from '../../core/registry-events.js'
import { RegistryModel, knownVersions } from '../../core/registry-model.js'
import type { RolloutState } from '../../core/rollout/rollout-machine.js'

const instance = (id: string, version: string): InstanceRecord => ({ id, service: 'api', version, host: '127.0.0.1', port: 9000, metadata: {}, status: 'up', registeredAt: 0 })

void t.test('applies changes in order and round-trips through a snapshot', (t) => {
  const model = new RegistryModel()
  model.apply({ type: 'weights-changed', revision: 1, at: 0, service: 'api', weights: { 'v1.3': 100 }, previous: {}, actor: 'test' })
  model.apply({ type: 'instance-registered', revision: 2, at: 0, instance: instance('a', 'v1.3') })
  model.apply({ type: 'instance-registered', revision: 3, at: 0, instance: instance('b', 'v1.4') })
  model.apply({ type: 'instance-status-changed', revision: 4, at: 0, service: 'api', id: 'a', status: 'draining' })
  t.throws(() => model.apply({ type: 'instance-removed', revision: 6, at: 0, service: 'api', id: 'a', reason: 'evicted' }), /does not follow/)
  const api = model.services.get('api')
  t.ok(api)
  if (!api) return t.end()
  t.same(knownVersions(api), ['v1.3', 'v1.4'], 'a version with instances is known at 0%')
  t.equal(api.instances.get('a')?.status, 'draining')
  const copy = RegistryModel.fromSnapshot(model.snapshot())
  t.same(copy.snapshot(), model.snapshot())
  t.same(model.snapshot().services[0]?.weights, { 'v1.3': 100, 'v1.4': 0 })
  model.apply({ type: 'instance-removed', revision: 5, at: 0, service: 'api', id: 'b', reason: 'deregistered' })
  t.same(knownVersions(api), ['v1.3'], 'a version at 0% without instances is forgotten')
  t.end()
})

void t.test('a change that does not follow the last revision is refused with REVISION_GAP, and nothing moves', (t) => {
  const model = new RegistryModel()
  for (const revision of [0, 2, 5]) {
    t.throws(
      () => model.apply({ type: 'instance-registered', revision, at: 0, instance: instance('a', 'v1') }),
      { code: 'REVISION_GAP', statusCode: 500 },
      `revision ${revision} after 0`
    )
  }
  t.equal(model.revision, 0)
  t.equal(model.instanceCount(), 0)
  t.end()
})

void t.test('changes to what the model does not know are counted but change nothing', (t) => {
  const model = new RegistryModel()
  model.apply({ type: 'instance-status-changed', revision: 1, at: 0, service: 'api', id: 'ghost', status: 'draining' })
  model.apply({ type: 'instance-removed', revision: 2, at: 0, service: 'nobody', id: 'ghost', reason: 'evicted' })
  model.apply({ type: 'instance-registered', revision: 3, at: 0, instance: instance('a', 'v1') })
  model.apply({ type: 'instance-status-changed', revision: 4, at: 0, service: 'api', id: 'ghost', status: 'draining' })
  t.equal(model.revision, 4)
  t.same([...model.services.keys()], ['api'], 'no service was made up')
  t.same(model.findInstance('api', 'a'), instance('a', 'v1'))
  t.equal(model.findInstance('api', 'ghost'), undefined)
  t.equal(model.findInstance('nobody', 'a'), undefined)
  t.end()
})

void t.test('a snapshot lists services by name, instances by version then id, weights above 0', (t) => {
  const model = new RegistryModel()
  const changes = [
    { service: 'web', id: 'w', version: 'v1' },
    { service: 'api', id: 'c', version: 'v1.10' },
    { service: 'api', id: 'b', version: 'v1.9' },
    { service: 'api', id: 'z', version: 'v1.9' },
    { service: 'api', id: 'a', version: 'v1.9' }
  ]
  for (const [i, change] of changes.entries()) {
    model.apply({ type: 'instance-registered', revision: i + 1, at: 0, instance: { ...instance(change.id, change.version), service: change.service } })
  }
  model.apply({ type: 'weights-changed', revision: 6, at: 0, service: 'api', weights: { 'v1.9': 100, 'v1.10': 0 }, previous: {}, actor: 'test' })
  t.equal(model.instanceCount(), 5)
  const snapshot = model.snapshot()
  t.equal(snapshot.revision, 6)
  t.same(
    snapshot.services.map((service) => service.name),
    ['api', 'web']
  )
  t.same(
    snapshot.services[0]?.instances.map((record) => `${record.version}/${record.id}`),
    ['v1.9/a', 'v1.9/b', 'v1.9/z', 'v1.10/c']
  )
  t.same(snapshot.services[0]?.weights, { 'v1.9': 100, 'v1.10': 0 })
  t.same([...(model.services.get('api')?.weights.keys() ?? [])], ['v1.9'], 'a version at 0 is kept out of the weights map')
  t.same(RegistryModel.fromSnapshot(snapshot).snapshot(), snapshot, 'a snapshot round-trips')
  t.end()
})

void t.test('a rollout change is counted and leaves what routers route by alone', (t) => {
  const model = new RegistryModel()
  model.apply({ type: 'instance-registered', revision: 1, at: 0, instance: instance('a', 'v1') })
  const before = model.snapshot()
  // The model never reads the rollout's state: routers follow the weights the rollout writes.
  model.apply({ type: 'rollout-changed', revision: 2, at: 0, service: 'api', rollout: {} as RolloutState, event: 'started', actor: 'test' })
  t.equal(model.revision, 2)
  t.same(model.snapshot().services, before.services)
  t.end()
})

void t.test('applyUndoable: each kind of change, undone in reverse order, leaves exactly the state before', (t) => {
  const base = () => {
    const model = new RegistryModel()
    model.apply({ type: 'weights-changed', revision: 1, at: 0, service: 'api', weights: { v1: 100 }, previous: {}, actor: 'test' })
    model.apply({ type: 'instance-registered', revision: 2, at: 0, instance: instance('a', 'v1') })
    model.apply({ type: 'instance-registered', revision: 3, at: 0, instance: instance('b', 'v1') })
    return model
  }
  const rollout = { service: 'api' } as unknown as RolloutState
  const cases: { name: string; drafts: (revision: number) => Parameters<RegistryModel['apply']>[0][] }[] = [
    { name: 'a new instance of a known service', drafts: (r) => [{ type: 'instance-registered', revision: r + 1, at: 0, instance: instance('c', 'v2') }] },
    {
      name: 'an instance registered again with new data',
      drafts: (r) => [{ type: 'instance-registered', revision: r + 1, at: 0, instance: { ...instance('a', 'v1'), port: 9999 } }]
    },
    {
      name: 'the first version of a new service (weights, then the instance)',
      drafts: (r) => [
        { type: 'weights-changed', revision: r + 1, at: 0, service: 'web', weights: { v1: 100 }, previous: {}, actor: 'registry' },
        { type: 'instance-registered', revision: r + 2, at: 0, instance: { ...instance('w', 'v1'), service: 'web' } }
      ]
    },
    {
      name: 'an instance of a new service without weights',
      drafts: (r) => [{ type: 'instance-registered', revision: r + 1, at: 0, instance: { ...instance('x', 'v1'), service: 'other' } }]
    },
    { name: 'a status change', drafts: (r) => [{ type: 'instance-status-changed', revision: r + 1, at: 0, service: 'api', id: 'b', status: 'draining' }] },
    { name: 'a status change of an unknown service', drafts: (r) => [{ type: 'instance-status-changed', revision: r + 1, at: 0, service: 'nope', id: 'b', status: 'draining' }] },
    { name: 'a removal', drafts: (r) => [{ type: 'instance-removed', revision: r + 1, at: 0, service: 'api', id: 'a', reason: 'evicted' }] },
    {
      name: 'new weights of a known service',
      drafts: (r) => [{ type: 'weights-changed', revision: r + 1, at: 0, service: 'api', weights: { v1: 50, v2: 50 }, previous: { v1: 100 }, actor: 'test' }]
    },
    { name: 'a rollout change', drafts: (r) => [{ type: 'rollout-changed', revision: r + 1, at: 0, service: 'api', rollout, event: 'started', actor: 'test' }] },
    {
      name: 'several in a row',
      drafts: (r) => [
        { type: 'instance-removed', revision: r + 1, at: 0, service: 'api', id: 'a', reason: 'deregistered' },
        { type: 'instance-registered', revision: r + 2, at: 0, instance: instance('a', 'v2') },
        { type: 'weights-changed', revision: r + 3, at: 0, service: 'api', weights: { v2: 100 }, previous: { v1: 100 }, actor: 'test' },
        { type: 'instance-status-changed', revision: r + 4, at: 0, service: 'api', id: 'a', status: 'draining' }
      ]
    }
  ]
  for (const { name, drafts } of cases) {
    const model = base()
    const before = model.snapshot()
    const undos = drafts(model.revision).map((change) => model.applyUndoable(change))
    t.not(model.revision, before.revision, `${name}: applied`)
    for (const undo of undos.reverse()) undo()
    t.same(model.snapshot(), before, `${name}: undone exactly`)
    t.same([...model.services.keys()].sort(), ['api'], `${name}: no service left behind`)
  }
  t.end()
})
