import t from 'tap'
import { parseConfig, type ConfigError } from '../../core/config.js'
import { DEFAULT_REGISTRY_PORT, DEFAULT_REGISTRY_URL, registryUrlSetting } from '../../core/defaults.js'
import { parseRegistryConfig } from '../../registry/config.js'
import { RouterSettings } from '../../router/config.js'
import { MessageRouterSettings } from '../../router/messages/config.js'
import { SampleServiceSettings } from '../../sample-services/api/server.js'
import { OrdersWorkerSettings } from '../../sample-services/orders-worker/settings.js'
import { WebfrontSettings } from '../../sample-services/webfront/settings.js'

void t.test('the registry listens where its clients look by default', (t) => {
  t.equal(DEFAULT_REGISTRY_URL, 'http://127.0.0.1:8761')
  t.equal(parseRegistryConfig({}, {}).port, DEFAULT_REGISTRY_PORT)
  t.equal(new URL(DEFAULT_REGISTRY_URL).port, String(DEFAULT_REGISTRY_PORT))
  t.end()
})

const clients = [
  ['router', RouterSettings],
  ['message router', MessageRouterSettings],
  ['api sample', SampleServiceSettings],
  ['webfront sample', WebfrontSettings],
  ['orders-worker sample', OrdersWorkerSettings]
] as const

for (const [name, schema] of clients) {
  void t.test(`${name}: the shared registry setting`, (t) => {
    t.same(schema.properties.registry, registryUrlSetting())
    const defaults = parseConfig(schema, {}, {}) as { registry: string }
    t.equal(defaults.registry, DEFAULT_REGISTRY_URL)
    t.equal((parseConfig(schema, {}, { SWITCHYARD_REGISTRY_URL: 'http://registry:8761' }) as { registry: string }).registry, 'http://registry:8761')
    t.throws(() => parseConfig(schema, {}, { SWITCHYARD_REGISTRY_URL: 'registry:8761' }), /SWITCHYARD_REGISTRY_URL/, 'not a URL')
    const replicas = parseConfig(schema, { registry: 'http://a:8761, http://b:8761/' }, {}) as { registry: string }
    t.equal(replicas.registry, 'http://a:8761,http://b:8761', 'several replicas, comma-separated, as origins')
    const refused = t.throws(() => parseConfig(schema, {}, { SWITCHYARD_REGISTRY_URL: 'http://a:8761,htp:/b:8761' })) as ConfigError
    t.same(
      refused.problems,
      ['SWITCHYARD_REGISTRY_URL: registry URL "htp:/b:8761" (entry 2 of "http://a:8761,htp:/b:8761") has scheme htp: give http:// or https://'],
      'the bad entry is named'
    )
    t.end()
  })
}

void t.test('webfront looks for the routers on their default ports', (t) => {
  const defaults = parseConfig(WebfrontSettings, {}, {})
  t.equal(defaults.routerUrl, 'http://127.0.0.1:8080')
  t.equal(defaults.messageRouterUrl, 'http://127.0.0.1:9902')
  t.end()
})
