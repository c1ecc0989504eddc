import t from 'tap'
import type { InstanceRecord, InstanceStatus } from '../../core/registry-events.js'
import { RegistryModel, type ServiceModel } from '../../core/registry-model.js'
import { buildServiceRoute, buildTable, emptyTable, type ServiceRoute } from '../../core/route-table.js'

function instance(id: string, version: string, status: InstanceStatus = 'up', service = 'api'): InstanceRecord {
  return { id, service, version, host: '127.0.0.1', port: 9000, metadata: {}, status, registeredAt: 0 }
}

/** A service model: weights in percent, instances in the order given (the map keys are their ids). */
function service(weights: Record<string, number>, instances: InstanceRecord[], name = 'api'): ServiceModel {
  return {
    name,
    weights: new Map(Object.entries(weights).map(([version, percent]) => [version, percent * 100])),
    instances: new Map(instances.map((record) => [record.id, record]))
  }
}

/** What a route holds, in plain values. */
function layout(route: ServiceRoute<string>): unknown {
  return {
    versions: route.versions.map((version) => `${version.name}:${version.weight}:${version.endpoints.join('+')}`),
    byName: [...route.byName.keys()],
    bounds: [...route.bounds],
    available: route.available.map((version) => version.name),
    availableBounds: [...route.availableBounds],
    availableTotal: route.availableTotal,
    fallbackActive: route.fallbackActive
  }
}

void t.test('a service route from the model', (t) => {
  const cases: [string, ServiceModel, unknown][] = [
    [
      'two weighted versions, endpoints in id order',
      service({ 'v1.10': 10, 'v1.9': 90 }, [instance('b', 'v1.9'), instance('c', 'v1.10'), instance('a', 'v1.9')]),
      {
        versions: ['v1.9:9000:a+b', 'v1.10:1000:c'],
        byName: ['v1.9', 'v1.10'],
        bounds: [9000, 10000],
        available: ['v1.9', 'v1.10'],
        availableBounds: [9000, 10000],
        availableTotal: 10000,
        fallbackActive: false
      }
    ],
    [
      'a weighted version with only draining instances falls back; an unweighted one is known at 0',
      service({ v1: 70, v2: 30 }, [instance('a', 'v1'), instance('b', 'v2', 'draining'), instance('c', 'v3')]),
      {
        versions: ['v1:7000:a', 'v2:3000:', 'v3:0:c'],
        byName: ['v1', 'v2', 'v3'],
        bounds: [7000, 10000, 10000],
        available: ['v1'],
        availableBounds: [7000],
        availableTotal: 7000,
        fallbackActive: true
      }
    ],
    ['nothing at all', service({}, []), { versions: [], byName: [], bounds: [], available: [], availableBounds: [], availableTotal: 0, fallbackActive: false }],
    [
      'ids are unique per service; two records claiming one id keep their order',
      {
        name: 'api',
        weights: new Map([['v1', 10000]]),
        instances: new Map([
          ['k2', instance('same', 'v1')],
          ['k1', instance('same', 'v1')]
        ])
      },
      {
        versions: ['v1:10000:same+same'],
        byName: ['v1'],
        bounds: [10000],
        available: ['v1'],
        availableBounds: [10000],
        availableTotal: 10000,
        fallbackActive: false
      }
    ]
  ]
  for (const [what, model, expected] of cases) {
    const route = buildServiceRoute(model, (record) => record.id)
    t.same(layout(route), expected, what)
    t.equal(route.name, 'api')
  }
  t.end()
})

void t.test('the round-robins follow the configured and the available weights', (t) => {
  const route = buildServiceRoute(service({ v1: 50, v2: 25, v3: 25 }, [instance('a', 'v1'), instance('c', 'v3')]), (record) => record.id)
  t.same(
    Array.from({ length: 4 }, () => route.roundRobin.next()),
    [0, 1, 2, 0],
    'configured: v1 v2 v3 v1'
  )
  t.same(
    Array.from({ length: 3 }, () => route.availableRoundRobin.next()),
    [0, 1, 0],
    'available: v1 v3 v1'
  )
  t.end()
})

void t.test('a table reuses the routes of services that did not change', (t) => {
  const model = new RegistryModel()
  model.revision = 7
  model.services.set('api', service({ v1: 100 }, [instance('a', 'v1')]))
  model.services.set('billing', service({ v1: 100 }, [instance('b', 'v1', 'up', 'billing')], 'billing'))
  const endpointFor = (record: InstanceRecord) => record.id

  t.same(emptyTable(), { revision: 0, services: new Map() })
  const first = buildTable(model, endpointFor)
  t.equal(first.revision, 7)
  t.same([...first.services.keys()], ['api', 'billing'])

  const everything = buildTable(model, endpointFor, first)
  t.not(everything.services.get('api'), first.services.get('api'), 'no changed set: every route is rebuilt')

  model.services.set('cart', service({ v1: 100 }, [], 'cart'))
  const some = buildTable(model, endpointFor, first, new Set(['api']))
  t.not(some.services.get('api'), first.services.get('api'), 'a changed service is rebuilt')
  t.equal(some.services.get('billing'), first.services.get('billing'), 'an unchanged one is reused')
  t.ok(some.services.get('cart'), 'one the previous table did not have is built')
  t.same(layout(some.services.get('cart') as ServiceRoute<string>), layout(buildServiceRoute(service({ v1: 100 }, [], 'cart'), endpointFor)))

  const noPrevious = buildTable(model, endpointFor, undefined, new Set(['api']))
  t.same([...noPrevious.services.keys()], ['api', 'billing', 'cart'], 'without a previous table everything is built')
  t.end()
})
